package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"mailroom/imapd/wire"
)

// toCRLF is the reference conversion: every LF not preceded by CR
// becomes CRLF.
func toCRLF(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

func mustParse(t testing.TB, text string) *Structure {
	t.Helper()
	s, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bodyStructure(t *testing.T, s *Structure, ext bool) string {
	t.Helper()
	var buf bytes.Buffer
	w := wire.NewWriter(&buf)
	WriteBodyStructure(w, s, ext)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
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
			s := mustParse(t, tc.text)
			if got := bodyStructure(t, s, true); got != tc.want {
				t.Errorf("BODYSTRUCTURE\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestCRLFFileSameAnswers: a message stored with CRLF line ends gives the
// same sizes, structure and envelope as with LF line ends, and BODY[] of
// the LF file is exactly its CRLF form.
func TestCRLFFileSameAnswers(t *testing.T) {
	for _, m := range corpus {
		lfText := strings.ReplaceAll(m.text, "\r\n", "\n")
		crlfText := string(toCRLF([]byte(lfText)))
		a, b := mustParse(t, lfText), mustParse(t, crlfText)
		if a.CRLFSize != int64(len(crlfText)) || b.CRLFSize != b.Size || b.Size != int64(len(crlfText)) {
			t.Errorf("%s: sizes LF %d/%d CRLF %d/%d, want %d", m.name, a.Size, a.CRLFSize, b.Size, b.CRLFSize, len(crlfText))
		}
		if x, y := bodyStructure(t, a, true), bodyStructure(t, b, true); x != y {
			t.Errorf("%s: LF %s\nCRLF %s", m.name, x, y)
		}
		if !reflect.DeepEqual(a.Envelope(), b.Envelope()) {
			t.Errorf("%s: envelopes differ", m.name)
		}
		r, n, err := a.Open(strings.NewReader(lfText), wire.Section{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != crlfText || n != int64(len(got)) {
			t.Errorf("%s: BODY[] %q (%d, %v)", m.name, got, n, err)
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
		for _, sec := range []wire.Section{{}, {Part: []uint32{1}}} {
			want := crlf
			if len(sec.Part) > 0 {
				want = partCRLF
			}
			r, n, err := s.Open(bytes.NewReader(file), sec, &wire.Partial{Offset: off, Count: 1000, HasCount: true})
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
		sec  wire.Section
		want string
		err  error
	}{
		{wire.Section{Specifier: "HEADER.FIELDS", Fields: []string{"to", "X-None"}}, "To: a@b\r\n continued\r\n\r\n", nil},
		{wire.Section{Specifier: "HEADER.FIELDS.NOT", Fields: []string{"TO"}}, "Subject: s\r\nFrom: c@d\r\n\r\n", nil},
		{wire.Section{Specifier: "TEXT"}, "body\r\n", nil},
		{wire.Section{Part: []uint32{1}}, "body\r\n", nil},
		{wire.Section{Part: []uint32{1}, Specifier: "MIME"}, "Subject: s\r\nTo: a@b\r\n continued\r\nFrom: c@d\r\n\r\n", nil},
		{wire.Section{Part: []uint32{2}}, "", ErrNoSection},
		{wire.Section{Part: []uint32{1}, Specifier: "HEADER"}, "", ErrNoSection},
	}
	for _, c := range cases {
		r, _, err := s.Open(strings.NewReader(text), c.sec, nil)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: error %v, want %v", c.sec, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		got, _ := io.ReadAll(r)
		if string(got) != c.want {
			t.Errorf("%s: %q, want %q", c.sec, got, c.want)
		}
	}
	// A file shorter than parsed is reported, never served short.
	r, _, err := s.Open(strings.NewReader(text[:20]), wire.Section{}, nil)
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
		r, m, err := s.OpenBinary(strings.NewReader(text), path, &wire.Partial{Offset: 1, Count: 100, HasCount: true})
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
	var b strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i)
	}
	b.WriteString("\ninnermost\n")
	s := mustParse(t, b.String())
	if !s.Truncated {
		t.Error("depth 100 not truncated")
	}
	if _, err := canon([]byte(bodyStructure(t, s, true))); err != nil {
		t.Errorf("deep BODYSTRUCTURE does not parse: %v", err)
	}
	checkInvariants(t, []byte(b.String()), s)

	b.Reset()
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
		s := mustParse(t, m.text)
		rec, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Structure
		if err := back.UnmarshalBinary(rec); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if !reflect.DeepEqual(s, &back) {
			t.Errorf("%s: round trip differs", m.name)
		}
		// Every single-octet change and every truncation is refused.
		for i := 0; i < len(rec); i += 1 + len(rec)/200 {
			bad := bytes.Clone(rec)
			bad[i] ^= 0x20
			if err := back.UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: flipped octet %d: %v", m.name, i, err)
			}
			if err := back.UnmarshalBinary(rec[:i]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: truncated at %d: %v", m.name, i, err)
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
