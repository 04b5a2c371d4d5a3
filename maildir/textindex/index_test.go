package textindex

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func buildIndex(t testing.TB, dir string, msgs []parsedMsg, uidValidity uint32) *Index {
	t.Helper()
	ix, err := Open(dir, uidValidity)
	if err != nil {
		t.Fatal(err)
	}
	b := ix.NewBuilder(NewExtractor())
	for _, m := range msgs {
		if !ix.Covered(m.uid) {
			f, err := os.Open(m.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Add(m.uid, m.st, f); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	if err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	return ix
}

// checkAnswers compares, for every query and field, the index's answer
// (candidates verified) with a brute-force scan, and requires that the
// candidates include every match.
func checkAnswers(t *testing.T, ix *Index, msgs []parsedMsg) (candidates, matches int) {
	t.Helper()
	x := NewExtractor()
	for _, q := range queries {
		needle := Fold([]byte(q))
		for _, field := range []Field{Body, Header} {
			ans, err := ix.Candidates(field, needle)
			if err != nil {
				t.Fatalf("candidates %q: %v", q, err)
			}
			set := ans.Candidates
			m := NewMatcher(needle)
			for _, msg := range msgs {
				want := scanText(t, x, msg, field, needle)
				if want {
					matches++
				}
				if !ix.Covered(msg.uid) {
					t.Fatalf("uid %d not covered", msg.uid)
				}
				if !set.Has(msg.uid) {
					if want {
						t.Errorf("query %q field %c: uid %d matches but is no candidate", q, field, msg.uid)
					}
					continue
				}
				candidates++
				if !ans.Verify.Has(msg.uid) {
					// The index claims an exact answer.
					if !want {
						t.Errorf("query %q field %c: uid %d answered by the index but does not match", q, field, msg.uid)
					}
					continue
				}
				m.Reset()
				f, _ := os.Open(msg.path)
				if field == Header {
					err = x.Header(msg.st, f, m.Write)
				} else {
					err = x.Body(msg.st, f, m.Write)
				}
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				if m.Found() != want {
					t.Errorf("query %q field %c uid %d: streaming match %v, scan %v", q, field, msg.uid, m.Found(), want)
				}
			}
		}
	}
	return candidates, matches
}

func TestIndexEqualsScan(t *testing.T) {
	dir := t.TempDir()
	texts := append(fixedCorpus(), genCorpus(rand.New(rand.NewPCG(1, 2)), 150)...)
	msgs := writeCorpus(t, dir, texts)
	ix := buildIndex(t, dir, msgs, 42)
	defer ix.Close()
	cands, matches := checkAnswers(t, ix, msgs)
	if matches == 0 || cands >= len(queries)*2*len(msgs) {
		t.Fatalf("index does not filter: %d candidates, %d matches", cands, matches)
	}
	t.Logf("%d candidates for %d matches over %d messages × %d queries × 2", cands, matches, len(msgs), len(queries))
}

// TestDecodedSemantics pins what the text is, independently of the index.
func TestDecodedSemantics(t *testing.T) {
	dir := t.TempDir()
	msgs := writeCorpus(t, dir, fixedCorpus())
	x := NewExtractor()
	tests := []struct {
		msg   int
		field Field
		q     string
		want  bool
	}{
		{0, Body, "HELLO world", true},
		{0, Body, "plain", false}, // the subject is not body text
		{0, Header, "SUBJECT: PLAIN", true},
		{1, Body, "grüße aus köln", true},
		{1, Body, "=c3", false},
		{1, Body, "must be wrapped by", true}, // across a soft line break
		{2, Body, "xyzzy", true},
		{2, Body, "VGhl", false}, // base64 is decoded
		{3, Body, "café crème", true},
		{3, Body, "école", true},
		{4, Body, "“smart quotes” cost € 5 – fine", true},
		{5, Header, "grüße vom header", true},
		{5, Header, "jörg", true},
		{6, Body, "binary", false},   // attachments are not text
		{6, Body, "preamble", false}, // nor are preamble and epilogue
		{6, Body, "inner subject word", true},
		{6, Body, "inner body text", true},
		{6, Header, "inner", false},
		{7, Body, "softbreak joins words = equals", true},
		{7, Body, "<b>bold</b>", true},
		{9, Body, "hello world", true},
		{9, Body, "ignored", false},
		{10, Body, "a =zz b =4 c =d été", true}, // "= " is no escape: the blank goes
		{11, Body, "r\xe9sum\xe9", true},
		{13, Body, "αθηνα", true},
		{13, Body, "istanbul", true},
		{14, Body, "plain ascii", true},
		{15, Header, "only no newline", true},
	}
	for _, tc := range tests {
		got := scanText(t, x, msgs[tc.msg], tc.field, Fold([]byte(tc.q)))
		if got != tc.want {
			t.Errorf("message %d field %c %q: got %v, want %v", tc.msg, tc.field, tc.q, got, tc.want)
		}
	}
}

func TestIndexIncrementalAndCompact(t *testing.T) {
	dir := t.TempDir()
	texts := append(fixedCorpus(), genCorpus(rand.New(rand.NewPCG(3, 4)), 60)...)
	msgs := writeCorpus(t, dir, texts)
	// Index in three sittings, as new mail arrives.
	ix := buildIndex(t, dir, msgs[:20], 7)
	ix.Close()
	ix = buildIndex(t, dir, msgs[:50], 7)
	ix.Close()
	ix = buildIndex(t, dir, msgs, 7)
	if ix.Segments() != 3 || ix.CoveredCount() != len(msgs) {
		t.Fatalf("segments %d covered %d", ix.Segments(), ix.CoveredCount())
	}
	checkAnswers(t, ix, msgs)
	// Expunge a third, compact.
	live := map[uint32]bool{}
	var kept []parsedMsg
	for i, m := range msgs {
		if i%3 != 0 {
			live[m.uid] = true
			kept = append(kept, m)
		}
	}
	isLive := func(u uint32) bool { return live[u] }
	if !ix.NeedsCompact(isLive) {
		t.Fatal("a third expunged should need compaction")
	}
	if err := ix.Compact(isLive); err != nil {
		t.Fatal(err)
	}
	if ix.Segments() != 1 || ix.CoveredCount() != len(kept) {
		t.Fatalf("after compaction: segments %d covered %d, want 1 %d", ix.Segments(), ix.CoveredCount(), len(kept))
	}
	checkAnswers(t, ix, kept)
	ix.Close()
	// Reopened from disk, the same.
	ix2, err := Open(dir, 7)
	if err != nil {
		t.Fatal(err)
	}
	defer ix2.Close()
	checkAnswers(t, ix2, kept)
}

func TestIndexDamage(t *testing.T) {
	dir := t.TempDir()
	texts := genCorpus(rand.New(rand.NewPCG(5, 6)), 40)
	msgs := writeCorpus(t, dir, texts)
	path := filepath.Join(dir, FileName)
	ix := buildIndex(t, dir, msgs[:20], 9)
	ix.Close()
	ix = buildIndex(t, dir, msgs, 9)
	ix.Close()
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		uidv    uint32
		covered int // after Open, before re-indexing
	}{
		{"intact", whole, 9, 40},
		{"truncated in the second segment", whole[:len(whole)-10], 9, 20},
		{"flipped byte in the second segment", flip(whole, len(whole)-20), 9, 20},
		{"flipped byte in the first segment", flip(whole, headerLen+10), 9, 0},
		{"header only", whole[:headerLen], 9, 0},
		{"truncated header", whole[:5], 9, 0},
		{"other uidvalidity", whole, 10, 0},
		{"other version", append(append([]byte("MRTI\x00\x00\x00\x02"), whole[8:12]...), whole[12:]...), 9, 0},
		{"foreign file", []byte("From nobody\nthis is mbox\n"), 9, 0},
		{"empty", nil, 9, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			ix, err := Open(dir, tc.uidv)
			if err != nil {
				t.Fatal(err)
			}
			if ix.CoveredCount() != tc.covered {
				t.Errorf("covered %d, want %d", ix.CoveredCount(), tc.covered)
			}
			ix.Close()
			ix = buildIndex(t, dir, msgs, tc.uidv)
			defer ix.Close()
			if ix.CoveredCount() != len(msgs) {
				t.Fatalf("rebuilt index covers %d", ix.CoveredCount())
			}
			checkAnswers(t, ix, msgs)
		})
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func TestFoldAndDecodeSplitAnywhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	inputs := []string{"Grüße ÄÖÜ İ ǅ Ⱥ €\xff\xe2\x82", "=C3=A9t=\n=C3=\n=A9 =ZZ =", "SGVsbG8g\nV29y bGQ=trailing"}
	for _, in := range inputs {
		wholeFold := Fold([]byte(in))
		wholeQP := (&qpDecoder{}).finish((&qpDecoder{}).decode(nil, []byte(in)))
		for range 200 {
			var f folder
			var gotFold, gotQP, gotB64 []byte
			var q qpDecoder
			var b base64Decoder
			rest := []byte(in)
			for len(rest) > 0 {
				n := 1 + rng.IntN(len(rest))
				gotFold = f.fold(gotFold, rest[:n])
				gotQP = q.decode(gotQP, rest[:n])
				gotB64 = b.decode(gotB64, rest[:n])
				rest = rest[n:]
			}
			gotFold = f.flush(gotFold)
			gotQP = q.finish(gotQP)
			if !bytes.Equal(gotFold, wholeFold) {
				t.Fatalf("fold of %q split: %q, whole %q", in, gotFold, wholeFold)
			}
			var qw qpDecoder
			wholeQP = qw.finish(qw.decode(nil, []byte(in)))
			if !bytes.Equal(gotQP, wholeQP) {
				t.Fatalf("qp of %q split: %q, whole %q", in, gotQP, wholeQP)
			}
			var bw base64Decoder
			if w := bw.decode(nil, []byte(in)); !bytes.Equal(gotB64, w) {
				t.Fatalf("base64 of %q split: %q, whole %q", in, gotB64, w)
			}
		}
	}
}

func TestMatcherAcrossChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	text := []byte("the quick brown fox jumps over the lazy dog; xyzzy plugh")
	for _, q := range []string{"xyzzy", "fox jumps", "the", "dog; x", "plugh", "nothere", "t", "", "quick brown fox jumps over the lazy dog; xyzzy plugh"} {
		want := bytes.Contains(text, []byte(q))
		m := NewMatcher([]byte(q))
		for range 100 {
			m.Reset()
			rest := text
			for len(rest) > 0 {
				n := 1 + rng.IntN(len(rest))
				_ = m.Write(rest[:n])
				rest = rest[n:]
			}
			if m.Found() != want {
				t.Fatalf("%q: found %v, want %v", q, m.Found(), want)
			}
		}
	}
}

func TestQPVectors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a=3Db", "a=b"},
		{"soft=\nbreak", "softbreak"},
		{"soft= \t\nbreak", "softbreak"},
		{"soft=\r\nbreak", "softbreak"},
		{"bad=ZZ", "bad=ZZ"},
		{"half=4", "half=4"},
		{"end=", "end="},
		{"=e9t=E9", "\xe9t\xe9"},
		{"a= b", "a=b"},
	}
	for _, tc := range tests {
		var d qpDecoder
		if got := string(d.finish(d.decode(nil, []byte(tc.in)))); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestIndexCutByAnother: another process cuts the file under this one's
// mapping; this one must notice instead of reading past the end.
func TestIndexCutByAnother(t *testing.T) {
	dir := t.TempDir()
	msgs := writeCorpus(t, dir, genCorpus(rand.New(rand.NewPCG(11, 12)), 30))
	a := buildIndex(t, dir, msgs, 3)
	defer a.Close()
	b, err := Open(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Reset(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := a.Candidates(Body, []byte("alpha")); err != ErrChanged {
		t.Fatalf("after a cut: %v, want ErrChanged", err)
	}
}
