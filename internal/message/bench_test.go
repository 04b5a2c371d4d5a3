package message

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// benchFiles reads up to n messages of the Maildir named by
// MAILROOM_HARNESS_MAILDIR (a `mailbench mkmaildir` fixture); the
// benchmarks skip without it.
func benchFiles(b *testing.B, n int) [][]byte {
	dir := os.Getenv("MAILROOM_HARNESS_MAILDIR")
	if dir == "" {
		b.Skip("MAILROOM_HARNESS_MAILDIR not set")
	}
	names, err := filepath.Glob(filepath.Join(dir, "cur", "*"))
	if err != nil || len(names) == 0 {
		b.Fatalf("no messages in %s: %v", dir, err)
	}
	var out [][]byte
	for _, name := range names[:min(n, len(names))] {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// BenchmarkParseFixture: Parse per message of the fixture, through one
// reused read buffer as imapd does.
func BenchmarkParseFixture(b *testing.B) {
	files := benchFiles(b, 1000)
	br := bufio.NewReaderSize(nil, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br.Reset(bytes.NewReader(files[i%len(files)]))
		if _, err := Parse(br); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalFixture: decoding a cache record per message.
func BenchmarkUnmarshalFixture(b *testing.B) {
	files := benchFiles(b, 1000)
	var recs [][]byte
	total, headerOnly := 0, 0
	for _, f := range files {
		s, err := Parse(bytes.NewReader(f))
		if err != nil {
			b.Fatal(err)
		}
		rec, err := s.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, rec)
		total += len(rec)
		hs, err := ParseHeader(bytes.NewReader(f), s.Size, s.CRLFSize)
		if err != nil {
			b.Fatal(err)
		}
		if rec, err = hs.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
		headerOnly += len(rec)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var s Structure
		if err := s.UnmarshalBinary(recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	// What a mailbox's cache holds per message, whole or header-only.
	b.ReportMetric(float64(total)/float64(len(files)), "whole-record-B")
	b.ReportMetric(float64(headerOnly)/float64(len(files)), "header-record-B")
}

// BenchmarkParseHeaderFixture: ParseHeader per message of the fixture,
// what the first ENVELOPE pass does.
func BenchmarkParseHeaderFixture(b *testing.B) {
	files := benchFiles(b, 1000)
	br := bufio.NewReaderSize(nil, HeaderScanBuffer)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := files[i%len(files)]
		br.Reset(bytes.NewReader(f))
		if _, err := ParseHeader(br, int64(len(f)), int64(2*len(f))); err != nil {
			b.Fatal(err)
		}
	}
}
