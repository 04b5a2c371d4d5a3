package remote

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	long := strings.Repeat("x", maxReplyLine)
	many := strings.Repeat("250-x\r\n", maxReplyLines) + "250 x\r\n"
	for _, tc := range []struct {
		name  string
		in    string
		code  int
		enh   [3]int
		lines []string
		str   string // reply.String()
		err   string // substring of the error; "" for none
	}{
		{name: "single", in: "250 ok\r\n", code: 250, lines: []string{"ok"}, str: "250 ok"},
		{name: "bare code", in: "250\r\n", code: 250, lines: []string{""}, str: "250"},
		{name: "LF only", in: "220 hi\n", code: 220, lines: []string{"hi"}, str: "220 hi"},
		{name: "multi-line", in: "250-first\r\n250-second\r\n250 last\r\n", code: 250,
			lines: []string{"first", "second", "last"}, str: "250 first second last"},
		{name: "enhanced", in: "550 5.1.1 no such user\r\n", code: 550, enh: [3]int{5, 1, 1},
			lines: []string{"no such user"}, str: "550 5.1.1 no such user"},
		{name: "enhanced on every line", in: "451-4.3.0 try\r\n451-4.3.0 again\r\n451 4.3.0 later\r\n", code: 451,
			enh: [3]int{4, 3, 0}, lines: []string{"try", "again", "later"}, str: "451 4.3.0 try again later"},
		{name: "enhanced on the first line only", in: "250-2.0.0 one\r\n250 two\r\n", code: 250,
			enh: [3]int{2, 0, 0}, lines: []string{"one", "two"}, str: "250 2.0.0 one two"},
		{name: "three-digit subject and detail", in: "554 5.123.456 x\r\n", code: 554, enh: [3]int{5, 123, 456},
			lines: []string{"x"}, str: "554 5.123.456 x"},
		{name: "class disagrees with code: text", in: "550 4.1.1 odd\r\n", code: 550,
			lines: []string{"4.1.1 odd"}, str: "550 4.1.1 odd"},
		{name: "class 3 is not a status class", in: "354 3.0.0 go\r\n", code: 354, lines: []string{"3.0.0 go"}, str: "354 3.0.0 go"},
		{name: "not a code", in: "250 2.0 ok\r\n", code: 250, lines: []string{"2.0 ok"}, str: "250 2.0 ok"},
		{name: "four-digit detail", in: "250 2.0.1000 ok\r\n", code: 250, lines: []string{"2.0.1000 ok"}, str: "250 2.0.1000 ok"},
		{name: "spaces collapsed", in: "250  a   b \r\n", code: 250, lines: []string{" a   b "}, str: "250 a b"},
		{name: "code changes mid-reply", in: "250-a\r\n251 b\r\n", err: "does not continue"},
		{name: "bad separator", in: "250x\r\n", err: "malformed"},
		{name: "short", in: "25\r\n", err: "malformed"},
		{name: "letters", in: "2x0 hi\r\n", err: "malformed"},
		{name: "1xx", in: "199 hi\r\n", err: "out of range"},
		{name: "6xx", in: "600 hi\r\n", err: "out of range"},
		{name: "line too long", in: "250 " + long + "\r\n", err: "longer than"},
		{name: "too many lines", in: many, err: "lines"},
		{name: "cut mid-reply", in: "250-a\r\n250-b\r\n", err: io.ErrUnexpectedEOF.Error()},
		{name: "cut mid-line", in: "250 a", err: io.ErrUnexpectedEOF.Error()},
		{name: "nothing", in: "", err: "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newReplyReader(strings.NewReader(tc.in)).read()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("read(%q) = %+v, %v; want error %q", tc.in, r, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("read(%q): %v", tc.in, err)
			}
			if r.code != tc.code || r.enhanced != tc.enh || !slices.Equal(r.lines, tc.lines) || r.String() != tc.str {
				t.Errorf("read(%q) = %d %v %q %q; want %d %v %q %q", tc.in, r.code, r.enhanced, r.lines, r.String(),
					tc.code, tc.enh, tc.lines, tc.str)
			}
		})
	}
}

// Replies follow one another on the stream: each read takes one.
func TestReadReplySequence(t *testing.T) {
	rr := newReplyReader(strings.NewReader("250 2.1.0 ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n354 go on\r\n"))
	var got []string
	for range 4 {
		r, err := rr.read()
		if err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		got = append(got, r.String())
	}
	want := []string{"250 2.1.0 ok", "550 5.1.1 no such user", "354 go on"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestReplyResult(t *testing.T) {
	for _, tc := range []struct {
		in      string
		outcome int
		status  string
		reply   string
	}{
		{"250 2.0.0 Ok: queued as X\r\n", int(sent), "2.0.0", "250 2.0.0 Ok: queued as X"},
		{"250 Ok\r\n", int(sent), "2.0.0", "250 Ok"},
		{"550-5.1.1 no\r\n550 5.1.1 user\r\n", int(perm), "5.1.1", "550 5.1.1 no user"},
		{"452 4.2.2 full\r\n", int(temp), "4.2.2", "452 4.2.2 full"},
		{"421 closing\r\n", int(temp), "4.0.0", "421 closing"},
		{"354 odd\r\n", int(temp), "4.0.0", "354 odd"},
	} {
		r, err := newReplyReader(strings.NewReader(tc.in)).read()
		if err != nil {
			t.Fatal(err)
		}
		got := replyResult(r, "relay")
		if int(got.Outcome) != tc.outcome || got.Status != tc.status || got.Reply != tc.reply || got.Relay != "relay" {
			t.Errorf("replyResult(%q) = %+v", tc.in, got)
		}
	}
}

func TestParseEHLO(t *testing.T) {
	r, err := newReplyReader(strings.NewReader("250-mx.test hi\r\n250-pipelining\r\n250-SIZE 1000\r\n250-AUTH=LOGIN\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")).read()
	if err != nil {
		t.Fatal(err)
	}
	c := &client{ext: parseEHLO(r)}
	if ok, _ := c.extension("PIPELINING"); !ok {
		t.Error("PIPELINING (in lower case) not seen")
	}
	if c.maxSize() != 1000 || !c.supportsAuth("plain") || !c.supportsAuth("LOGIN") || c.supportsAuth("CRAM-MD5") {
		t.Errorf("extensions %v", c.ext)
	}
	if ok, _ := c.extension("MX.TEST"); ok {
		t.Error("the greeting line was taken for a keyword")
	}
}

func TestDotWriter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ".\r\n"},
		{"a\n", "a\r\n.\r\n"},
		{"a\r\nb", "a\r\nb\r\n.\r\n"},
		{".x\n..y\nz.\n", "..x\r\n...y\r\nz.\r\n.\r\n"},
		{"a\rb\n", "a\rb\r\n.\r\n"},
		{"a\r", "a\r\n.\r\n"},
		{"\n.\n", "\r\n..\r\n.\r\n"},
	} {
		var b strings.Builder
		bw := bufio.NewWriter(&b)
		dw := &dotWriter{w: bw, lineStart: true}
		// One byte at a time too: state must carry across writes.
		for _, split := range []bool{false, true} {
			b.Reset()
			*dw = dotWriter{w: bw, lineStart: true}
			if split {
				for i := range len(tc.in) {
					dw.Write([]byte{tc.in[i]})
				}
			} else {
				dw.Write([]byte(tc.in))
			}
			if err := dw.close(); err != nil {
				t.Fatal(err)
			}
			bw.Flush()
			if b.String() != tc.want {
				t.Errorf("dot-stuffing %q (split %v) = %q, want %q", tc.in, split, b.String(), tc.want)
			}
		}
	}
}

func TestEncoders(t *testing.T) {
	if got := xtext("a+b=c d\x01é"); got != "a+2Bb+3Dc+20d+01+C3+A9" {
		t.Errorf("xtext = %q", got)
	}
	if got := utf8AddrText(`ü+\@x`, false); got != `\x{FC}\x{2B}\x{5C}@x` {
		t.Errorf("utf-8-addr-xtext = %q", got)
	}
	if got := utf8AddrText("ü+@x", true); got != `ü\x{2B}@x` {
		t.Errorf("utf-8-addr-unitext = %q", got)
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 b\r\n", "550 5.1.1 x\r\n", "451-4.3.0 a\r\n451 4.3.0 b\r\n",
		"250-mx\r\n250-SIZE 10\r\n250 AUTH=PLAIN\r\n", "25", "250-\r\n", "999 x\r\n", "250 2.0.0\r\n354 x\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rr := newReplyReader(strings.NewReader(in))
		for range 100 {
			r, err := rr.read()
			if err != nil {
				return
			}
			if r.code < 200 || r.code > 599 || len(r.lines) == 0 || len(r.lines) > maxReplyLines {
				t.Fatalf("reply %+v from %q", r, in)
			}
			if r.hasEnhanced() && r.enhanced[0] != r.code/100 {
				t.Fatalf("enhanced class %v disagrees with code %d", r.enhanced, r.code)
			}
			s := r.String()
			if !strings.HasPrefix(s, strconv.Itoa(r.code)) || strings.ContainsAny(s, "\r\n") {
				t.Fatalf("String() = %q", s)
			}
			_ = parseEHLO(r) // must not panic
			replyResult(r, "relay")
		}
	})
}
