package imapd

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzFolderName: whatever a client names, the mapping either refuses it
// or lands on a directory directly under the user's root.
func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"INBOX", "inbox.x", "a.b", "..", "../x", "/etc", "a/b", "&AOk-", "&Jjo", "a\x00b", "~", ".x", "x.", "a..b", "\u00e9t\u00e9"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	root := filepath.Join(f.TempDir(), "user")
	f.Fuzz(func(t *testing.T, name string, utf8 bool) {
		ss := &session{root: root, utf8: utf8}
		folder, err := ss.folderName(name)
		if err != nil {
			return
		}
		p, err := ss.folderPath(folder)
		if err != nil {
			t.Fatalf("folderName(%q) = %q, but folderPath fails: %v", name, folder, err)
		}
		if p != root && filepath.Dir(p) != root {
			t.Fatalf("folderName(%q) = %q → %q, outside %q", name, folder, p, root)
		}
		// The name the client sees maps back to the same folder.
		back, err := ss.folderName(ss.mailboxName(folder))
		if err != nil || back != folder {
			t.Fatalf("round trip %q → %q → %q (%v)", name, folder, back, err)
		}
	})
}

// FuzzServer drives the real server over a loopback socket with
// arbitrary client input after login; it must answer without crashing
// and within a bounded time.
func FuzzServer(f *testing.F) {
	for _, s := range []string{
		"a SELECT INBOX\r\nb FETCH 1:* (FLAGS BODY[] ENVELOPE BODYSTRUCTURE)\r\n",
		"a SELECT INBOX\r\nb STORE 1 +FLAGS (\\Deleted $x)\r\nc EXPUNGE\r\n",
		"a LIST \"\" *\r\nb STATUS INBOX (MESSAGES SIZE)\r\n",
		"a APPEND INBOX {5+}\r\nhello\r\n",
		"a SELECT INBOX\r\nb UID SEARCH OR TEXT x NOT SEEN\r\nc IDLE\r\nDONE\r\n",
		"a CREATE \"a.b\"\r\nb RENAME a.b c\r\nc DELETE c\r\n",
		"a SELECT INBOX\r\nb COPY 1 Trash\r\nc MOVE 1 Archive\r\n",
		"\x00\xff{99999999}\r\n",
		// RFC 7162: CONDSTORE and QRESYNC.
		"a ENABLE QRESYNC\r\nb SELECT INBOX (QRESYNC (1 1 1:4294967295 (1:2 1:2)))\r\nc UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n",
		"a SELECT INBOX (CONDSTORE)\r\nb STORE 1:* (UNCHANGEDSINCE 1) +FLAGS.SILENT (\\Deleted)\r\nc SEARCH RETURN (MIN) MODSEQ 1\r\nd EXPUNGE\r\n",
		"a STATUS INBOX (HIGHESTMODSEQ)\r\nb EXAMINE INBOX\r\nc FETCH 1:* (MODSEQ) (CHANGEDSINCE 1)\r\n",
	} {
		f.Add(s)
	}
	e := newTestEnv(f, func(s *Server) { s.Logger = slog.New(slog.DiscardHandler) })
	deliver(f, e.root(), "", fixture1)
	deliver(f, e.root(), "", fixture2)
	f.Fuzz(func(t *testing.T, input string) {
		if len(input) > 4096 {
			return
		}
		c, err := net.DialTimeout("tcp", e.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		br := bufio.NewReader(c)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "L LOGIN "+testUser+" "+testPass+"\r\n")
		io.WriteString(c, input)
		io.WriteString(c, "\r\nZZZ LOGOUT\r\n")
		// EOF after the input: a command left waiting for a literal or
		// for DONE ends too.
		_ = c.(*net.TCPConn).CloseWrite()
		// Read until the server answers LOGOUT or closes; either is fine,
		// a hang (deadline) or a crash is not.
		for i := 0; i < 100000; i++ {
			l, err := br.ReadString('\n')
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("server hung on %q", input)
				}
				return
			}
			if strings.HasPrefix(l, "ZZZ ") {
				return
			}
		}
	})
}
