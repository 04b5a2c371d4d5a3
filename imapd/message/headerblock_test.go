package message

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"mailroom/imapd/wire"
)

// malformedHeaders are messages whose header blocks break the rules in the
// ways Maildirs see: no blank line, bare CR, NUL, 8-bit, continuation
// lines with no field before them, lines without a colon, an empty file.
var malformedHeaders = []struct{ name, text string }{
	{"empty", ""},
	{"no-blank-line", "From: a@b\nSubject: no body"},
	{"no-blank-line-lf", "From: a@b\nSubject: no body\n"},
	{"leading-continuation", " folded first\nFrom: a@b\nSubject: x\n\nbody\n"},
	{"no-colon", "From a@b Mon Jan 1\nGarbage line\nSubject: x\n\nbody\n"},
	{"bare-cr", "Subject: a\rb\nFrom: c@d\r\r\nTo: e@f\n\nbody\r"},
	{"nul-8bit", "Subject: caf\xc3\xa9 \x00 x\nFrom: \xff@b\n\n\x00body\n"},
	{"crlf-mixed", "Subject: one\r\nFrom: a@b\nTo: c@d\r\n\r\nbody\n"},
	{"space-before-colon", "Subject : spaced\nFROM\t: a@b\nX-List-Id: <l>\n\nbody\n"},
	{"folded-fields", "Subject: one\n two\n\tthree\nReferences: <a@b>\n <c@d>\nFrom: x@y\n\nbody\n"},
	{"blank-line-only", "\nbody only\n"},
	{"header-only-crlf", "Subject: x\r\n"},
}

// headerSections are the sections answered from the header block, with
// the ones next to them that are not.
var headerSections = []string{
	"HEADER", "TEXT", "",
	"HEADER.FIELDS (FROM SUBJECT DATE)",
	"HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID References In-Reply-To Reply-To Sender Content-Type List-Id X-Priority)",
	"HEADER.FIELDS (X-None)",
	"HEADER.FIELDS.NOT (From Received)",
	"HEADER.FIELDS.NOT (X-None)",
	"1.MIME",
}

// TestHeaderBlockSameAnswers: every section read from the kept header
// block (and from a cache record of it) is byte for byte what reading the
// file gives, for the corpus and malformed messages in both line-end
// forms, with and without partials; a header longer than MaxHeaderBlock
// is not kept.
func TestHeaderBlockSameAnswers(t *testing.T) {
	var texts []struct{ name, text string }
	for _, m := range corpus {
		texts = append(texts, struct{ name, text string }{m.name, m.text})
	}
	texts = append(texts, malformedHeaders...)
	partials := []*wire.Partial{nil, {Offset: 0, Count: 10, HasCount: true}, {Offset: 5, Count: 3, HasCount: true}, {Offset: 7}, {Offset: 1 << 20}}
	for _, m := range texts {
		for _, form := range []string{"lf", "crlf"} {
			text := m.text
			if form == "crlf" {
				text = string(toCRLF([]byte(text)))
			}
			s := mustParse(t, text)
			if (s.HeaderBlock() == nil) != (s.Root.Header.End > MaxHeaderBlock) {
				t.Fatalf("%s/%s: header block of %d octets: kept %v", m.name, form, s.Root.Header.End, s.HeaderBlock() != nil)
			}
			if s.HeaderBlock() != nil && (!strings.HasPrefix(text, string(s.HeaderBlock())) || int64(len(s.HeaderBlock())) != s.Root.Header.End) {
				t.Fatalf("%s/%s: header block %q is not the file's header", m.name, form, s.HeaderBlock())
			}
			rec, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var cached Structure
			if err := cached.UnmarshalBinary(rec); err != nil {
				t.Fatalf("%s/%s: %v", m.name, form, err)
			}
			shared, err := UnmarshalShared(rec)
			if err != nil {
				t.Fatalf("%s/%s: shared: %v", m.name, form, err)
			}
			fileOnly := *s
			fileOnly.header = nil
			for _, spec := range headerSections {
				sec := parseSection(t, spec)
				for _, p := range partials {
					want, wantErr := openAll(&fileOnly, strings.NewReader(text), sec, p)
					for _, st := range []*Structure{s, &cached, shared} {
						var ra io.ReaderAt = strings.NewReader(text)
						if !st.NeedsFile(sec) {
							ra = nil // must not be touched
						}
						got, err := openAll(st, ra, sec, p)
						if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
							t.Errorf("%s/%s BODY[%s]%v: %q (%v), file gives %q (%v)", m.name, form, spec, p, got, err, want, wantErr)
						}
					}
				}
			}
		}
	}
	big := "X-Big: " + strings.Repeat("x", MaxHeaderBlock) + "\nSubject: big\n\nbody\n"
	s := mustParse(t, big)
	if s.HeaderBlock() != nil || s.NeedsFile(wire.Section{Specifier: "HEADER"}) != true {
		t.Errorf("a header over MaxHeaderBlock was kept")
	}
	got, err := openAll(s, strings.NewReader(big), wire.Section{Specifier: "HEADER.FIELDS", Fields: []string{"subject"}}, nil)
	if err != nil || string(got) != "Subject: big\r\n\r\n" {
		t.Errorf("big header from the file: %q, %v", got, err)
	}
}

func openAll(s *Structure, ra io.ReaderAt, sec wire.Section, p *wire.Partial) ([]byte, error) {
	r, n, err := s.Open(ra, sec, p)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(r)
	if err == nil && int64(len(b)) != n {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

// TestParseHeaderMatchesParse: a header-only Structure agrees with the
// full parse on everything it holds (ENVELOPE, the root's Content-*
// fields, the header span and block), survives the cache record, answers
// the header sections without the file, and completes itself, through
// the file, for any other section.
func TestParseHeaderMatchesParse(t *testing.T) {
	var texts []struct{ name, text string }
	for _, m := range corpus {
		texts = append(texts, struct{ name, text string }{m.name, m.text})
	}
	texts = append(texts, malformedHeaders...)
	for _, m := range texts {
		for _, form := range []string{"lf", "crlf"} {
			text := m.text
			if form == "crlf" {
				text = string(toCRLF([]byte(text)))
			}
			full := mustParse(t, text)
			hs, err := ParseHeader(strings.NewReader(text), full.Size, full.CRLFSize)
			if err != nil {
				t.Fatalf("%s/%s: %v", m.name, form, err)
			}
			rec, err := hs.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var cached Structure
			if err := cached.UnmarshalBinary(rec); err != nil {
				t.Fatalf("%s/%s: header-only record: %v", m.name, form, err)
			}
			for _, h := range []*Structure{hs, &cached} {
				if !h.HeaderOnly() || h.Size != full.Size || h.CRLFSize != full.CRLFSize {
					t.Fatalf("%s/%s: header-only %v sizes %d/%d", m.name, form, h.HeaderOnly(), h.Size, h.CRLFSize)
				}
				got := render(t, func(w *wire.Writer) { WriteEnvelope(w, h.Envelope()) })
				want := render(t, func(w *wire.Writer) { WriteEnvelope(w, full.Envelope()) })
				if got != want {
					t.Errorf("%s/%s: ENVELOPE %s, full parse %s", m.name, form, got, want)
				}
				r, f := h.Root, full.Root
				if r.Header != f.Header || r.Type != f.Type || r.Subtype != f.Subtype || r.Encoding != f.Encoding ||
					!bytes.Equal(h.HeaderBlock(), full.HeaderBlock()) {
					t.Errorf("%s/%s: root %+v, full parse %+v", m.name, form, r, f)
				}
				for _, spec := range headerSections {
					sec := parseSection(t, spec)
					want, wantErr := openAll(full, strings.NewReader(text), sec, nil)
					c := *h // Open may complete it: keep h header-only
					var ra io.ReaderAt = strings.NewReader(text)
					if !c.NeedsFile(sec) {
						ra = nil
					}
					got, err := openAll(&c, ra, sec, nil)
					if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
						t.Errorf("%s/%s BODY[%s]: %q (%v), full parse %q (%v)", m.name, form, spec, got, err, want, wantErr)
					}
				}
			}
			c := *hs
			if err := c.Complete(strings.NewReader(text)); err != nil || c.HeaderOnly() {
				t.Fatalf("%s/%s: Complete: %v", m.name, form, err)
			}
			a := render(t, func(w *wire.Writer) { WriteBodyStructure(w, &c, true) })
			b := render(t, func(w *wire.Writer) { WriteBodyStructure(w, full, true) })
			if a != b {
				t.Errorf("%s/%s: completed BODYSTRUCTURE %s, full parse %s", m.name, form, a, b)
			}
		}
	}
	// Sizes that cannot be the file's are refused, not trusted.
	if _, err := ParseHeader(strings.NewReader("Subject: x\n\nbody\n"), 5, 5); err == nil {
		t.Errorf("ParseHeader accepted sizes smaller than the header")
	}
}

// TestCRLFReaderSmallReads: the CRLF form comes out the same whatever
// the size of the caller's reads and the starting offset (a CRLF split
// across reads, a bare CR, a first LF whose CR lies before the start).
func TestCRLFReaderSmallReads(t *testing.T) {
	inputs := []string{"", "\n", "\r\n", "a\nb\r\nc\rd\n\n", "\r", "x\r\r\n\n\ry", strings.Repeat("ab\n\r\n", 50)}
	for _, in := range inputs {
		for start := 0; start <= len(in); start++ {
			// The CRLF form of in[start:] in context: what precedes start
			// decides whether a first LF is bare.
			want := toCRLF([]byte(in))[len(toCRLF([]byte(in[:start]))):]
			for _, size := range []int{1, 2, 3, 7, 4096} {
				r, err := newCRLFReader(strings.NewReader(in), int64(start), int64(len(in)))
				if err != nil {
					t.Fatal(err)
				}
				var got []byte
				buf := make([]byte, size)
				for i := 0; i < 10000; i++ {
					n, err := r.Read(buf)
					got = append(got, buf[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%q from %d in reads of %d: %q, want %q", in, start, size, got, want)
				}
			}
		}
	}
}
