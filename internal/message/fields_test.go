package message

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// referenceFields is the answer of the slow path (headerFields through a
// crlfReader), the one AppendHeaderFields must equal.
func referenceFields(t testing.TB, block []byte, names []string, not bool) []byte {
	t.Helper()
	crlf := int64(len(AppendCRLF(nil, block)))
	sp := Span{End: int64(len(block)), CRLFEnd: crlf}
	b, err := (&Structure{}).headerFields(bytes.NewReader(block), sp, names, not)
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	return b
}

func TestAppendHeaderFields(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 5000)
	farColon := strings.Repeat("N", maxFieldNameLine) + ": value"
	tests := []struct {
		name  string
		block string
		names []string
		not   bool
		want  string
	}{
		{"simple LF", "From: a\nTo: b\nSubject: s\n\n", []string{"FROM", "subject"}, false,
			"From: a\r\nSubject: s\r\n\r\n"},
		{"simple CRLF", "From: a\r\nTo: b\r\nSubject: s\r\n\r\n", []string{"from"}, false,
			"From: a\r\n\r\n"},
		{"NOT", "From: a\nTo: b\nSubject: s\n\n", []string{"to"}, true,
			"From: a\r\nSubject: s\r\n\r\n"},
		{"folded", "Subject: one\n two\n\tthree\nTo: b\n  more\n\n", []string{"subject"}, false,
			"Subject: one\r\n two\r\n\tthree\r\n\r\n"},
		{"folded NOT", "Subject: one\n two\nTo: b\n  more\n\n", []string{"subject"}, true,
			"To: b\r\n  more\r\n\r\n"},
		{"repeated", "Received: 1\nFrom: a\nReceived: 2\n\n", []string{"received"}, false,
			"Received: 1\r\nReceived: 2\r\n\r\n"},
		{"mixed case in header", "fROM: a\nsUbJeCt: s\n\n", []string{"From", "SUBJECT"}, false,
			"fROM: a\r\nsUbJeCt: s\r\n\r\n"},
		{"absent", "To: b\n\n", []string{"from", "subject"}, false, "\r\n"},
		{"no blank line", "From: a\nSubject: s", []string{"subject"}, false,
			"Subject: s\r\n\r\n"},
		{"no blank line, ends with LF", "From: a\nSubject: s\n", []string{"subject", "from"}, false,
			"From: a\r\nSubject: s\r\n\r\n"},
		{"empty block", "", []string{"from"}, false, "\r\n"},
		{"only blank", "\n", []string{"from"}, true, "\r\n"},
		{"8-bit", "Subject: Grüße\nFrom: Jörg <j@x>\n\n", []string{"subject"}, false,
			"Subject: Grüße\r\n\r\n"},
		{"8-bit name is no field", "Sübject: x\nSubject: y\n\n", []string{"sübject"}, true,
			"Subject: y\r\n\r\n"},
		{"space before colon", "Subject : s\nFrom: a\n\n", []string{"subject"}, false,
			"Subject : s\r\n\r\n"},
		{"line without colon", "garbage\n more\nFrom: a\n\n", []string{"from"}, true,
			"\r\n"},
		{"leading continuation", " cont\nFrom: a\n\n", []string{"x"}, true,
			"From: a\r\n\r\n"},
		{"bare CR kept", "Subject: a\rb\nFrom: c\r\r\n\n", []string{"subject", "from"}, false,
			"Subject: a\rb\r\nFrom: c\r\r\n\r\n"},
		{"CR at the end", "Subject: a\r", []string{"subject"}, false, "Subject: a\r\r\n\r\n"},
		{"body after blank", "From: a\n\nFrom: body\n", []string{"from"}, false, "From: a\r\n\r\n"},
		{"CRLF blank then body", "From: a\r\n\r\nFrom: body\r\n", []string{"from"}, false, "From: a\r\n\r\n"},
		{"long line", long + "\nFrom: a\n\n", []string{"x-long"}, false, long + "\r\n\r\n"},
		{"colon beyond 4 KB", farColon + "\nFrom: a\n\n", []string{"x"}, true, "From: a\r\n\r\n"},
		{"empty name", ": x\nFrom: a\n\n", []string{""}, true, "From: a\r\n\r\n"},
		{"Kelvin sign folds to k", "Keywords: k\n\n", []string{"\u212aeywords"}, false, "Keywords: k\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendHeaderFields(nil, []byte(tt.block), NewFieldSet(tt.names, tt.not))
			if string(got) != tt.want {
				t.Errorf("fast: got %q, want %q", got, tt.want)
			}
			if ref := referenceFields(t, []byte(tt.block), tt.names, tt.not); string(ref) != tt.want {
				t.Errorf("reference: got %q, want %q", ref, tt.want)
			}
			// Appending keeps what dst holds.
			dst := AppendHeaderFields([]byte("prefix"), []byte(tt.block), NewFieldSet(tt.names, tt.not))
			if string(dst) != "prefix"+tt.want {
				t.Errorf("append: got %q", dst)
			}
		})
	}
}

func sectionOf(names []string, not bool) Section {
	switch {
	case names == nil:
		return Section{Specifier: "HEADER"}
	case not:
		return Section{Specifier: "HEADER.FIELDS.NOT", Fields: names}
	}
	return Section{Specifier: "HEADER.FIELDS", Fields: names}
}

// openSection is the answer through Open, the general path.
func openSection(t testing.TB, st *Structure, file []byte, sec Section) []byte {
	t.Helper()
	r, n, err := st.Open(bytes.NewReader(file), sec, nil)
	if err != nil {
		t.Fatalf("Open %v: %v", sec, err)
	}
	b, err := io.ReadAll(r)
	if err != nil || int64(len(b)) != n {
		t.Fatalf("Open %v: %d of %d octets, %v", sec, len(b), n, err)
	}
	return b
}

func TestAppendHeaderFieldsNoAllocs(t *testing.T) {
	block := []byte("From: a\nTo: b\nSubject: hello\n world\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\n")
	fs := NewFieldSet([]string{"FROM", "SUBJECT", "DATE"}, false)
	dst := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { dst = AppendHeaderFields(dst[:0], block, fs) }); n != 0 {
		t.Errorf("%v allocations per answer", n)
	}
}

// TestAppendHeaderSection checks the Structure and record entry points
// against Open (the path FETCH used before) on the corpus, LF and CRLF,
// for whole and header-only Structures.
func TestAppendHeaderSection(t *testing.T) {
	lists := []struct {
		names []string
		not   bool
	}{
		{[]string{"FROM", "SUBJECT", "DATE"}, false},
		{[]string{"to", "cc"}, true},
		{[]string{"content-type", "x-absent"}, false},
		{nil, false}, // HEADER
	}
	for _, m := range corpus {
		for _, text := range []string{m.Text, strings.ReplaceAll(m.Text, "\n", "\r\n")} {
			checkHeaderSections(t, m.Name, []byte(text), lists)
		}
	}
}

func checkHeaderSections(t *testing.T, name string, file []byte, lists []struct {
	names []string
	not   bool
}) {
	t.Helper()
	whole, err := Parse(bytes.NewReader(file))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	hdr, err := ParseHeader(bytes.NewReader(file), whole.Size, whole.CRLFSize)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, st := range []*Structure{whole, hdr} {
		rec, err := st.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		block, ok := RecordHeaderBlock(rec)
		if st.HeaderBlock() == nil {
			// Too big to keep: both entry points say so, FETCH opens the file.
			if _, sok := st.AppendHeaderSection(nil, nil); ok || sok {
				t.Fatalf("%s: a header block where none is kept", name)
			}
			continue
		}
		if !ok || !bytes.Equal(block, st.HeaderBlock()) {
			t.Fatalf("%s: RecordHeaderBlock = %q, %v; want %q", name, block, ok, st.HeaderBlock())
		}
		for _, l := range lists {
			var fs *FieldSet
			sec := sectionOf(l.names, l.not)
			if l.names != nil {
				fs = NewFieldSet(l.names, l.not)
			}
			got, ok := st.AppendHeaderSection(nil, fs)
			if !ok {
				t.Fatalf("%s: no header block", name)
			}
			if fromRec := AppendHeaderSection(nil, block, fs); !bytes.Equal(fromRec, got) {
				t.Errorf("%s %v: record %q, structure %q", name, sec, fromRec, got)
			}
			want := openSection(t, st, file, sec)
			if !bytes.Equal(got, want) {
				t.Errorf("%s %v: got %q, Open gives %q", name, sec, got, want)
			}
			if l.names != nil {
				if ref := referenceFields(t, st.HeaderBlock(), l.names, l.not); !bytes.Equal(got, ref) {
					t.Errorf("%s %v: got %q, reference %q", name, sec, got, ref)
				}
			}
		}
	}
}

// TestHeaderFieldsBenchCorpus compares the fast and the reference
// extraction on every message of a Maildir named by
// MAILROOM_FIELDS_MAILDIR (e.g. the bench fixture's Maildir; skipped
// without it).
func TestHeaderFieldsBenchCorpus(t *testing.T) {
	dir := os.Getenv("MAILROOM_FIELDS_MAILDIR")
	if dir == "" {
		t.Skip("MAILROOM_FIELDS_MAILDIR not set")
	}
	lists := []struct {
		names []string
		not   bool
	}{
		{[]string{"FROM", "SUBJECT", "DATE"}, false},
		{[]string{"received", "message-id"}, false},
		{[]string{"from", "to", "received"}, true},
		{nil, false},
	}
	n := 0
	for _, sub := range []string{"cur", "new"} {
		names, err := filepath.Glob(filepath.Join(dir, sub, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range names {
			file, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			checkHeaderSections(t, filepath.Base(p), file, lists)
			n++
		}
	}
	t.Logf("%d messages agree", n)
}

func FuzzAppendHeaderFields(f *testing.F) {
	f.Add([]byte("From: a\nTo: b\nSubject: s\n x\n\nbody"), "from subject", false)
	f.Add([]byte("From: a\r\nTo: b\r\n\r\n"), "TO", true)
	f.Add([]byte("Subject: a\rb\nFrom: c\r\r\n\n"), "subject from", false)
	f.Add([]byte(" cont\n: x\nX : y\nSübject: z"), "x sübject", true)
	f.Add([]byte("A: b\r"), "a", false)
	f.Fuzz(func(t *testing.T, block []byte, names string, not bool) {
		if len(block) > 3*maxFieldNameLine {
			return
		}
		list := strings.Fields(names)
		got := AppendHeaderFields(nil, block, NewFieldSet(list, not))
		if want := referenceFields(t, block, list, not); !bytes.Equal(got, want) {
			t.Fatalf("fast %q, reference %q", got, want)
		}
	})
}

func FuzzRecordHeaderBlock(f *testing.F) {
	for _, m := range corpus {
		s, err := Parse(strings.NewReader(m.Text))
		if err != nil {
			f.Fatal(err)
		}
		rec, err := s.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
	}
	f.Add([]byte("MRst\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		block, ok := RecordHeaderBlock(rec)
		var s Structure
		if err := s.UnmarshalBinary(rec); err != nil {
			return // the walker may accept what the checksum refuses
		}
		want := s.HeaderBlock()
		wantOK := want != nil && s.Root.Header.Start == 0
		if ok != wantOK || (ok && !bytes.Equal(block, want)) {
			t.Fatalf("RecordHeaderBlock = %q, %v; UnmarshalBinary has %q", block, ok, want)
		}
	})
}

// BenchmarkHeaderFields: one message's BODY[HEADER.FIELDS (FROM SUBJECT
// DATE)] from its header block, the fast path against the reference.
func BenchmarkHeaderFields(b *testing.B) {
	block := []byte(corpus[0].Text[:strings.Index(corpus[0].Text, "\n\n")+2])
	names := []string{"FROM", "SUBJECT", "DATE"}
	b.Run("fast", func(b *testing.B) {
		fs := NewFieldSet(names, false)
		dst := make([]byte, 0, 4096)
		b.ReportAllocs()
		for b.Loop() {
			dst = AppendHeaderFields(dst[:0], block, fs)
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			referenceFields(b, block, names, false)
		}
	})
	s, err := Parse(bytes.NewReader([]byte(corpus[0].Text)))
	if err != nil {
		b.Fatal(err)
	}
	rec, err := s.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("RecordHeaderBlock", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := RecordHeaderBlock(rec); !ok {
				b.Fatal("no block")
			}
		}
	})
	b.Run("UnmarshalShared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := UnmarshalShared(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
