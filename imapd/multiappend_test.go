package imapd

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mailroom/maildir"
)

// appendUIDs returns the UID set of an "OK [APPENDUID v set]" line.
func appendUIDs(t *testing.T, line string) string {
	t.Helper()
	m := regexp.MustCompile(`\[APPENDUID [0-9]+ ([0-9:,]+)\]`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no APPENDUID in %q", line)
	}
	return m[1]
}

// inboxFlags returns the flags of every INBOX message by UID order.
func inboxFlags(t *testing.T, root string) []maildir.Flags {
	t.Helper()
	mb, err := maildir.OpenMailbox(root)
	if err != nil {
		t.Fatal(err)
	}
	var out []maildir.Flags
	for _, m := range mb.Messages() {
		out = append(out, m.Name.Flags)
	}
	return out
}

func TestMultiAppendLiteralPlus(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.root()
	c := e.login()
	// RFC 3502 §6: append-message *(SP append-message); each with its
	// own flags and date.
	c.send("a APPEND INBOX (\\Seen) {5+}\r\nhello (\\Flagged) \"01-Jan-2020 10:00:00 +0000\" {5+}\r\nworld {6+}\r\nthird!\r\n")
	r := c.until("a")
	if len(r) != 1 {
		t.Fatalf("responses %q", r)
	}
	must(t, r[0], "a OK [APPENDUID ")
	if got := appendUIDs(t, r[0]); got != "1:3" {
		t.Fatalf("APPENDUID set %q, want 1:3", got)
	}
	flags := inboxFlags(t, root)
	if len(flags) != 3 || flags[0] != maildir.FlagSeen || flags[1] != maildir.FlagFlagged || flags[2] != 0 {
		t.Fatalf("flags %v", flags)
	}
	must(t, last(c.cmd("b", "SELECT INBOX")), "b OK")
	got := c.cmd("c", "FETCH 1:3 (INTERNALDATE BODY.PEEK[])")
	joined := strings.Join(got, "\n")
	for _, want := range []string{"hello", "world", "third!", `INTERNALDATE " 1-Jan-2020 10:00:00 +0000"`} {
		if !strings.Contains(joined, want) {
			t.Fatalf("FETCH lacks %q:\n%s", want, joined)
		}
	}
}

func TestMultiAppendSynchronizing(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.login()
	c.send("a APPEND INBOX {5}\r\n")
	must(t, c.line(), "+ ")
	c.send("hello {5}\r\n")
	must(t, c.line(), "+ ")
	c.send("world\r\n")
	r := c.until("a")
	must(t, last(r), "a OK [APPENDUID ")
	if got := appendUIDs(t, last(r)); got != "1:2" {
		t.Fatalf("APPENDUID set %q", got)
	}
	if n := messageCount(t, e.root()); n != 2 {
		t.Fatalf("%d messages", n)
	}
}

// On any failure, none of the messages of the command is visible.
func TestMultiAppendAllOrNothing(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.AppendLimit = 100 })
	root := e.root()
	c := e.login()
	msg := strings.Repeat("m", 90)
	for _, tc := range []struct {
		name, send, want string
	}{
		{"bad flag in the second", "a APPEND INBOX {5+}\r\nhello (\\Bogus) {5+}\r\nworld\r\n", "a BAD unknown system flag"},
		{"NUL in the second", "b APPEND INBOX {5+}\r\nhello {5+}\r\nwo\x00ld\r\n", "b NO NUL in a message literal"},
		{"garbage after the last", "c APPEND INBOX {5+}\r\nhello {5+}\r\nworld junk\r\n", "c BAD"},
		{"one over APPENDLIMIT", "d APPEND INBOX {5+}\r\nhello {101+}\r\n" + strings.Repeat("x", 101) + "\r\n", "d BAD [TOOBIG]"},
		{"whole command over 4×APPENDLIMIT", "f APPEND INBOX" + strings.Repeat(" {90+}\r\n"+msg, 5) + "\r\n", "f NO [LIMIT]"},
		{"no such mailbox", "g APPEND Nonesuch {5+}\r\nhello {5+}\r\nworld\r\n", "g NO [TRYCREATE]"},
	} {
		tag, _, _ := strings.Cut(tc.send, " ")
		c.send(tc.send)
		got := last(c.until(tag))
		must(t, got, tc.want)
		if n := messageCount(t, root); n != 0 {
			t.Fatalf("%s: %d messages visible after %q", tc.name, n, got)
		}
	}
	// The session goes on, and a good MULTIAPPEND still works.
	c.send("h APPEND INBOX {5+}\r\nhello {5+}\r\nworld\r\n")
	must(t, last(c.until("h")), "h OK [APPENDUID ")
	if n := messageCount(t, root); n != 2 {
		t.Fatalf("%d messages", n)
	}
}

// A refused synchronizing literal is never read: the client gets the
// tagged answer instead of "+" and sends nothing more.
func TestMultiAppendSynchronizingRefused(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.AppendLimit = 100 })
	c := e.login()
	c.send("a APPEND INBOX {5}\r\n")
	must(t, c.line(), "+ ")
	c.send("hello {500}\r\n")
	must(t, c.line(), "a BAD [TOOBIG]")
	if n := messageCount(t, e.root()); n != 0 {
		t.Fatalf("%d messages", n)
	}
	must(t, last(c.cmd("b", "NOOP")), "b OK")
}

func TestMultiAppendOverQuota(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.root()
	writeMaildirsize(t, root, "12S\n0 0\n")
	c := e.login()
	// 10 octets fit; 15 in two messages do not: neither is kept.
	c.send("a APPEND INBOX {5+}\r\nhello {10+}\r\nworld12345\r\n")
	must(t, last(c.until("a")), "a NO [OVERQUOTA]")
	if n := messageCount(t, root); n != 0 {
		t.Fatalf("%d messages", n)
	}
	if n := messageCount(t, filepath.Join(root, ".Sent")); n != 0 {
		t.Fatalf("%d messages in Sent", n)
	}
}
