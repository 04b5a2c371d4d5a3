package imapd

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"mailroom/imapd/wire"
	"mailroom/internal/message"
	"mailroom/internal/message/messagetest"
)

// The tests of fetch_structure.go: how a parsed message is written as
// ENVELOPE, BODY and BODYSTRUCTURE. fetch_structure_dovecot_test.go
// compares the same with Dovecot.

func mustParseMessage(t testing.TB, text string) *message.Structure {
	t.Helper()
	s, err := message.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeTo returns what f writes with a wire.Writer, as sent.
func writeTo(t testing.TB, f func(w *wire.Writer)) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := wire.NewWriter(&buf)
	f(w)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func bodyStructure(t *testing.T, s *message.Structure, ext bool) string {
	t.Helper()
	return string(writeTo(t, func(w *wire.Writer) { writeBodyStructure(w, s, ext) }))
}

// render writes something with a wire.Writer and returns its canonical
// form (messagetest.Canon), which also checks that it parses.
func render(t *testing.T, f func(w *wire.Writer)) string {
	t.Helper()
	b := writeTo(t, f)
	v, err := messagetest.Canon(b)
	if err != nil {
		t.Fatalf("our output %q: %v", b, err)
	}
	return v
}

func TestBodyStructureTable(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"default type", "Subject: x\n\nhello\nworld\n",
			`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2 NIL NIL NIL NIL)`},
		{"empty file", "", `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)`},
		{"attachment", "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nhi\n--b\nContent-Type: image/png; name=\"a b.png\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"a b.png\"\n\niVBORw0K\nGgo=\n--b--\n",
			`(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 2 0 NIL NIL NIL NIL)("image" "png" ("name" "a b.png") NIL NIL "base64" 14 NIL ("attachment" ("filename" "a b.png")) NIL NIL) "mixed" ("boundary" "b") NIL NIL NIL)`},
		{"digest default", "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: in\n\nx\n--d--\n",
			`(("message" "rfc822" NIL NIL NIL "7bit" 16 (NIL "in" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL) 2 NIL NIL NIL NIL) "digest" ("boundary" "d") NIL NIL NIL)`},
		{"rfc2231", "Content-Type: application/x; name*0*=utf-8''a%20; name*1=b; z=1\n\n",
			`("application" "x" ("z" "1" "name*" "utf-8''a%20b") NIL NIL "7bit" 0 NIL NIL NIL NIL)`},
		{"no boundary", "Content-Type: multipart/mixed\n\nx\n",
			`(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParseMessage(t, tc.text)
			if got := bodyStructure(t, s, true); got != tc.want {
				t.Errorf("BODYSTRUCTURE\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestBodyStructureLineEnds: a message stored with CRLF line ends has the
// BODYSTRUCTURE it has with LF line ends.
func TestBodyStructureLineEnds(t *testing.T) {
	for _, m := range messagetest.Corpus {
		lfText := strings.ReplaceAll(m.Text, "\r\n", "\n")
		crlfText := string(messagetest.ToCRLF([]byte(lfText)))
		a, b := mustParseMessage(t, lfText), mustParseMessage(t, crlfText)
		if x, y := bodyStructure(t, a, true), bodyStructure(t, b, true); x != y {
			t.Errorf("%s: LF %s\nCRLF %s", m.Name, x, y)
		}
	}
}

// TestBodyStructureTooDeep: nesting beyond message.MaxDepth still gives a
// BODYSTRUCTURE that parses.
func TestBodyStructureTooDeep(t *testing.T) {
	s := mustParseMessage(t, messagetest.NestedMultipart(100))
	if !s.Truncated {
		t.Error("depth 100 not truncated")
	}
	if _, err := messagetest.Canon([]byte(bodyStructure(t, s, true))); err != nil {
		t.Errorf("deep BODYSTRUCTURE does not parse: %v", err)
	}
}

// TestHeaderOnlyRendersSame: the ENVELOPE of a header-only Structure (and
// of its cache record) is the full parse's, and so is the BODYSTRUCTURE
// of the header-only Structure once completed.
func TestHeaderOnlyRendersSame(t *testing.T) {
	for _, m := range slices.Concat(messagetest.Corpus, messagetest.MalformedHeaders) {
		for _, form := range []string{"lf", "crlf"} {
			text := m.Text
			if form == "crlf" {
				text = string(messagetest.ToCRLF([]byte(text)))
			}
			full := mustParseMessage(t, text)
			hs, err := message.ParseHeader(strings.NewReader(text), full.Size, full.CRLFSize)
			if err != nil {
				t.Fatalf("%s/%s: %v", m.Name, form, err)
			}
			rec, err := hs.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var cached message.Structure
			if err := cached.UnmarshalBinary(rec); err != nil {
				t.Fatalf("%s/%s: header-only record: %v", m.Name, form, err)
			}
			for _, h := range []*message.Structure{hs, &cached} {
				got := render(t, func(w *wire.Writer) { writeEnvelope(w, h.Envelope()) })
				want := render(t, func(w *wire.Writer) { writeEnvelope(w, full.Envelope()) })
				if got != want {
					t.Errorf("%s/%s: ENVELOPE %s, full parse %s", m.Name, form, got, want)
				}
			}
			c := *hs
			if err := c.Complete(strings.NewReader(text)); err != nil || c.HeaderOnly() {
				t.Fatalf("%s/%s: Complete: %v", m.Name, form, err)
			}
			a := render(t, func(w *wire.Writer) { writeBodyStructure(w, &c, true) })
			b := render(t, func(w *wire.Writer) { writeBodyStructure(w, full, true) })
			if a != b {
				t.Errorf("%s/%s: completed BODYSTRUCTURE %s, full parse %s", m.Name, form, a, b)
			}
		}
	}
}

// FuzzWriteStructure: whatever a file is, its BODYSTRUCTURE and ENVELOPE
// are written without a failure.
func FuzzWriteStructure(f *testing.F) {
	for _, m := range messagetest.Corpus {
		f.Add([]byte(m.Text))
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: message/rfc822\n\n--a--\n"))
	f.Add([]byte("\r\n\r\n\n\r\r\n--"))
	f.Fuzz(func(t *testing.T, file []byte) {
		s, err := message.Parse(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		writeTo(t, func(w *wire.Writer) {
			writeBodyStructure(w, s, true)
			writeEnvelope(w, s.Envelope())
		})
	})
}

// FuzzWriteAddressList: any address list is written as a list that
// parses as IMAP data.
func FuzzWriteAddressList(f *testing.F) {
	for _, s := range messagetest.AddressListSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		list := message.ParseAddressList(in)
		out := writeTo(t, func(w *wire.Writer) { writeAddressList(w, list) })
		if _, err := messagetest.Canon(out); err != nil {
			t.Fatalf("written list %q does not parse: %v", out, err)
		}
	})
}

// FuzzWriteRecord: a Structure from any cache record UnmarshalBinary
// accepts is written without a failure.
func FuzzWriteRecord(f *testing.F) {
	messagetest.SeedCacheRecords(f, message.Parse, func(r io.Reader, whole *message.Structure) (*message.Structure, error) {
		return message.ParseHeader(r, whole.Size, whole.CRLFSize)
	})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var s message.Structure
		if err := s.UnmarshalBinary(rec); err != nil {
			return
		}
		writeTo(t, func(w *wire.Writer) {
			writeBodyStructure(w, &s, true)
			writeEnvelope(w, s.Envelope())
		})
	})
}
