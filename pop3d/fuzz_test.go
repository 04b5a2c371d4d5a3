package pop3d

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// fuzzMessages are written straight into new/ before every input, so each
// input starts from the same mailbox.
var fuzzMessages = map[string]string{
	"1700000001.M1P1Q1.fuzz,S=21,W=24": "Subject: a\n\n.dot\nend\n",
	"1700000002.M1P1Q1.fuzz":           "Subject: b\r\n\r\n\x00\xff\r\n",
	"1700000003.M1P1Q1.fuzz,S=5,W=6":   "x\ny\nz",
}

// FuzzSession drives the real server over a loopback socket with
// arbitrary client bytes. The server must not panic, must close the
// connection once the client stops sending, and must leave the mailbox
// untouched unless a QUIT followed a DELE or a RETR.
func FuzzSession(f *testing.F) {
	login := "USER fuzz@example.org\r\nPASS pw\r\n"
	for _, seed := range []string{
		"CAPA\r\nQUIT\r\n",
		login + "STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 0\r\nDELE 3\r\nRSET\r\nQUIT\r\n",
		login + "DELE 1\r\nDELE 2\r\n",
		login + "DELE 1\r\nQUIT\r\n",
		"AUTH PLAIN AGZ1enpAZXhhbXBsZS5vcmcAcHc=\r\nRETR 2\r\nLIST 9\r\nTOP 1 x\r\n",
		"AUTH LOGIN\r\nZnV6ekBleGFtcGxlLm9yZw==\r\ncHc=\r\nUIDL 1\r\n",
		"STLS\r\nUSER a\r\n",
		"\r\n\n\x00\xff" + string(bytes.Repeat([]byte{'A'}, 300)) + "\r\nNOOP\r\n",
	} {
		f.Add([]byte(seed))
	}
	e := newTestEnv(f, func(s *Server) {
		s.MaxAuthFailures = 3
		s.LoginTimeout = 2 * time.Second
		s.IdleTimeout = 2 * time.Second
	})
	root := e.addUser("fuzz@example.org", "pw")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return // bounded per input
		}
		resetMaildir(t, root)
		before := listMaildir(t, root)
		c, err := net.DialTimeout("tcp", e.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).CloseWrite()
		// The session must end by itself: EOF from the client ends it.
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("reading replies: %v", err)
		}
		upper := bytes.ToUpper(data)
		mayChange := bytes.Contains(upper, []byte("QUIT")) &&
			(bytes.Contains(upper, []byte("DELE")) || bytes.Contains(upper, []byte("RETR")))
		if after := listMaildir(t, root); !mayChange && !slices.Equal(after, before) {
			t.Fatalf("mailbox changed without QUIT: %q → %q", before, after)
		}
	})
}

// isReset: a server that closes with unread input (after too many errors)
// resets the connection; that is a close too.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}

// resetMaildir puts the fuzz messages back in new/ and empties cur/.
func resetMaildir(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range entries {
			if err := os.Remove(filepath.Join(root, d, de.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, content := range fuzzMessages {
		if err := os.WriteFile(filepath.Join(root, "new", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
