package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestWriterStringRoundTrip(t *testing.T) {
	inputs := []string{
		"", "simple", "NIL", "nil", "with space", `quote"d`, `back\slash`, "tab\there",
		"cr\rlf\n", "crlf\r\n", "Entwürfe", "日本語", "\xff\xfe invalid", "]", "(paren)", "{5}", "%*",
		strings.Repeat("long ", 3000), "\x01\x7f",
	}
	for _, utf8 := range []bool{false, true} {
		for _, in := range inputs {
			for _, form := range []string{"String", "AString"} {
				var buf bytes.Buffer
				w := NewWriter(&buf)
				w.SetUTF8(utf8)
				w.bw.WriteString("t X ")
				if form == "String" {
					w.String(in)
				} else {
					w.AString(in)
				}
				w.CRLF()
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
				wire := buf.String()
				if !utf8 && strings.IndexFunc(strings.SplitN(wire, "\r\n", 2)[0], func(r rune) bool { return r >= 0x80 }) >= 0 {
					t.Errorf("%s(%q) sent 8-bit outside a literal: %q", form, in, wire)
				}
				s := newSession(wire, Options{UTF8: utf8})
				cmd, err := s.r.ReadCommand()
				if err != nil {
					t.Errorf("%s(%q) utf8=%v: wire %q does not read back: %v", form, in, utf8, wire, err)
					continue
				}
				got, ok := cmd.Args[0].AString()
				if !ok || got != in || len(cmd.Args) != 1 {
					t.Errorf("%s(%q) utf8=%v: read back %q (%v) from %q", form, in, utf8, got, ok, wire)
				}
				if cmd.Args[0].Kind == KindNIL {
					t.Errorf("%s(%q) reads back as NIL", form, in)
				}
			}
		}
	}
}

func TestWriterNULBecomesSpace(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.String("a\x00b")
	if err := w.Flush(); err != nil || buf.String() != "{3}\r\na b" {
		t.Errorf("got %q %v", buf.String(), err)
	}
}

func TestWriterResponses(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Status("a1", "OK", "READ-WRITE", "SELECT completed")
	w.Status("", "OK", "UIDVALIDITY 3857529045", "UIDs valid")
	w.Status("a2", "NO", "", "")
	w.Status("a3", "BAD", "X]Y", "line\r\nbreak")
	w.Status("a4", "NO", "", "[not a code")
	w.Untagged()
	w.Atom("FLAGS")
	w.SP()
	w.Flags([]string{`\seen`, "$Forwarded", "bad keyword", `\*`})
	w.CRLF()
	w.Untagged()
	w.Number(12)
	w.SP()
	w.Atom("FETCH")
	w.SP()
	w.OpenList()
	w.Atom("INTERNALDATE")
	w.SP()
	w.DateTime(time.Date(1996, 7, 17, 2, 44, 25, 0, time.FixedZone("", -7*3600)))
	w.SP()
	w.Atom("X")
	w.SP()
	w.NString("", true)
	w.SP()
	w.NString("v", false)
	w.SP()
	w.Atom("not an atom")
	w.CloseList()
	w.CRLF()
	w.WriteError(&Error{Class: ClassTooBig, Code: "TOOBIG", Text: "literal too big"})
	w.WriteError(&Error{Class: ClassRefused, Tag: "x", Status: "NO", Code: "TOOBIG", Text: "no"})
	if err := w.Continue("Ready"); err != nil {
		t.Fatal(err)
	}
	want := "a1 OK [READ-WRITE] SELECT completed\r\n" +
		"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n" +
		"a2 NO done\r\n" +
		"a3 BAD [X Y] line  break\r\n" +
		"a4 NO  not a code\r\n" +
		"* FLAGS (\\Seen $Forwarded \\*)\r\n" +
		"* 12 FETCH (INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" X NIL \"v\" \"not an atom\")\r\n" +
		"* BAD [TOOBIG] literal too big\r\n" +
		"x NO [TOOBIG] no\r\n" +
		"+ Ready\r\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestWriterTextEightBit(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Status("a", "OK", "", "Grüße")
	w.SetUTF8(true)
	w.Status("b", "OK", "", "Grüße")
	w.Flush()
	if want := "a OK Gr??e\r\nb OK Grüße\r\n"; buf.String() != want {
		t.Errorf("got %q", buf.String())
	}
}

func TestWriterLiteralStreaming(t *testing.T) {
	body := strings.Repeat("0123456789", 100000)
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Literal(int64(len(body)), iotest.OneByteReader(strings.NewReader(body))); err != nil {
		t.Fatal(err)
	}
	if err := w.Literal8(3, strings.NewReader("a\x00b")); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if want := "{1000000}\r\n" + body + "~{3}\r\na\x00b"; buf.String() != want {
		t.Errorf("literal wire differs (%d octets)", buf.Len())
	}
	// A short source is an error the session must close on.
	w = NewWriter(io.Discard)
	err := w.Literal(10, strings.NewReader("abc"))
	if err == nil || !errors.Is(err, io.EOF) {
		t.Errorf("short literal: %v", err)
	}
}

func TestWriterStickyError(t *testing.T) {
	boom := errors.New("boom")
	w := NewWriter(bufio.NewWriterSize(errWriter{boom}, 16))
	w.Status("a", "OK", "", strings.Repeat("x", 5000))
	if err := w.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush = %v", err)
	}
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

// TestPooledWriter: a pooled Writer holds a buffer only between its first
// write and Release; Release keeps unsent data and a sticky error.
func TestPooledWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewPooledWriter(&out)
	if w.bw != nil {
		t.Fatal("new pooled writer holds a buffer")
	}
	w.Release() // nothing held: a no-op
	w.Status("a", "OK", "", "one")
	w.Release() // unsent data: keeps the buffer
	if w.bw == nil {
		t.Fatal("Release dropped unsent data")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	w.Release()
	if w.bw != nil {
		t.Fatal("flushed writer kept its buffer after Release")
	}
	w.Status("b", "OK", "", "two")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "a OK one\r\nb OK two\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}

	f := NewPooledWriter(failingWriter{})
	f.Status("c", "OK", "", "lost")
	if err := f.Flush(); err == nil {
		t.Fatal("flush to a failing writer succeeded")
	}
	f.Release()
	if f.bw == nil {
		t.Fatal("Release dropped a failed writer's sticky error")
	}
	if err := f.Flush(); err == nil {
		t.Fatal("the error is not sticky")
	}
}
