package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"mailroom/internal/message/messagetest"
)

// toCRLF is the reference conversion these tests and imapd's share
// (messagetest.ToCRLF).
var toCRLF = messagetest.ToCRLF

func mustParse(t testing.TB, text string) *Structure {
	t.Helper()
	s, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCRLFFileSameAnswers: a message stored with CRLF line ends gives the
// same sizes and envelope as with LF line ends, and BODY[] of the LF file
// is exactly its CRLF form. (imapd's TestBodyStructureLineEnds checks the
// BODYSTRUCTURE of both is the same.)
func TestCRLFFileSameAnswers(t *testing.T) {
	for _, m := range corpus {
		lfText := strings.ReplaceAll(m.Text, "\r\n", "\n")
		crlfText := string(toCRLF([]byte(lfText)))
		a, b := mustParse(t, lfText), mustParse(t, crlfText)
		if a.CRLFSize != int64(len(crlfText)) || b.CRLFSize != b.Size || b.Size != int64(len(crlfText)) {
			t.Errorf("%s: sizes LF %d/%d CRLF %d/%d, want %d", m.Name, a.Size, a.CRLFSize, b.Size, b.CRLFSize, len(crlfText))
		}
		if !reflect.DeepEqual(a.Envelope(), b.Envelope()) {
			t.Errorf("%s: envelopes differ", m.Name)
		}
		r, n, err := a.Open(strings.NewReader(lfText), Section{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != crlfText || n != int64(len(got)) {
			t.Errorf("%s: BODY[] %q (%d, %v)", m.Name, got, n, err)
		}
		checkInvariants(t, []byte(lfText), a)
	}
}

// checkInvariants checks every span of s against the reference CRLF
// conversion of file.
func checkInvariants(t testing.TB, file []byte, s *Structure) {
	t.Helper()
	crlf := toCRLF(file)
	if s.Size != int64(len(file)) || s.CRLFSize != int64(len(crlf)) {
		t.Fatalf("sizes %d/%d, want %d/%d", s.Size, s.CRLFSize, len(file), len(crlf))
	}
	// at[i] is the CRLF offset of file offset i.
	at := make([]int64, len(file)+1)
	for i, c := range file {
		at[i+1] = at[i] + 1
		if c == '\n' && (i == 0 || file[i-1] != '\r') {
			at[i+1]++
		}
	}
	var walk func(p *Part, depth int)
	walk = func(p *Part, depth int) {
		if depth > MaxDepth+2 {
			t.Fatalf("depth %d", depth)
		}
		for _, sp := range []Span{p.Header, p.Body} {
			if sp.Start < 0 || sp.Start > sp.End || sp.End > s.Size {
				t.Fatalf("span %+v outside file of %d", sp, s.Size)
			}
			if sp.CRLFStart != at[sp.Start] || sp.CRLFEnd != at[sp.End] {
				t.Fatalf("span %+v: CRLF start/end should be %d/%d", sp, at[sp.Start], at[sp.End])
			}
		}
		if p.Header.End > p.Body.Start {
			t.Fatalf("header %+v after body %+v", p.Header, p.Body)
		}
		if lines := int64(bytes.Count(file[p.Body.Start:p.Body.End], []byte("\n"))); lines != p.Lines {
			t.Fatalf("lines %d, want %d", p.Lines, lines)
		}
		if p.IsMultipart() && len(p.Parts) == 0 {
			t.Fatal("multipart without parts")
		}
		if p.Message != nil {
			walk(p.Message, depth+1)
		}
		for _, c := range p.Parts {
			walk(c, depth+1)
		}
	}
	walk(s.Root, 0)
}

// TestPartialDeepInLargeMessage: partials anywhere in a large LF message
// (checkpoints used) equal slices of the reference CRLF form.
func TestPartialDeepInLargeMessage(t *testing.T) {
	var b strings.Builder
	b.WriteString("Subject: big\nContent-Type: multipart/mixed; boundary=z\n\n--z\n\n")
	for i := 0; b.Len() < 600<<10; i++ {
		fmt.Fprintf(&b, "line %d %s\n", i, strings.Repeat("x", i%97))
		if i%1000 == 999 {
			b.WriteString("\r\n") // a CRLF now and then
		}
	}
	b.WriteString("--z--\n")
	file := []byte(b.String())
	s := mustParse(t, b.String())
	if len(s.marks) < 9 {
		t.Fatalf("only %d checkpoints", len(s.marks))
	}
	crlf := toCRLF(file)
	body := s.Root.Parts[0].Body
	partCRLF := crlf[body.CRLFStart:body.CRLFEnd]
	for _, off := range []uint64{0, 1, 65535, 65536, 65537, 200000, 400001, uint64(len(partCRLF)) - 3, uint64(len(partCRLF)) + 5} {
		for _, sec := range []Section{{}, {Part: []uint32{1}}} {
			want := crlf
			if len(sec.Part) > 0 {
				want = partCRLF
			}
			r, n, err := s.Open(bytes.NewReader(file), sec, &Partial{Offset: off, Count: 1000, HasCount: true})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			lo := min(off, uint64(len(want)))
			hi := min(off+1000, uint64(len(want)))
			if !bytes.Equal(got, want[lo:hi]) || n != int64(hi-lo) {
				t.Errorf("section %v <%d.1000>: got %d octets (said %d), want %d", sec.Part, off, len(got), n, hi-lo)
			}
		}
	}
}

func TestOpenSections(t *testing.T) {
	text := "Subject: s\nTo: a@b\n continued\nFrom: c@d\n\n" +
		"body\n"
	s := mustParse(t, text)
	cases := []struct {
		sec  Section
		want string
		err  error
	}{
		{Section{Specifier: "HEADER.FIELDS", Fields: []string{"to", "X-None"}}, "To: a@b\r\n continued\r\n\r\n", nil},
		{Section{Specifier: "HEADER.FIELDS.NOT", Fields: []string{"TO"}}, "Subject: s\r\nFrom: c@d\r\n\r\n", nil},
		{Section{Specifier: "TEXT"}, "body\r\n", nil},
		{Section{Part: []uint32{1}}, "body\r\n", nil},
		{Section{Part: []uint32{1}, Specifier: "MIME"}, "Subject: s\r\nTo: a@b\r\n continued\r\nFrom: c@d\r\n\r\n", nil},
		{Section{Part: []uint32{2}}, "", ErrNoSection},
		{Section{Part: []uint32{1}, Specifier: "HEADER"}, "", ErrNoSection},
	}
	for _, c := range cases {
		r, _, err := s.Open(strings.NewReader(text), c.sec, nil)
		if !errors.Is(err, c.err) {
			t.Errorf("%+v: error %v, want %v", c.sec, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		got, _ := io.ReadAll(r)
		if string(got) != c.want {
			t.Errorf("%+v: %q, want %q", c.sec, got, c.want)
		}
	}
	// A file shorter than parsed is reported, never served short.
	r, _, err := s.Open(strings.NewReader(text[:20]), Section{}, nil)
	if err == nil {
		_, err = io.ReadAll(r)
	}
	if !errors.Is(err, ErrFileChanged) {
		t.Errorf("truncated file: %v", err)
	}
}

func TestBinary(t *testing.T) {
	text := "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\naGVs\nbG8g\nd29y bGQ=\n--b\n" +
		"Content-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 soft=\nbreak\nline2\n--b\nContent-Transfer-Encoding: x-uuencode\n\nzz\n--b\n\nplain\n--b--\n"
	s := mustParse(t, text)
	cases := []struct {
		part uint32
		want string
		err  error
	}{
		{1, "hello world", nil},
		{2, "café softbreak\r\nline2", nil},
		{3, "", ErrUnknownEncoding},
		{4, "plain", nil},
		{5, "", ErrNoSection},
	}
	for _, c := range cases {
		path := []uint32{c.part}
		n, err := s.BinarySize(strings.NewReader(text), path)
		if !errors.Is(err, c.err) {
			t.Errorf("part %d: %v, want %v", c.part, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		r, m, err := s.OpenBinary(strings.NewReader(text), path, &Partial{Offset: 1, Count: 100, HasCount: true})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		if n != int64(len(c.want)) || string(got) != c.want[1:] || m != n-1 {
			t.Errorf("part %d: size %d, partial %q (%d), want %q", c.part, n, got, m, c.want)
		}
	}
}

func TestLimits(t *testing.T) {
	deep := messagetest.NestedMultipart(100)
	s := mustParse(t, deep)
	if !s.Truncated {
		t.Error("depth 100 not truncated")
	}
	checkInvariants(t, []byte(deep), s)

	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=q\n\n")
	for i := 0; i < MaxParts+50; i++ {
		b.WriteString("--q\n\nx\n")
	}
	s = mustParse(t, b.String())
	if !s.Truncated || len(s.Root.Parts) >= MaxParts {
		t.Errorf("%d parts, truncated %v", len(s.Root.Parts), s.Truncated)
	}
	// A header line far longer than the scan buffer.
	long := "To: " + strings.Repeat("a@b, ", 100000) + "c@d\n\n"
	s = mustParse(t, long)
	if n := len(s.Envelope().To); n == 0 || n > maxListAddress {
		t.Errorf("%d addresses kept", n)
	}
}

func TestCacheRoundTrip(t *testing.T) {
	for _, m := range corpus {
		s := mustParse(t, m.Text)
		rec, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Structure
		if err := back.UnmarshalBinary(rec); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if !reflect.DeepEqual(s, &back) {
			t.Errorf("%s: round trip differs", m.Name)
		}
		// Every single-octet change and every truncation is refused.
		for i := 0; i < len(rec); i += 1 + len(rec)/200 {
			bad := bytes.Clone(rec)
			bad[i] ^= 0x20
			if err := back.UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: flipped octet %d: %v", m.Name, i, err)
			}
			if err := back.UnmarshalBinary(rec[:i]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: truncated at %d: %v", m.Name, i, err)
			}
		}
	}
}

func TestAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []Address
	}{
		{"undisclosed-recipients:;", []Address{{Kind: AddrGroupStart, Mailbox: "undisclosed-recipients"}, {Kind: AddrGroupEnd}}},
		{`"Last, First" <f@l.test>`, []Address{{Name: "Last, First", Mailbox: "f", Host: "l.test"}}},
		{"a@b (Real Name)", []Address{{Name: "Real Name", Mailbox: "a", Host: "b"}}},
		{"<@r1,@r2:u@h>", []Address{{Route: "@r1,@r2", Mailbox: "u", Host: "h"}}},
		{"g: ;", []Address{{Kind: AddrGroupStart, Mailbox: "g"}, {Kind: AddrGroupEnd}}},
		{"g: x@y", []Address{{Kind: AddrGroupStart, Mailbox: "g"}, {Mailbox: "x", Host: "y"}, {Kind: AddrGroupEnd}}},
		{"=?utf-8?q?J=C3=B6?= <j@x>", []Address{{Name: "=?utf-8?q?J=C3=B6?=", Mailbox: "j", Host: "x"}}},
		{"Jörg <jö@exämple>", []Address{{Name: "Jörg", Mailbox: "jö", Host: "exämple"}}},
		{"nodomain", []Address{{Mailbox: "nodomain", Host: missingDomain}}},
		{"<>", []Address{{Mailbox: missingMailbox, Host: missingDomain}}},
		{", ,", nil},
		{`"unterminated <a@b>`, []Address{{Mailbox: `"unterminated <a@b>`, Host: missingDomain}}},
	}
	for _, tc := range tests {
		if got := ParseAddressList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}
