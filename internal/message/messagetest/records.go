package messagetest

import (
	"io"
	"strings"
	"testing"
)

// ToCRLF is the reference conversion the tests check package message's
// own against: every LF not preceded by CR becomes CRLF.
func ToCRLF(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// A CacheRecord is a parsed message as SeedCacheRecords sees it: something
// that encodes itself as a cache record (*message.Structure).
type CacheRecord interface {
	MarshalBinary() ([]byte, error)
}

// SeedCacheRecords seeds f with the cache records of the first six corpus
// messages, each as parse reads it whole and as parseHeader reads its
// header alone (given the whole parse, for the sizes a header-only record
// keeps), and with an empty record of the old version 1.
//
// The parsers are passed in, not called from package message, because
// message's own tests import this package, which so cannot import message.
func SeedCacheRecords[R CacheRecord](f *testing.F, parse func(io.Reader) (R, error), parseHeader func(io.Reader, R) (R, error)) {
	f.Helper()
	for _, m := range Corpus[:6] {
		whole, err := parse(strings.NewReader(m.Text))
		if err != nil {
			f.Fatalf("%s: %v", m.Name, err)
		}
		header, err := parseHeader(strings.NewReader(m.Text), whole)
		if err != nil {
			f.Fatalf("%s: header: %v", m.Name, err)
		}
		for _, r := range []R{whole, header} {
			rec, err := r.MarshalBinary()
			if err != nil {
				f.Fatalf("%s: %v", m.Name, err)
			}
			f.Add(rec)
		}
	}
	f.Add([]byte("MRst\x01\x00\x00\x00\x00"))
}
