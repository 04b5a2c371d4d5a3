package textindex

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds arbitrary index files to Open and to the query and
// compaction paths: none may panic, and a file that is not a valid index
// ends up rebuilt or cut, never trusted half-way.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	msgs := writeCorpus(f, dir, fixedCorpus())
	ix := buildIndex(f, dir, msgs, 5)
	ix.Close()
	whole, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(whole)
	f.Add(whole[:headerLen])
	f.Add(whole[:len(whole)/2])
	f.Add([]byte("MRTI"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		ix, err := Open(d, 5)
		if err != nil {
			t.Fatal(err)
		}
		defer ix.Close()
		for _, q := range []string{"xyzzy", "hello world", "a b c", "é"} {
			if _, err := ix.Candidates(Body, Fold([]byte(q))); err != nil && !IsDamaged(err) {
				t.Fatal(err)
			}
		}
	})
}

// FuzzSegment walks arbitrary octets as a segment, as Candidates and
// Compact do, without the file system: no panic, and damage is reported.
func FuzzSegment(f *testing.F) {
	dir := f.TempDir()
	msgs := writeCorpus(f, dir, fixedCorpus())
	ix := buildIndex(f, dir, msgs, 5)
	ix.Close()
	whole, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(whole[headerLen:])
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		seg, n, err := nextSegment(data)
		if err != nil {
			seg, err = parseSegmentBody(data)
			if err != nil {
				return
			}
		} else if n > len(data) {
			t.Fatalf("segment length %d beyond %d octets", n, len(data))
		}
		it := termIter{d: decoderAt{b: seg.terms}, left: seg.nterms}
		for it.next() {
			_, _ = decodePostings(nil, it.post, it.npost)
			_ = planQuery(it.term)
		}
	})
}

// FuzzExtract runs arbitrary messages through the extractor and the
// index: the index must answer every word of the text.
func FuzzExtract(f *testing.F) {
	for _, m := range fixedCorpus() {
		f.Add(m, "hello")
	}
	f.Fuzz(func(t *testing.T, text, q string) {
		dir := t.TempDir()
		msgs := writeCorpus(t, dir, []string{text})
		ix := buildIndex(t, dir, msgs, 1)
		defer ix.Close()
		needle := Fold([]byte(q))
		x := NewExtractor()
		for _, field := range []Field{Body, Header} {
			ans, err := ix.Candidates(field, needle)
			if err != nil {
				t.Fatal(err)
			}
			uid := msgs[0].uid
			want := scanText(t, x, msgs[0], field, needle)
			if want && !ans.Candidates.Has(uid) {
				t.Fatalf("%q in %q (field %c) but no candidate", q, text, field)
			}
			if !want && ans.Candidates.Has(uid) && !ans.Verify.Has(uid) {
				t.Fatalf("%q not in %q (field %c) but answered as a match", q, text, field)
			}
		}
	})
}
