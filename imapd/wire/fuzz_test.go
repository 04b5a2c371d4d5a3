package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

var fuzzLimits = Limits{MaxLine: 256, MaxCommand: 1024, MaxLiteral: 512, MaxMessage: 2048, MaxDepth: 8, MaxTokens: 200, MaxDiscard: 4096}

// tokenBytes is the memory a token tree holds in values.
func tokenBytes(toks []Token) int {
	n := 0
	for _, t := range toks {
		n += len(t.Value) + tokenBytes(t.List)
	}
	return n
}

func FuzzReader(f *testing.F) {
	seeds := []string{
		"a001 LOGIN {5}\r\nsmith {6+}\r\nsesame\r\n",
		"A003 APPEND saved-messages (\\Seen) {10+}\r\n0123456789 {3}\r\nabc\r\n",
		"a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)\r\n",
		"a SEARCH CHARSET UTF-8 OR (SEEN FLAGGED) TEXT ~{3}\r\na\x00b\r\n",
		"a X {4294967296+}\r\n",
		"* BAD\r\n\r\n+ x\r\na UID\r\n",
		"a X ((((((((((a))))))))))\r\n",
		"a X \"\\\"quoted\\\\\" NIL nil 12 1:2,* $\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		conts := 0
		r := NewReader(bufio.NewReaderSize(bytes.NewReader(data), 16), Options{
			Limits:  fuzzLimits,
			NonSync: NonSyncMode(mode % 3),
			UTF8:    mode&4 != 0,
			Continue: func(l LiteralInfo) error {
				conts++
				if mode&8 != 0 {
					return &Error{Code: "TOOBIG", Text: "no"}
				}
				return nil
			},
		})
		for range len(data) + 2 {
			cmd, err := r.ReadCommand()
			if err != nil {
				if _, ok := AsError(err); ok {
					continue
				}
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error type: %v", err)
				}
				return
			}
			if n := tokenBytes(cmd.Args); n > fuzzLimits.MaxCommand {
				t.Fatalf("command holds %d octets, limit %d", n, fuzzLimits.MaxCommand)
			}
			for cmd.Message != nil {
				n, _ := io.Copy(io.Discard, cmd.Message)
				if n > fuzzLimits.MaxMessage {
					t.Fatalf("message of %d octets over MaxMessage", n)
				}
				if err := r.NextMessage(cmd); err != nil {
					break
				}
			}
		}
	})
}

// TestHugeLiteralClaimAllocatesNothing checks that a claimed 4 GB literal
// is refused before any buffer is made for it.
func TestHugeLiteralClaimAllocatesNothing(t *testing.T) {
	for _, in := range []string{"a X {4000000000}\r\n", "a X {4000000000+}\r\n", "a APPEND INBOX {4000000000}\r\n", "a X ~{4000000000}\r\n"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := NewReader(bufio.NewReader(strings.NewReader(in)), Options{Continue: func(LiteralInfo) error { return nil }})
		_, err := r.ReadCommand()
		runtime.ReadMemStats(&after)
		if e, ok := AsError(err); !ok || e.Class != ClassTooBig {
			t.Errorf("%q: err = %v, want too big", in, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("%q: allocated %d octets", in, grew)
		}
	}
}

func FuzzSeqSet(f *testing.F) {
	for _, s := range []string{"1", "1:*", "2,4:7,9,12:*", "$", "*:4,5:7", "4294967295:1", "0", "1,,2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := ParseSeqSet(s)
		if err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		again, err := ParseSeqSet(set.String())
		if err != nil || again.String() != set.String() {
			t.Fatalf("%q -> %q does not round-trip: %v", s, set.String(), err)
		}
		set.Contains(1, 100)
	})
}

// parseArgs reads one command for the typed-parser fuzzers.
func parseArgs(line string) ([]Token, bool) {
	r := NewReader(bufio.NewReader(strings.NewReader("t X "+line+"\r\n")), Options{
		Limits: fuzzLimits, UTF8: true, Continue: func(LiteralInfo) error { return nil },
	})
	cmd, err := r.ReadCommand()
	if err != nil {
		return nil, false
	}
	return cmd.Args, true
}

func FuzzSearch(f *testing.F) {
	for _, s := range []string{
		`FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"`, `RETURN (MIN COUNT) CHARSET UTF-8 OR (SEEN 1:3) UID $`,
		`HEADER X-Y {1}` + "\r\nz", `MODSEQ "/flags/\\draft" all 620162338`, `OR OR OR A B C D`, `NOT NOT NOT`,
		// RFC 7162 §3.1.5.
		`MODSEQ 0`, `RETURN (MIN MAX) UID 1:* MODSEQ "/flags/\\seen" shared 9223372036854775807`,
		`OR MODSEQ 5 NOT MODSEQ "/flags/$x" priv 7`, `MODSEQ "/flags/\\seen" bogus 1`, `MODSEQ 99999999999999999999`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args, ok := parseArgs(line)
		if !ok {
			return
		}
		if _, err := ParseSearch(args); err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
		}
	})
}

func FuzzFetch(f *testing.F) {
	for _, s := range []string{
		`1:* ALL`, `2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])`, `1 BODY.PEEK[1.2.MIME]<0.100>`,
		`1 (BINARY[1] BINARY.SIZE[1]) (CHANGEDSINCE 1 VANISHED)`, `1 BODY[1..2]`, `* (UID RFC822.SIZE)`,
		// RFC 7162 §3.1.4.1, §3.2.6.
		`1:* (FLAGS MODSEQ)`, `1:* (FLAGS) (CHANGEDSINCE 12345)`, `300:500 (FLAGS) (VANISHED CHANGEDSINCE 9223372036854775807)`,
		`1 MODSEQ (CHANGEDSINCE 0)`, `1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)`, `1 FLAGS ()`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args, ok := parseArgs(line)
		if !ok {
			return
		}
		fc, err := ParseFetch(args)
		if err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		for _, a := range fc.Attrs {
			if a.ResponseName() == "" {
				t.Fatalf("empty response name for %+v", a)
			}
		}
	})
}

func FuzzStoreListSelect(f *testing.F) {
	for _, s := range []string{
		`1:* (UNCHANGEDSINCE 5) +FLAGS.SILENT (\Seen)`, `(SUBSCRIBED) "" (% *) RETURN (STATUS (MESSAGES))`,
		`INBOX (QRESYNC (1 2 1:5 (1:2 3:4)))`, `("name" NIL)`, `x (\Seen) "17-Jul-1996 02:44:25 -0700"`,
		// RFC 7162 §3.1.3, §3.1.8, §3.1.9, §3.2.5.
		`INBOX (CONDSTORE)`, `INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3,5 1:3,5)))`,
		`INBOX (QRESYNC (67890007 90060115194045000 (1:3 1:3)))`, `INBOX (QRESYNC (1 2 1:*))`, `INBOX (CONDSTORE QRESYNC (1 2))`,
		`1,3 (UNCHANGEDSINCE 0) FLAGS ()`, `INBOX (HIGHESTMODSEQ MESSAGES)`, `"" * RETURN (STATUS (HIGHESTMODSEQ))`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args, ok := parseArgs(line)
		if !ok {
			return
		}
		errs := []error{}
		_, err := ParseStore(args)
		errs = append(errs, err)
		_, err = ParseList(args, true)
		errs = append(errs, err)
		_, err = ParseSelect(args)
		errs = append(errs, err)
		_, err = ParseID(args)
		errs = append(errs, err)
		_, _, err = ParseAppend(args)
		errs = append(errs, err)
		_, _, err = ParseStatus(args)
		errs = append(errs, err)
		for _, err := range errs {
			if _, ok := AsError(err); err != nil && !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
		}
	})
}

func FuzzDateTime(f *testing.F) {
	for _, s := range []string{"17-Jul-1996 02:44:25 -0700", " 5-Mar-2024 01:02:03 +0000", "31-Feb-2024 00:00:00 +0000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDateTime(s)
		if err != nil {
			return
		}
		back, err := ParseDateTime(FormatDateTime(d))
		if err != nil || !back.Equal(d) {
			t.Fatalf("%q -> %q does not round-trip: %v", s, FormatDateTime(d), err)
		}
	})
}

func FuzzWriterString(f *testing.F) {
	for _, s := range []string{"", "NIL", "a b", "\r\n", "é", "\xff", `"\`} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, utf8 bool) {
		if strings.IndexByte(s, 0) >= 0 || len(s) > 400 {
			return
		}
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.SetUTF8(utf8)
		buf.WriteString("t X ")
		w.AString(s)
		w.CRLF()
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		r := NewReader(bufio.NewReader(&buf), Options{UTF8: utf8, Continue: func(LiteralInfo) error { return nil }})
		cmd, err := r.ReadCommand()
		if err != nil {
			t.Fatalf("%q does not read back: %v", s, err)
		}
		if got, ok := cmd.Args[0].AString(); !ok || got != s || len(cmd.Args) != 1 {
			t.Fatalf("%q read back as %q", s, got)
		}
	})
}
