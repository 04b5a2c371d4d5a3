package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// session feeds input to a Reader and records the continuation requests
// it would have sent.
type session struct {
	r     *Reader
	conts []LiteralInfo
}

func newSession(input string, opts Options) *session {
	s := &session{}
	if opts.Continue == nil {
		opts.Continue = func(l LiteralInfo) error {
			s.conts = append(s.conts, l)
			return nil
		}
	}
	s.r = NewReader(bufio.NewReaderSize(strings.NewReader(input), 16), opts)
	return s
}

// dump renders tokens compactly for comparisons.
func dump(toks []Token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		dumpToken(&b, t)
	}
	return b.String()
}

func dumpToken(b *strings.Builder, t Token) {
	switch t.Kind {
	case KindAtom:
		b.WriteString(t.Value)
	case KindNumber:
		fmt.Fprintf(b, "#%d", t.Num)
	case KindSeqSet:
		b.WriteString("S:" + t.Value)
	case KindNIL:
		b.WriteString("NIL")
	case KindQuoted:
		fmt.Fprintf(b, "%q", t.Value)
	case KindLiteral:
		mark := "L"
		if t.Binary {
			mark = "L8"
		}
		if !t.Sync {
			mark += "+"
		}
		fmt.Fprintf(b, "%s%q", mark, t.Value)
	case KindList:
		b.WriteString("(" + dump(t.List) + ")")
	case KindSection:
		b.WriteString(t.Value + "[" + dump(t.List) + "]")
		if t.Partial != nil {
			fmt.Fprintf(b, "<%d.%d>", t.Partial.Offset, t.Partial.Count)
		}
	}
}

func TestReadCommandValid(t *testing.T) {
	tests := []struct {
		in, tag, name string
		uid           bool
		args          string
	}{
		// RFC 9051 §6 and §8 examples.
		{"a001 CAPABILITY\r\n", "a001", "CAPABILITY", false, ""},
		{"a002 NOOP\r\n", "a002", "NOOP", false, ""},
		{"A023 LOGOUT\r\n", "A023", "LOGOUT", false, ""},
		{"a001 login SMITH SESAME\r\n", "a001", "LOGIN", false, "SMITH SESAME"},
		{"A142 SELECT INBOX\r\n", "A142", "SELECT", false, "INBOX"},
		{"A932 EXAMINE blurdybloop\r\n", "A932", "EXAMINE", false, "blurdybloop"},
		{"A003 CREATE owatagusiam/\r\n", "A003", "CREATE", false, "owatagusiam/"},
		{"A683 RENAME blurdybloop sarasoop\r\n", "A683", "RENAME", false, "blurdybloop sarasoop"},
		{"A101 LIST \"\" \"\"\r\n", "A101", "LIST", false, `"" ""`},
		{"A102 LIST #news.comp.mail.misc \"\"\r\n", "A102", "LIST", false, `#news.comp.mail.misc ""`},
		{"A202 LIST ~/Mail/ %\r\n", "A202", "LIST", false, "~/Mail/ %"},
		{"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n", "A042", "STATUS", false, "blurdybloop (UIDNEXT MESSAGES)"},
		{"a003 fetch 12 full\r\n", "a003", "FETCH", false, "#12 full"},
		{"a004 fetch 12 body[header]\r\n", "a004", "FETCH", false, "#12 body[header]"},
		{"a005 store 12 +flags \\deleted\r\n", "a005", "STORE", false, `#12 +flags \deleted`},
		{"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n", "A654", "FETCH", false, "S:2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])"},
		{"A999 UID FETCH 4827313:4828442 FLAGS\r\n", "A999", "FETCH", true, "S:4827313:4828442 FLAGS"},
		{"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n", "A003", "STORE", false, `S:2:4 +FLAGS (\Deleted)`},
		{"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n", "A282", "SEARCH", false, `RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"`},
		{"A284 SEARCH CHARSET UTF-8 TEXT {8+}\r\nмаша\r\n", "A284", "SEARCH", false, `CHARSET UTF-8 TEXT L+"маша"`},
		{"a FETCH 1 BODY.PEEK[1.2.MIME]<0.100>\r\n", "a", "FETCH", false, "#1 BODY.PEEK[1.2.MIME]<0.100>"},
		{"a FETCH 1 BINARY.PEEK[1]<5.10>\r\n", "a", "FETCH", false, "#1 BINARY.PEEK[#1]<5.10>"},
		{"a FETCH * (BODY[])\r\n", "a", "FETCH", false, "S:* (BODY[])"},
		{"a SEARCH $\r\n", "a", "SEARCH", false, "S:$"},
		{"a login {4}\r\nfred {4}\r\npass\r\n", "a", "LOGIN", false, `L"fred" L"pass"`},
		{"a ID (\"name\" \"x\" \"version\" NIL)\r\n", "a", "ID", false, `("name" "x" "version" NIL)`},
		{"a LOGIN \"f\\\\o\\\"o\" x\n", "a", "LOGIN", false, `"f\\o\"o" x`},
		{"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n", "a", "SELECT", false, "INBOX (QRESYNC (#67890007 #20050715194045000 S:41,43:211,214:541))"},
		{"a FETCH 1 (BODY[HEADER.FIELDS ({4}\r\nDATE)])\r\n", "a", "FETCH", false, `#1 (BODY[HEADER.FIELDS (L"DATE")])`},
		{"a X ~{3}\r\na\x00b\r\n", "a", "X", false, `L8"a\x00b"`},
		{"a LIST \"\" foo]bar\r\n", "a", "LIST", false, `"" foo]bar`},
		{"a NOOP 18446744073709551616\r\n", "a", "NOOP", false, "18446744073709551616"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s := newSession(tt.in, Options{})
			cmd, err := s.r.ReadCommand()
			if err != nil {
				t.Fatalf("ReadCommand: %v", err)
			}
			if cmd.Tag != tt.tag || cmd.Name != tt.name || cmd.UID != tt.uid {
				t.Errorf("head = %q %q %v, want %q %q %v", cmd.Tag, cmd.Name, cmd.UID, tt.tag, tt.name, tt.uid)
			}
			if got := dump(cmd.Args); got != tt.args {
				t.Errorf("args = %s\n want %s", got, tt.args)
			}
			if _, err := s.r.ReadCommand(); !errors.Is(err, io.EOF) {
				t.Errorf("after command: %v, want EOF", err)
			}
		})
	}
}

func TestReadCommandInvalid(t *testing.T) {
	tests := []struct {
		in    string
		class ErrorClass
		tag   string
		fatal bool
	}{
		{"\r\n", ClassEmpty, "", false},
		{"+a NOOP\r\n", ClassSyntax, "", false},
		{"* NOOP\r\n", ClassSyntax, "", false},
		{"a\"b NOOP\r\n", ClassSyntax, "", false},
		{"abc\r\n", ClassSyntax, "abc", false},
		{"abc \r\n", ClassSyntax, "abc", false},
		{"a UID\r\n", ClassSyntax, "a", false},
		{"a NOOP  x\r\n", ClassSyntax, "a", false},
		{"a NOOP x \r\n", ClassSyntax, "a", false},
		{"a LOGIN \"unterminated\r\n", ClassSyntax, "a", false},
		{"a LOGIN \"bad\\q\" x\r\n", ClassSyntax, "a", false},
		{"a LOGIN \"caf\xc3\xa9\" x\r\n", ClassSyntax, "a", false},
		{"a LOGIN caf\xc3\xa9 x\r\n", ClassSyntax, "a", false},
		{"a LOGIN (a b x\r\n", ClassSyntax, "a", false},
		{"a LOGIN a) x\r\n", ClassSyntax, "a", false},
		{"a LOGIN {3} x\r\n", ClassSyntax, "a", false},
		{"a LOGIN {x}\r\n", ClassSyntax, "a", false},
		{"a FETCH 1 BODY[HEADER\r\n", ClassSyntax, "a", false},
		{"a FETCH 1 BODY[]<1.0>\r\n", ClassSyntax, "a", false},
		{"a FETCH 1 BODY[]<1>\r\n", ClassSyntax, "a", false},
		{"a FETCH 1 BODY[]x\r\n", ClassSyntax, "a", false},
		{"a X {3}\r\na\x00b\r\n", ClassSyntax, "a", false},
		{"a X\x00 y\r\n", ClassSyntax, "a", false},
		{"a X y\rz\r\n", ClassSyntax, "a", false},
		{"a X " + strings.Repeat("(", 40) + "\r\n", ClassTooBig, "a", false},
		{"a X {99999999999}\r\n", ClassTooBig, "a", false},
		{"a X {4294967296+}\r\n", ClassTooBig, "a", true},
		{"a X {99999999999999999999999999+}\r\n", ClassTooBig, "a", true},
		{"a X " + strings.Repeat("x", 70000) + "\r\n", ClassTooBig, "a", false},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			s := newSession(tt.in+"z NOOP\r\n", Options{})
			_, err := s.r.ReadCommand()
			e, ok := AsError(err)
			if !ok {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Class != tt.class || e.Tag != tt.tag || e.Fatal != tt.fatal {
				t.Fatalf("err = %+v, want class %v tag %q fatal %v", e, tt.class, tt.tag, tt.fatal)
			}
			if tt.fatal {
				return
			}
			// The reader is back in step: the next command reads.
			cmd, err := s.r.ReadCommand()
			if err != nil || cmd.Tag != "z" || cmd.Name != "NOOP" {
				t.Fatalf("next command = %+v, %v", cmd, err)
			}
		})
	}
}

func TestNeverReadsRefusedSyncLiteral(t *testing.T) {
	refuse := func(l LiteralInfo) error {
		return &Error{Status: "NO", Code: "TOOBIG", Text: "too big"}
	}
	// The client waits for "+" and so sends no data; the next line is a
	// new command.
	s := newSession("a APPEND INBOX {10}\r\nb NOOP\r\n", Options{Continue: refuse})
	_, err := s.r.ReadCommand()
	e, ok := AsError(err)
	if !ok || e.Class != ClassRefused || e.Code != "TOOBIG" || e.StatusWord() != "NO" || e.Tag != "a" || e.Fatal {
		t.Fatalf("err = %+v", err)
	}
	cmd, err := s.r.ReadCommand()
	if err != nil || cmd.Tag != "b" {
		t.Fatalf("next = %+v %v", cmd, err)
	}
}

func TestSyncLiteralContinuation(t *testing.T) {
	s := newSession("a LOGIN {4}\r\nuser {8}\r\npassword\r\n", Options{})
	cmd, err := s.r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(cmd.Args); got != `L"user" L"password"` {
		t.Errorf("args = %s", got)
	}
	if len(s.conts) != 2 || s.conts[0].Size != 4 || s.conts[1].Size != 8 || !s.conts[0].Sync || s.conts[0].Tag != "a" || s.conts[0].Command != "LOGIN" {
		t.Errorf("continuations = %+v", s.conts)
	}
}

func TestNonSyncModes(t *testing.T) {
	big := strings.Repeat("x", 5000)
	tests := []struct {
		name  string
		mode  NonSyncMode
		in    string
		class ErrorClass // 0: success
	}{
		{"plus small", LiteralPlus, "a X {3+}\r\nabc\r\n", 0},
		{"plus big", LiteralPlus, "a X {5000+}\r\n" + big + "\r\n", 0},
		{"minus small", LiteralMinus, "a X {4096+}\r\n" + big[:4096] + "\r\n", 0},
		{"minus big", LiteralMinus, "a X {5000+}\r\n" + big + "\r\n", ClassTooBig},
		{"minus big sync ok", LiteralMinus, "a X {5000}\r\n" + big + "\r\n", 0},
		{"none", NoNonSync, "a X {3+}\r\nabc\r\n", ClassSyntax},
		{"none skips data that looks like a command", NoNonSync, "a X {9+}\r\nb LOGOUT\r\n", ClassSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(tt.in+"z NOOP\r\n", Options{NonSync: tt.mode})
			cmd, err := s.r.ReadCommand()
			if tt.class == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if len(s.conts) != boolCount(cmd.Args[0].Sync) {
					t.Errorf("continuations %d for sync=%v", len(s.conts), cmd.Args[0].Sync)
				}
			} else if e, ok := AsError(err); !ok || e.Class != tt.class || e.Fatal {
				t.Fatalf("err = %v, want class %v", err, tt.class)
			}
			cmd, err = s.r.ReadCommand()
			if err != nil || cmd.Tag != "z" {
				t.Fatalf("next = %+v %v", cmd, err)
			}
		})
	}
}

func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

// oneByteReader hands out one byte per Read, so every literal and line is
// split across reads.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestLiteralSplitAcrossReads(t *testing.T) {
	in := "a LOGIN {12+}\r\nhello\r\nworld {3}\r\nx y\r\nb APPEND INBOX (\\Seen) {10+}\r\n0123456789\r\n"
	r := NewReader(bufio.NewReaderSize(oneByteReader{strings.NewReader(in)}, 16),
		Options{Continue: func(LiteralInfo) error { return nil }})
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(cmd.Args); got != `L+"hello\r\nworld" L"x y"` {
		t.Errorf("args = %s", got)
	}
	cmd, err = r.ReadCommand()
	if err != nil || cmd.Message == nil {
		t.Fatalf("append: %+v %v", cmd, err)
	}
	data, err := io.ReadAll(cmd.Message)
	if err != nil || string(data) != "0123456789" {
		t.Fatalf("message = %q %v", data, err)
	}
	if err := r.NextMessage(cmd); err != nil || cmd.Message != nil {
		t.Fatalf("NextMessage: %v %+v", err, cmd)
	}
}

func TestAppendStreaming(t *testing.T) {
	msg1 := strings.Repeat("a", 100000)
	in := "A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {100000+}\r\n" + msg1 +
		" (\\Draft) {5}\r\nhello\r\nA004 NOOP\r\n"
	s := newSession(in, Options{Limits: Limits{MaxLiteral: 1000, MaxCommand: 2000}})
	cmd, err := s.r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(cmd.Args); got != `saved-messages (\Seen) "17-Jul-1996 02:44:25 -0700"` {
		t.Errorf("args = %s", got)
	}
	if cmd.Message == nil || cmd.Message.Size() != 100000 {
		t.Fatalf("message = %+v", cmd.Message)
	}
	var got bytes.Buffer
	if _, err := io.Copy(&got, cmd.Message); err != nil || got.String() != msg1 {
		t.Fatalf("message data %d octets, %v", got.Len(), err)
	}
	if err := s.r.NextMessage(cmd); err != nil {
		t.Fatal(err)
	}
	if dump(cmd.Args) != `(\Draft)` || cmd.Message == nil || cmd.Message.Size() != 5 {
		t.Fatalf("second part = %s %+v", dump(cmd.Args), cmd.Message)
	}
	if len(s.conts) != 1 || !s.conts[0].Message {
		t.Errorf("continuations = %+v", s.conts)
	}
	// Leave the second message unread: NextMessage drains it.
	if err := s.r.NextMessage(cmd); err != nil || cmd.Message != nil || len(cmd.Args) != 0 {
		t.Fatalf("end = %+v %v", cmd, err)
	}
	next, err := s.r.ReadCommand()
	if err != nil || next.Tag != "A004" {
		t.Fatalf("next = %+v %v", next, err)
	}
}

func TestAppendAbandonedByReadCommand(t *testing.T) {
	s := newSession("a APPEND INBOX {5+}\r\nhello (\\Seen) {3+}\r\nabc\r\nb NOOP\r\n", Options{})
	if _, err := s.r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	cmd, err := s.r.ReadCommand()
	if err != nil || cmd.Tag != "b" {
		t.Fatalf("next = %+v %v", cmd, err)
	}
}

func TestAppendMessageLimit(t *testing.T) {
	s := newSession("a APPEND INBOX {4294967296}\r\nb NOOP\r\n", Options{})
	_, err := s.r.ReadCommand()
	if e, ok := AsError(err); !ok || e.Class != ClassTooBig || e.Code != "TOOBIG" || e.Fatal || len(s.conts) != 0 {
		t.Fatalf("err = %v, conts %v", err, s.conts)
	}
	// A non-synchronising one that big cannot be skipped within MaxDiscard.
	s = newSession("a APPEND INBOX {4294967296+}\r\n", Options{})
	_, err = s.r.ReadCommand()
	if e, ok := AsError(err); !ok || !e.Fatal || !errors.Is(err, ErrLiteralTooBig) {
		t.Fatalf("err = %v", err)
	}
}

func TestLongLineKeepsTagAndSkipsTrailingLiteral(t *testing.T) {
	in := "t1 X " + strings.Repeat("y", 200) + " {6+}\r\nb NOOP\r\nc NOOP\r\n"
	s := newSession(in, Options{Limits: Limits{MaxLine: 100}})
	_, err := s.r.ReadCommand()
	if e, ok := AsError(err); !ok || e.Tag != "t1" || !errors.Is(err, ErrLineTooLong) || e.Fatal {
		t.Fatalf("err = %v", err)
	}
	cmd, err := s.r.ReadCommand()
	if err != nil || cmd.Tag != "c" {
		t.Fatalf("next = %+v %v (the literal \"b NOOP\" must be skipped)", cmd, err)
	}
}

func TestEOF(t *testing.T) {
	for _, in := range []string{"", "a NOOP", "a LOGIN {5}\r\nab"} {
		s := newSession(in, Options{})
		_, err := s.r.ReadCommand()
		if err == nil {
			t.Errorf("%q: no error", in)
		}
		if _, ok := AsError(err); ok {
			t.Errorf("%q: %v is a protocol error, want a connection error", in, err)
		}
	}
}

func TestLimits(t *testing.T) {
	lim := Limits{MaxTokens: 10, MaxCommand: 150, MaxLiteral: 20}
	tests := []struct {
		in    string
		cause error
	}{
		{"a X " + strings.Repeat("b ", 20) + "c\r\n", ErrTooManyTokens},
		{"a X {21}\r\n", ErrLiteralTooBig},
		{"a X {20+}\r\n" + strings.Repeat("x", 20) + " {20+}\r\n" + strings.Repeat("x", 20) + " {20+}\r\n" +
			strings.Repeat("x", 20) + " {20+}\r\n" + strings.Repeat("x", 20) + " {20+}\r\n" + strings.Repeat("x", 20) +
			" {20+}\r\n" + strings.Repeat("x", 20) + " {20+}\r\n" + strings.Repeat("x", 20) + "\r\n", ErrCommandTooLong},
	}
	for _, tt := range tests {
		s := newSession(tt.in+"z NOOP\r\n", Options{Limits: lim})
		_, err := s.r.ReadCommand()
		if !errors.Is(err, tt.cause) {
			t.Errorf("%.30q: err = %v, want %v", tt.in, err, tt.cause)
			continue
		}
		if cmd, err := s.r.ReadCommand(); err != nil || cmd.Tag != "z" {
			t.Errorf("%.30q: next = %+v %v", tt.in, cmd, err)
		}
	}
}

func TestUTF8Quoted(t *testing.T) {
	s := newSession("a SELECT \"Entw\xc3\xbcrfe\"\r\nb SELECT \"\xff\"\r\n", Options{UTF8: true})
	cmd, err := s.r.ReadCommand()
	if err != nil || cmd.Args[0].Value != "Entwürfe" {
		t.Fatalf("%+v %v", cmd, err)
	}
	if _, err := s.r.ReadCommand(); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
}

// TestLineBufferReleased: a long command line does not leave its buffer
// with the Reader for the rest of the connection; the command it carried
// is intact.
func TestLineBufferReleased(t *testing.T) {
	long := "a SEARCH SUBJECT " + strings.Repeat("x", 3*keepLineBuffer)
	s := newSession(long+"\r\nb NOOP\r\n", Options{})
	c, err := s.r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(c.Args); got != "SUBJECT "+strings.Repeat("x", 3*keepLineBuffer) {
		t.Fatalf("long command: args %.40q...", got)
	}
	if _, err := s.r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if cap(s.r.buf) > keepLineBuffer {
		t.Fatalf("line buffer of %d octets kept after a short line", cap(s.r.buf))
	}
}
