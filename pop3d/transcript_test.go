package pop3d

import (
	"path/filepath"
	"strings"
	"testing"

	"mailroom/maildir"
)

// step is one line of a golden transcript: what the client sends and the
// exact bytes the server must answer.
type step struct {
	send string // without CRLF; "" = only read (the greeting)
	want string
}

// replay runs a transcript on c.
func replay(t *testing.T, c *client, steps []step) {
	t.Helper()
	for i, s := range steps {
		if s.send != "" {
			c.send(s.send + "\r\n")
		}
		got, err := c.read(len(s.want))
		if err != nil || got != s.want {
			t.Fatalf("step %d %q: got %q (err %v), want %q", i, s.send, got, err, s.want)
		}
	}
}

func baseOf(path string) string {
	n, err := maildir.ParseName(filepath.Base(path))
	if err != nil {
		panic(err)
	}
	return n.Base
}

const (
	msg1 = "Subject: one\n\nfirst line\n.dot line\nlast\n"
	msg2 = "Subject: two\r\nX: y\r\n\r\nbody\r\n"
)

func TestGoldenTranscript(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.addUser("alice@example.org", "secret pw")
	p1 := deliver(t, root, msg1)
	p2 := deliver(t, root, msg2)
	u1, u2 := baseOf(p1), baseOf(p2)
	// msg1 is 40 bytes with LF, 45 with CRLF; msg2 is 28 with CRLF.
	c := e.dial()
	replay(t, c, []step{
		{"", "+OK pop.test POP3 server ready\r\n"},
		{"CAPA", "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\nIMPLEMENTATION mailroom\r\n.\r\n"},
		{"STAT", "-ERR command not valid in AUTHORIZATION state\r\n"},
		{"PASS x", "-ERR USER first\r\n"},
		{"user alice@example.org", "+OK\r\n"},
		{"PASS secret pw", "+OK logged in, 2 messages (73 octets)\r\n"},
		{"CAPA", "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION mailroom\r\n.\r\n"},
		{"USER bob", "-ERR command not valid in TRANSACTION state\r\n"},
		{"STAT", "+OK 2 73\r\n"},
		{"LIST", "+OK 2 messages (73 octets)\r\n1 45\r\n2 28\r\n.\r\n"},
		{"LIST 2", "+OK 2 28\r\n"},
		{"LIST 3", "-ERR no such message\r\n"},
		{"LIST 0", "-ERR no such message\r\n"},
		{"LIST -1", "-ERR invalid message number\r\n"},
		{"UIDL", "+OK unique-id listing follows\r\n1 " + u1 + "\r\n2 " + u2 + "\r\n.\r\n"},
		{"UIDL 1", "+OK 1 " + u1 + "\r\n"},
		{"TOP 1 0", "+OK top of message follows\r\nSubject: one\r\n\r\n.\r\n"},
		{"TOP 1 2", "+OK top of message follows\r\nSubject: one\r\n\r\nfirst line\r\n..dot line\r\n.\r\n"},
		{"TOP 1", "-ERR usage: TOP message lines\r\n"},
		{"RETR 1", "+OK 45 octets\r\nSubject: one\r\n\r\nfirst line\r\n..dot line\r\nlast\r\n.\r\n"},
		{"retr 2", "+OK 28 octets\r\n" + msg2 + ".\r\n"},
		{"DELE 1", "+OK message 1 deleted\r\n"},
		{"DELE 1", "-ERR no such message\r\n"},
		{"RETR 1", "-ERR no such message\r\n"},
		{"STAT", "+OK 1 28\r\n"},
		{"LIST", "+OK 1 messages (28 octets)\r\n2 28\r\n.\r\n"},
		{"UIDL", "+OK unique-id listing follows\r\n2 " + u2 + "\r\n.\r\n"},
		{"RSET", "+OK maildrop has 2 messages (73 octets)\r\n"},
		{"NOOP", "+OK\r\n"},
		{"NOOP x", "-ERR NOOP takes no argument\r\n"},
		{"XYZZY", "-ERR unknown command\r\n"},
		{"DELE 2", "+OK message 2 deleted\r\n"},
		{"QUIT", "+OK bye, 1 messages deleted\r\n"},
	})
	c.expectEOF()
	got := listMaildir(t, root)
	want := []string{"cur/" + u1 + ":2,S"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Maildir after QUIT: %q, want %q (message 1 read and kept, message 2 deleted)", got, want)
	}
}

// TestStateMachine checks every command in each state it is not valid in,
// and argument errors in the state it is.
func TestStateMachine(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.addUser("alice@example.org", "pw")
	deliver(t, root, msg1)
	authorization := []struct{ cmd, want string }{
		{"STAT", "-ERR command not valid in AUTHORIZATION state"},
		{"LIST", "-ERR command not valid in AUTHORIZATION state"},
		{"RETR 1", "-ERR command not valid in AUTHORIZATION state"},
		{"DELE 1", "-ERR command not valid in AUTHORIZATION state"},
		{"RSET", "-ERR command not valid in AUTHORIZATION state"},
		{"TOP 1 1", "-ERR command not valid in AUTHORIZATION state"},
		{"UIDL", "-ERR command not valid in AUTHORIZATION state"},
		{"NOOP", "-ERR command not valid in AUTHORIZATION state"},
		{"APOP alice@example.org 0123456789abcdef0123456789abcdef", "-ERR unknown command"},
		{"", "-ERR unknown command"},
		{"USER", "-ERR USER needs a name"},
		{"AUTH CRAM-MD5", "-ERR unsupported authentication mechanism"},
		{"CAPA x", "-ERR CAPA takes no argument"},
	}
	c := e.dial()
	c.line()
	for _, tc := range authorization {
		if got := c.cmd(tc.cmd); got != tc.want {
			t.Errorf("AUTHORIZATION %q: %q, want %q", tc.cmd, got, tc.want)
		}
	}
	transaction := []struct{ cmd, want string }{
		{"USER x", "-ERR command not valid in TRANSACTION state"},
		{"PASS x", "-ERR command not valid in TRANSACTION state"},
		{"AUTH PLAIN", "-ERR command not valid in TRANSACTION state"},
		{"STLS", "-ERR command not valid in TRANSACTION state"},
		{"RETR", "-ERR invalid message number"},
		{"RETR x", "-ERR invalid message number"},
		{"RETR 1 2", "-ERR invalid message number"},
		{"RETR +1", "-ERR invalid message number"},
		{"RETR 9999999999", "-ERR invalid message number"},
		{"RETR 2", "-ERR no such message"},
		{"DELE 0", "-ERR no such message"},
		{"TOP 1 x", "-ERR usage: TOP message lines"},
		{"TOP 1 -1", "-ERR usage: TOP message lines"},
		{"TOP x 1", "-ERR invalid message number"},
		{"STAT 1", "-ERR STAT takes no argument"},
		{"RSET 1", "-ERR RSET takes no argument"},
		{"UIDL 2", "-ERR no such message"},
		{"stat", "+OK 1 45"},
	}
	c = e.login("alice@example.org", "pw")
	for _, tc := range transaction {
		if got := c.cmd(tc.cmd); got != tc.want {
			t.Errorf("TRANSACTION %q: %q, want %q", tc.cmd, got, tc.want)
		}
	}
}
