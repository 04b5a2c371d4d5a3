package pop3d

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"mailroom/maildir"
)

// wireForm is the reference for what RETR must send for content: every
// line end CRLF, dot-stuffed, the last line ended, then ".\r\n". It is
// written independently of copyMessage, line by line.
func wireForm(content string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(content, "\n") {
		if l == "" {
			continue
		}
		body := strings.TrimSuffix(l, "\n")
		if strings.HasSuffix(l, "\n") {
			body = strings.TrimSuffix(body, "\r")
		}
		if strings.HasPrefix(body, ".") {
			b.WriteString(".")
		}
		b.WriteString(body)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	return b.String()
}

func vsize(content string) int64 {
	var c maildir.SizeCounter
	c.Write([]byte(content))
	return c.VSize
}

var hostileMessages = []string{
	"a\nb\r\nc\rd\n\re\n",
	"X: \x00\n\n\x00body\x00\n",
	"Subject: caf\xe9\n\n\xff\xfe\x80\n",
	"Subject: long\n\n" + strings.Repeat("x", 5000) + "\n.\n." + strings.Repeat("z", 70000) + "\nend\n",
	strings.Repeat("y", 32767) + "\r\n" + strings.Repeat("w", 32766) + "\r\r\n",
	"Subject: x\n\nno newline at the end",
	".\n..\n.\r\n...\n",
	"",
	"\n\n\n",
	"\r\n.\r\n",
}

func TestHostileContentByteExact(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.addUser("alice@example.org", "pw")
	for _, m := range hostileMessages {
		deliver(t, root, m)
	}
	// One file written by another program, without S= or W=: its size is
	// counted by reading it.
	raw := "Subject: raw\n\n.\nbare\n"
	if err := os.WriteFile(filepath.Join(root, "new", "4000000000.M1P1Q1.other"), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(hostileMessages), raw)
	c := e.login("alice@example.org", "pw")
	for i, m := range all {
		n := strconv.Itoa(i + 1)
		size := vsize(m)
		if got, want := c.cmd("LIST "+n), "+OK "+n+" "+strconv.FormatInt(size, 10); got != want {
			t.Errorf("message %d: LIST %q, want %q", i+1, got, want)
		}
		c.send("RETR " + n + "\r\n")
		c.expect("+OK " + strconv.FormatInt(size, 10) + " octets\r\n")
		want := wireForm(m)
		got, err := c.read(len(want))
		if err != nil || got != want {
			t.Fatalf("message %d: RETR sent %q (err %v), want %q", i+1, trim(got), err, trim(want))
		}
	}
	// TOP 0 of the long one: the header and the blank line only.
	c.send("TOP 4 0\r\n")
	c.expect("+OK top of message follows\r\nSubject: long\r\n\r\n.\r\n")
	c.send("TOP 4 2\r\n")
	c.expect("+OK top of message follows\r\nSubject: long\r\n\r\n" + strings.Repeat("x", 5000) + "\r\n..\r\n.\r\n")
	// TOP of a message without a blank line: all of it is header.
	c.send("TOP 6 1\r\n")
	c.expect("+OK top of message follows\r\nSubject: x\r\n\r\nno newline at the end\r\n.\r\n")
	c.send("TOP 9 0\r\n")
	c.expect("+OK top of message follows\r\n\r\n.\r\n")
	c.send("TOP 1 0\r\n")
	c.expect("+OK top of message follows\r\na\r\nb\r\nc\rd\r\n\re\r\n.\r\n")
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:100] + "..." + s[len(s)-100:]
	}
	return s
}

func TestDeleOnlyAtQuit(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.addUser("alice@example.org", "pw")
	for i := range 3 {
		deliver(t, root, "Subject: "+strconv.Itoa(i)+"\n\nbody\n")
	}
	before := listMaildir(t, root)

	// DELE and RETR, then the connection drops: nothing changes.
	c := e.login("alice@example.org", "pw")
	must(t, c.cmd("RETR 1"), "+OK")
	c.multi()
	must(t, c.cmd("DELE 2"), "+OK")
	must(t, c.cmd("DELE 3"), "+OK")
	c.conn.Close()
	// The next login waits for nothing: the lock went with the session.
	// Wait for it to end by logging in again (IN-USE until then).
	c = loginRetry(t, e, "alice@example.org", "pw")
	if got := listMaildir(t, root); !slices.Equal(got, before) {
		t.Fatalf("after a dropped connection the Maildir is %q, want %q unchanged", got, before)
	}
	must(t, c.cmd("STAT"), "+OK 3 ")
	// DELE then RSET then QUIT deletes nothing.
	must(t, c.cmd("DELE 1"), "+OK")
	must(t, c.cmd("RSET"), "+OK")
	must(t, c.cmd("QUIT"), "+OK bye, 0 messages deleted")
	if got := listMaildir(t, root); !slices.Equal(got, before) {
		t.Fatalf("after DELE, RSET, QUIT the Maildir is %q, want %q unchanged", got, before)
	}
	// DELE then QUIT deletes.
	c = e.login("alice@example.org", "pw")
	must(t, c.cmd("DELE 1"), "+OK")
	must(t, c.cmd("DELE 3"), "+OK")
	if got := listMaildir(t, root); !slices.Equal(got, before) {
		t.Fatalf("DELE changed the Maildir before QUIT: %q", got)
	}
	must(t, c.cmd("QUIT"), "+OK bye, 2 messages deleted")
	if got := listMaildir(t, root); !slices.Equal(got, before[1:2]) {
		t.Fatalf("after QUIT the Maildir is %q, want %q", got, before[1:2])
	}
}

// loginRetry logs in, retrying while the previous session of the same
// user still holds the lock (its server side has not noticed the close
// yet). Bounded in time.
func loginRetry(t *testing.T, e *testEnv, address, password string) *client {
	t.Helper()
	for range 200 {
		c := e.dial()
		c.line()
		must(t, c.cmd("USER "+address), "+OK")
		r := c.cmd("PASS " + password)
		if strings.HasPrefix(r, "+OK") {
			return c
		}
		must(t, r, "-ERR [IN-USE]")
		c.cmd("QUIT")
		c.conn.Close()
		waitABit()
	}
	t.Fatal("the mailbox stayed locked")
	return nil
}

func TestInUse(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.addUser("alice@example.org", "pw")
	deliver(t, root, msg1)
	before := listMaildir(t, root)
	first := e.login("alice@example.org", "pw")
	must(t, first.cmd("DELE 1"), "+OK")

	second := e.dial()
	second.line()
	must(t, second.cmd("USER alice@example.org"), "+OK")
	if got := second.cmd("PASS pw"); got != "-ERR [IN-USE] mailbox is locked by another POP3 session" {
		t.Fatalf("second login: %q", got)
	}
	// Still in AUTHORIZATION, and nothing changed.
	must(t, second.cmd("STAT"), "-ERR command not valid in AUTHORIZATION state")
	must(t, second.cmd("QUIT"), "+OK bye")
	if got := listMaildir(t, root); !slices.Equal(got, before) {
		t.Fatalf("Maildir changed: %q", got)
	}
	must(t, first.cmd("QUIT"), "+OK bye, 1 messages deleted")
	first.expectEOF()
	// The lock is released once the session ends.
	c := e.login("alice@example.org", "pw")
	must(t, c.cmd("STAT"), "+OK 0 0")
}

func TestUIDLStable(t *testing.T) {
	for _, format := range []string{"maildir", "dovecot"} {
		t.Run(format, func(t *testing.T) {
			e := newTestEnv(t, func(s *Server) { s.UIDLFormat = format })
			root := e.addUser("alice@example.org", "pw")
			var bases []string
			for i := range 3 {
				bases = append(bases, baseOf(deliver(t, root, "Subject: "+strconv.Itoa(i)+"\n\nx\n")))
			}
			c := e.login("alice@example.org", "pw")
			must(t, c.cmd("UIDL"), "+OK")
			first := c.multi()
			must(t, c.cmd("RETR 2"), "+OK")
			c.multi()
			must(t, c.cmd("DELE 1"), "+OK")
			must(t, c.cmd("QUIT"), "+OK")
			c.expectEOF()
			// Message 2 moved to cur/ with S; a new message arrives.
			bases = append(bases, baseOf(deliver(t, root, "Subject: new\n\nx\n")))

			c = e.login("alice@example.org", "pw")
			must(t, c.cmd("UIDL"), "+OK")
			second := c.multi()
			ids := func(listing string) []string {
				var out []string
				for _, l := range strings.Split(strings.TrimSuffix(listing, "\r\n"), "\r\n") {
					_, id, _ := strings.Cut(l, " ")
					out = append(out, id)
				}
				return out
			}
			a, b := ids(first), ids(second)
			if len(a) != 3 || len(b) != 3 || a[1] != b[0] || a[2] != b[1] || slices.Contains(a, b[2]) {
				t.Fatalf("UIDLs not stable: first session %q, second %q", a, b)
			}
			want := expectedUIDLs(t, root, format, bases[1:])
			if !slices.Equal(b, want) {
				t.Errorf("UIDLs %q, want %q", b, want)
			}
		})
	}
}

// expectedUIDLs computes the UIDLs of the messages with the given bases:
// the base itself, or Dovecot's %08Xu%08Xv from the dovecot-uidlist on
// disk, read independently of the server.
func expectedUIDLs(t *testing.T, root, format string, bases []string) []string {
	t.Helper()
	if format == "maildir" {
		return bases
	}
	data, err := os.ReadFile(filepath.Join(root, maildir.UidlistName))
	if err != nil {
		t.Fatal(err)
	}
	ul, err := maildir.ParseUidlist(data)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range bases {
		found := false
		for _, r := range ul.Records {
			if r.Base() == b {
				out = append(out, strings.ToUpper(leftPad(strconv.FormatUint(uint64(r.UID), 16))+leftPad(strconv.FormatUint(uint64(ul.UIDValidity), 16))))
				found = true
			}
		}
		if !found {
			t.Fatalf("%s not in dovecot-uidlist", b)
		}
	}
	return out
}

func leftPad(hex string) string { return strings.Repeat("0", max(0, 8-len(hex))) + hex }

func TestUIDLOfBase(t *testing.T) {
	long := strings.Repeat("a", 71)
	for _, tc := range []struct{ base, want string }{
		{"1700000000.M1P2Q3.host,S=10,W=12", "1700000000.M1P2Q3.host,S=10,W=12"},
		{strings.Repeat("b", 70), strings.Repeat("b", 70)},
		{long, "H"},
		{"with space", "H"},
		{"caf\xe9", "H"},
	} {
		got := uidlOfBase(tc.base)
		if tc.want == "H" {
			if len(got) != 65 || got[0] != 'H' || got != uidlOfBase(tc.base) {
				t.Errorf("uidlOfBase(%q) = %q, want a stable H+64 hex digits", tc.base, got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("uidlOfBase(%q) = %q, want %q", tc.base, got, tc.want)
		}
	}
}
