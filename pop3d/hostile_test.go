package pop3d

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOverlongLines(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.MaxErrors = 3 })
	c := e.dial()
	c.line()
	// 253 octets + CRLF = 255: the longest line allowed.
	if got := c.cmd("NOOP " + strings.Repeat("x", 248)); got != "-ERR command not valid in AUTHORIZATION state" {
		t.Fatalf("a 255-octet line: %q", got)
	}
	if got := c.cmd("NOOP " + strings.Repeat("x", 249)); got != "-ERR line too long" {
		t.Fatalf("a 256-octet line: %q", got)
	}
	// The rest of the long line was skipped: the next command works.
	if got := c.cmd("CAPA"); got != "+OK Capability list follows" {
		t.Fatalf("after a long line: %q", got)
	}
	c.multi()
	if got := c.cmd(strings.Repeat("A", 10000)); got != "-ERR line too long; too many errors, closing connection" {
		t.Fatalf("third error: %q", got)
	}
	c.expectEOF()
}

func TestEndlessLineCloses(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.dial()
	c.line()
	// No LF at all: skipped up to maxDiscard, then the connection closes.
	go func() {
		chunk := strings.Repeat("z", 4096)
		for range maxDiscard/4096 + 4 {
			_ = c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
			if _, err := c.conn.Write([]byte(chunk)); err != nil {
				return
			}
		}
	}()
	if got := c.line(); got != "-ERR line too long, closing connection" {
		t.Fatalf("endless line: %q", got)
	}
	c.expectEOF()
}

func TestTooManyErrorsClose(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.MaxErrors = 5 })
	c := e.dial()
	c.line()
	for range 4 {
		must(t, c.cmd("BOGUS"), "-ERR unknown command")
	}
	if got := c.cmd("BOGUS"); got != "-ERR unknown command; too many errors, closing connection" {
		t.Fatalf("fifth error: %q", got)
	}
	c.expectEOF()
}

func TestIdleTimeouts(t *testing.T) {
	e := newTestEnv(t, func(s *Server) {
		s.LoginTimeout = 100 * time.Millisecond
		s.IdleTimeout = 300 * time.Millisecond
	})
	root := e.addUser("alice@example.org", "pw")
	deliver(t, root, msg1)
	before := listMaildir(t, root)
	c := e.dial()
	c.line()
	if got := c.line(); got != "-ERR disconnected for inactivity" {
		t.Fatalf("before login: %q", got)
	}
	c.expectEOF()

	c = e.login("alice@example.org", "pw")
	must(t, c.cmd("DELE 1"), "+OK")
	start := time.Now()
	if got := c.line(); got != "-ERR disconnected for inactivity" {
		t.Fatalf("after login: %q", got)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("logged-in session timed out after %v, want the longer idle timeout", d)
	}
	c.expectEOF()
	if got := listMaildir(t, root); !slices.Equal(got, before) {
		t.Fatalf("a timeout changed the Maildir: %q", got)
	}
}

// TestShutdown: Shutdown tells idle sessions the server is going away and
// expunges nothing.
func TestShutdown(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.addUser("alice@example.org", "pw")
	deliver(t, root, msg1)
	before := listMaildir(t, root)
	c := e.login("alice@example.org", "pw")
	must(t, c.cmd("DELE 1"), "+OK")
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.line(); got != "-ERR [SYS/TEMP] server shutting down" {
		t.Fatalf("on shutdown: %q", got)
	}
	c.expectEOF()
	if got := listMaildir(t, root); !slices.Equal(got, before) {
		t.Fatalf("shutdown changed the Maildir: %q", got)
	}
}

// TestPipelining: a batch of commands in one write gets every reply, in
// order (RFC 2449 §6.6).
func TestPipelining(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.addUser("alice@example.org", "pw")
	deliver(t, root, msg1)
	deliver(t, root, msg2)
	c := e.dial()
	c.line()
	c.send("USER alice@example.org\r\nPASS pw\r\nSTAT\r\nRETR 2\r\nDELE 1\r\nLIST\r\nQUIT\r\n")
	c.expect("+OK\r\n+OK logged in, 2 messages (73 octets)\r\n+OK 2 73\r\n+OK 28 octets\r\n" + msg2 + ".\r\n" +
		"+OK message 1 deleted\r\n+OK 1 messages (28 octets)\r\n2 28\r\n.\r\n+OK bye, 1 messages deleted\r\n")
	c.expectEOF()
}
