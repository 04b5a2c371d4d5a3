package message

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"slices"

	"mailroom/internal/message/messagetest"
)

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
	texts := slices.Concat(corpus, messagetest.MalformedHeaders)
	partials := []*Partial{nil, {Offset: 0, Count: 10, HasCount: true}, {Offset: 5, Count: 3, HasCount: true}, {Offset: 7}, {Offset: 1 << 20}}
	for _, m := range texts {
		for _, form := range []string{"lf", "crlf"} {
			text := m.Text
			if form == "crlf" {
				text = string(toCRLF([]byte(text)))
			}
			s := mustParse(t, text)
			if (s.HeaderBlock() == nil) != (s.Root.Header.End > MaxHeaderBlock) {
				t.Fatalf("%s/%s: header block of %d octets: kept %v", m.Name, form, s.Root.Header.End, s.HeaderBlock() != nil)
			}
			if s.HeaderBlock() != nil && (!strings.HasPrefix(text, string(s.HeaderBlock())) || int64(len(s.HeaderBlock())) != s.Root.Header.End) {
				t.Fatalf("%s/%s: header block %q is not the file's header", m.Name, form, s.HeaderBlock())
			}
			rec, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var cached Structure
			if err := cached.UnmarshalBinary(rec); err != nil {
				t.Fatalf("%s/%s: %v", m.Name, form, err)
			}
			shared, err := UnmarshalShared(rec)
			if err != nil {
				t.Fatalf("%s/%s: shared: %v", m.Name, form, err)
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
							t.Errorf("%s/%s BODY[%s]%v: %q (%v), file gives %q (%v)", m.Name, form, spec, p, got, err, want, wantErr)
						}
					}
				}
			}
		}
	}
	big := "X-Big: " + strings.Repeat("x", MaxHeaderBlock) + "\nSubject: big\n\nbody\n"
	s := mustParse(t, big)
	if s.HeaderBlock() != nil || s.NeedsFile(Section{Specifier: "HEADER"}) != true {
		t.Errorf("a header over MaxHeaderBlock was kept")
	}
	got, err := openAll(s, strings.NewReader(big), Section{Specifier: "HEADER.FIELDS", Fields: []string{"subject"}}, nil)
	if err != nil || string(got) != "Subject: big\r\n\r\n" {
		t.Errorf("big header from the file: %q, %v", got, err)
	}
}

func openAll(s *Structure, ra io.ReaderAt, sec Section, p *Partial) ([]byte, error) {
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
// full parse on everything it holds (the root's Content-* fields, the
// header span and block), survives the cache record, answers the header
// sections without the file, and completes itself, through the file, for
// any other section. imapd's TestHeaderOnlyRendersSame checks that its
// ENVELOPE, and the completed Structure's BODYSTRUCTURE, are the full
// parse's.
// forEachHeaderOnly calls fn with every corpus message (and every
// malformed header), in LF and in CRLF form, parsed whole (full) and
// header-only (hs) with the whole parse's sizes.
func forEachHeaderOnly(t *testing.T, fn func(name, form, text string, full, hs *Structure)) {
	t.Helper()
	for _, m := range slices.Concat(corpus, messagetest.MalformedHeaders) {
		for _, form := range []string{"lf", "crlf"} {
			text := m.Text
			if form == "crlf" {
				text = string(toCRLF([]byte(text)))
			}
			full := mustParse(t, text)
			hs, err := ParseHeader(strings.NewReader(text), full.Size, full.CRLFSize)
			if err != nil {
				t.Fatalf("%s/%s: %v", m.Name, form, err)
			}
			fn(m.Name, form, text, full, hs)
		}
	}
}

func TestParseHeaderMatchesParse(t *testing.T) {
	forEachHeaderOnly(t, func(name, form, text string, full, hs *Structure) {
		rec, err := hs.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var cached Structure
		if err := cached.UnmarshalBinary(rec); err != nil {
			t.Fatalf("%s/%s: header-only record: %v", name, form, err)
		}
		for _, h := range []*Structure{hs, &cached} {
			if !h.HeaderOnly() || h.Size != full.Size || h.CRLFSize != full.CRLFSize {
				t.Fatalf("%s/%s: header-only %v sizes %d/%d", name, form, h.HeaderOnly(), h.Size, h.CRLFSize)
			}
			r, f := h.Root, full.Root
			if r.Header != f.Header || r.Type != f.Type || r.Subtype != f.Subtype || r.Encoding != f.Encoding ||
				!bytes.Equal(h.HeaderBlock(), full.HeaderBlock()) {
				t.Errorf("%s/%s: root %+v, full parse %+v", name, form, r, f)
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
					t.Errorf("%s/%s BODY[%s]: %q (%v), full parse %q (%v)", name, form, spec, got, err, want, wantErr)
				}
			}
		}
		c := *hs
		if err := c.Complete(strings.NewReader(text)); err != nil || c.HeaderOnly() {
			t.Fatalf("%s/%s: Complete: %v", name, form, err)
		}
	})
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

// TestHeaderOnlyWholeMessage: BODY[] and its partials come from a
// header-only Structure without completing it, and are the full parse's
// octets, LF and CRLF files alike, partials inside the header, across
// its end and inside the body.
func TestHeaderOnlyWholeMessage(t *testing.T) {
	forEachHeaderOnly(t, func(name, form, text string, full, hs *Structure) {
		n := uint64(full.CRLFSize)
		partials := []*Partial{nil, {Offset: 0, Count: 10, HasCount: true}, {Offset: n / 3, Count: n / 2, HasCount: true},
			{Offset: n - 1}, {Offset: n + 5, Count: 3, HasCount: true}}
		for _, p := range partials {
			want, wantErr := openAll(full, strings.NewReader(text), Section{}, p)
			c := *hs
			got, err := openAll(&c, strings.NewReader(text), Section{}, p)
			if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
				t.Errorf("%s/%s BODY[]%+v: %q (%v), full parse %q (%v)", name, form, p, got, err, want, wantErr)
			}
			if !c.HeaderOnly() {
				t.Errorf("%s/%s BODY[]%+v completed the Structure", name, form, p)
			}
		}
	})
}
