package pop3d

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestPlaintextRefusedBeforeTLS(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.PlaintextAuthOnLoopback = false })
	e.addUser("alice@example.org", "pw")
	c := e.dial()
	replay(t, c, []step{
		{"", "+OK pop.test POP3 server ready\r\n"},
		// No USER, no SASL: a password may not be sent here.
		{"CAPA", "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\nIMPLEMENTATION mailroom\r\n.\r\n"},
		{"USER alice@example.org", errPlaintext + "\r\n"},
		{"PASS pw", errPlaintext + "\r\n"},
		{"AUTH PLAIN " + b64("\x00alice@example.org\x00pw"), errPlaintext + "\r\n"},
		{"AUTH LOGIN", errPlaintext + "\r\n"},
	})
	// Over pop3s the same server takes the password.
	c = e.dialTLS()
	replay(t, c, []step{
		{"", "+OK pop.test POP3 server ready\r\n"},
		{"CAPA", "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION mailroom\r\n.\r\n"},
		{"STLS", "-ERR TLS already active\r\n"},
		{"USER alice@example.org", "+OK\r\n"},
		{"PASS pw", "+OK logged in, 0 messages (0 octets)\r\n"},
	})
}

// TestSTLSDiscardsPipelinedPlaintext: commands sent in the same packet as
// STLS must not run inside the TLS session (the STARTTLS injection).
func TestSTLSDiscardsPipelinedPlaintext(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.PlaintextAuthOnLoopback = false })
	root := e.addUser("alice@example.org", "pw")
	deliver(t, root, msg1)
	c := e.dial()
	c.line()
	c.send("STLS\r\nUSER alice@example.org\r\nPASS pw\r\nDELE 1\r\nQUIT\r\n")
	c.expect("+OK begin TLS negotiation\r\n")
	if c.r.Buffered() != 0 {
		t.Fatalf("the server answered the injected commands in plaintext: %d bytes", c.r.Buffered())
	}
	tc := tls.Client(c.conn, &tls.Config{RootCAs: e.roots, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c = &client{t: t, conn: tc, r: bufio.NewReader(tc)}
	// The first reply in TLS answers this command, not the injected ones:
	// still AUTHORIZATION, and now USER is offered, STLS no longer.
	replay(t, c, []step{
		{"CAPA", "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nUSER\r\nSASL PLAIN LOGIN\r\nIMPLEMENTATION mailroom\r\n.\r\n"},
		{"PASS pw", "-ERR USER first\r\n"},
		{"STLS", "-ERR TLS already active\r\n"},
		{"AUTH PLAIN " + b64("\x00alice@example.org\x00pw"), "+OK logged in, 1 messages (45 octets)\r\n"},
		{"QUIT", "+OK bye, 0 messages deleted\r\n"},
	})
	if got := listMaildir(t, root); len(got) != 1 {
		t.Fatalf("Maildir %q: the injected DELE ran", got)
	}
}

func TestAuthMechanisms(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addUser("alice@example.org", "pass word")
	tests := []struct {
		name  string
		steps []step
	}{
		{"plain initial response", []step{
			{"AUTH PLAIN " + b64("\x00alice@example.org\x00pass word"), "+OK logged in, 0 messages (0 octets)\r\n"},
		}},
		{"plain with authzid = authcid", []step{
			{"AUTH PLAIN " + b64("alice@example.org\x00alice@example.org\x00pass word"), "+OK logged in, 0 messages (0 octets)\r\n"},
		}},
		{"plain continuation", []step{
			{"AUTH PLAIN", "+ \r\n"},
			{b64("\x00ALICE@example.org\x00pass word"), "+OK logged in, 0 messages (0 octets)\r\n"},
		}},
		{"login", []step{
			{"AUTH LOGIN", "+ " + b64("Username:") + "\r\n"},
			{b64("alice@example.org"), "+ " + b64("Password:") + "\r\n"},
			{b64("pass word"), "+OK logged in, 0 messages (0 octets)\r\n"},
		}},
		{"login initial response", []step{
			{"auth login " + b64("alice@example.org"), "+ " + b64("Password:") + "\r\n"},
			{b64("pass word"), "+OK logged in, 0 messages (0 octets)\r\n"},
		}},
		{"mechanism list", []step{
			{"AUTH", "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n"},
		}},
		{"cancel", []step{
			{"AUTH PLAIN", "+ \r\n"},
			{"*", "-ERR authentication cancelled\r\n"},
			{"STAT", "-ERR command not valid in AUTHORIZATION state\r\n"},
		}},
		{"wrong password", []step{
			{"AUTH PLAIN " + b64("\x00alice@example.org\x00wrong"), "-ERR [AUTH] authentication failed\r\n"},
		}},
		{"other authzid", []step{
			{"AUTH PLAIN " + b64("bob@example.org\x00alice@example.org\x00pass word"), "-ERR [AUTH] authentication failed\r\n"},
		}},
		{"bad base64", []step{
			{"AUTH PLAIN !!!", "-ERR [AUTH] authentication failed\r\n"},
		}},
		{"unknown user", []step{
			{"USER nobody@example.org", "+OK\r\n"},
			{"PASS pass word", "-ERR [AUTH] authentication failed\r\n"},
		}},
		{"password with spaces", []step{
			{"USER alice@example.org", "+OK\r\n"},
			{"PASS pass word", "+OK logged in, 0 messages (0 octets)\r\n"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial()
			c.line()
			replay(t, c, tc.steps)
			c.cmd("QUIT")
			c.expectEOF()
		})
	}
	if strings.Contains(e.logs.String(), "pass word") {
		t.Error("a password reached the log")
	}
}

func TestAuthFailuresDelayAndClose(t *testing.T) {
	const base = 20 * time.Millisecond
	e := newTestEnv(t, func(s *Server) {
		s.AuthDelay, s.MaxAuthDelay, s.MaxAuthFailures = base, 4*base, 4
	})
	e.addUser("alice@example.org", "pw")
	c := e.dial()
	c.line()
	var took []time.Duration
	for i := range 4 {
		start := time.Now()
		r := c.cmd("AUTH PLAIN " + b64("\x00alice@example.org\x00guess"))
		took = append(took, time.Since(start))
		if i < 3 {
			must(t, r, "-ERR [AUTH] authentication failed")
		} else {
			must(t, r, "-ERR [AUTH] authentication failed; too many failures, closing connection")
		}
	}
	c.expectEOF()
	// 1×, 2×, 4×, 4× (capped) the base, at least.
	for i, min := range []time.Duration{base, 2 * base, 4 * base, 4 * base} {
		if took[i] < min {
			t.Errorf("failure %d answered after %v, want at least %v", i+1, took[i], min)
		}
	}
	for n, want := range map[int]time.Duration{1: base, 2: 2 * base, 3: 4 * base, 10: 4 * base} {
		if got := e.srv.authDelay(n); got != want {
			t.Errorf("authDelay(%d) = %v, want %v", n, got, want)
		}
	}
}
