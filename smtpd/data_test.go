package smtpd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"mailroom/spool"
)

// ehlo greets and skips the capability list.
func (c *client) ehlo() {
	c.t.Helper()
	if r := c.reply(); !strings.HasPrefix(r, "220 ") {
		c.t.Fatalf("greeting %q", r)
	}
	if r := c.cmd("EHLO client.example"); !strings.HasPrefix(r, "250-") {
		c.t.Fatalf("EHLO: %q", r)
	}
}

// expect sends line and checks the reply's start.
func (c *client) expect(line, prefix string) string {
	c.t.Helper()
	r := c.cmd(line)
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("%q: got %q, want %q...", line, r, prefix)
	}
	return r
}

func TestAcceptedMessageByteForByte(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSMTP)
	c.ehlo()
	c.expect("MAIL FROM:<sender@remote.example> BODY=8BITMIME RET=FULL ENVID=env+2Bid", "250 ")
	c.expect("RCPT TO:<alice@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Alice@example.org", "250 ")
	c.expect("DATA", "354 ")
	body := "From: s@remote.example\r\nSubject: t\xc3\xa9st\r\n\r\n.leading dot\r\n..two\r\nlast line without much\r\n"
	wire := strings.ReplaceAll("\r\n"+body, "\r\n.", "\r\n..")[2:]
	c.send(wire + ".\r\n")
	id := queuedID(t, c.reply())
	m, data := e.message(id)
	hdr := e.checkBody(id, data, body)
	for _, want := range []string{
		"Received: from client.example ([127.0.0.1])\r\n",
		"\tby mx.example.org (mailroom) with ESMTP id " + id.String() + "\r\n",
		"\tfor <alice@example.org>;\r\n",
	} {
		if !strings.Contains(hdr, want) {
			t.Errorf("Received header %q lacks %q", hdr, want)
		}
	}
	env := m.Envelope
	if env.Sender != "sender@remote.example" || env.Body != spool.Body8BitMIME || env.Ret != spool.RetFull ||
		env.EnvID != "env+id" || env.Origin != spool.OriginSMTP || env.ClientAddr != "127.0.0.1" ||
		env.Helo != "client.example" || env.Protocol != "ESMTP" || env.AuthUser != "" || env.TLS != "" {
		t.Errorf("envelope %+v", env)
	}
	want := []spool.Recipient{{Addr: "alice@example.org", Notify: spool.NotifySuccess | spool.NotifyDelay, ORcpt: "rfc822;Alice@example.org"}}
	if fmt.Sprint(env.Recipients) != fmt.Sprint(want) {
		t.Errorf("recipients %+v, want %+v", env.Recipients, want)
	}
	c.expect("QUIT", "221 ")
	if logs := e.logs.String(); !strings.Contains(logs, "msg=accepted") || !strings.Contains(logs, "msgid="+id.String()) {
		t.Errorf("no accepted line with msgid in log:\n%s", logs)
	}
}

func TestReceivedTLSAndAuth(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSubmissions)
	c.ehlo()
	c.expect("AUTH PLAIN "+authPlain("alice@example.org", alicePass), "235 ")
	c.expect("MAIL FROM:<alice@example.org>", "250 ")
	c.expect("RCPT TO:<bob@example.org>", "250 ")
	c.expect("RCPT TO:<friend@elsewhere.example>", "250 ")
	c.expect("DATA", "354 ")
	body := "Subject: hi\r\n\r\nhello\r\n"
	c.send(body + ".\r\n")
	id := queuedID(t, c.reply())
	m, data := e.message(id)
	hdr := e.checkBody(id, data, body)
	if !strings.Contains(hdr, " with ESMTPSA id ") || !strings.Contains(hdr, "(using TLS1.3 ") || strings.Contains(hdr, "for <") {
		t.Errorf("Received header %q", hdr)
	}
	if m.Envelope.AuthUser != "alice@example.org" || m.Envelope.Protocol != "ESMTPSA" || !strings.HasPrefix(m.Envelope.TLS, "TLS1.3 ") {
		t.Errorf("envelope %+v", m.Envelope)
	}
	if strings.Contains(e.logs.String(), alicePass) {
		t.Error("the password reached the log")
	}
}

func TestBDAT(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSMTP)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.example>", "250 ")
	c.expect("RCPT TO:<bob@example.org>", "250 ")
	part1 := "Subject: chunks\r\n\r\nfirst\r\n.not stuffed\r\n"
	part2 := "second\r\n"
	c.send(fmt.Sprintf("BDAT %d\r\n%s", len(part1), part1))
	if r := c.reply(); r != "250 2.0.0 Continue" {
		t.Fatalf("BDAT: %q", r)
	}
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(part2), part2))
	id := queuedID(t, c.reply())
	_, data := e.message(id)
	e.checkBody(id, data, part1+part2)
	// A chunk over the size limit is refused and discarded.
	c.expect("MAIL FROM:<s@remote.example>", "250 ")
	c.expect("RCPT TO:<bob@example.org>", "250 ")
	// (Lines, since go-smtp applies max_line_length to a refused chunk.)
	big := strings.Repeat(strings.Repeat("x", 98)+"\r\n", 101)
	c.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(big), big))
	if r := c.reply(); r != "552 5.3.4 Max message size exceeded" {
		t.Fatalf("big BDAT: %q", r)
	}
	c.expect("NOOP", "250 ")
	if n := len(e.queued()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}

func TestSizeLimitDuringData(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSMTP)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.example> SIZE=100", "250 ")
	c.expect("RCPT TO:<bob@example.org>", "250 ")
	c.expect("DATA", "354 ")
	line := strings.Repeat("y", 70) + "\r\n"
	c.send(strings.Repeat(line, 200) + ".\r\n")
	if r := c.reply(); r != "552 5.3.4 Maximum message size exceeded" {
		t.Fatalf("got %q", r)
	}
	c.expect("NOOP", "250 ")
	if n := len(e.queued()); n != 0 {
		t.Errorf("%d messages queued, want 0", n)
	}
	tmp, _ := spoolTmp(e)
	if tmp != 0 {
		t.Errorf("%d entries left in tmp/", tmp)
	}
}

// TestSmuggling sends every end-of-data lookalike inside a message and
// checks that only CRLF.CRLF ends it and that a message with a bare CR
// or LF is refused whole.
func TestSmuggling(t *testing.T) {
	const smuggled = "MAIL FROM:<evil@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n"
	cases := []struct {
		name, fake string
	}{
		{"LF.LF", "\n.\n"},
		{"CRLF.LF", "\r\n.\n"},
		{"LF.CRLF", "\n.\r\n"},
		{"CR.CR", "\r.\r"},
		{"CR.CRLF", "\r.\r\n"},
		{"CRLF.CR", "\r\n.\r"},
		{"CRLF.CRCRLF", "\r\n.\r\r\n"},
		{"bare LF", "\nmore\r\n"},
		{"bare CR", "\rmore\r\n"},
		{"CRLF.NUL", "\r\n.\x00\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := startServer(t, testConfig(t))
			c := e.dial(ServiceSMTP)
			c.ehlo()
			c.expect("MAIL FROM:<s@remote.example>", "250 ")
			c.expect("RCPT TO:<alice@example.org>", "250 ")
			c.expect("DATA", "354 ")
			c.send("Subject: carrier\r\n\r\nbody" + tc.fake + smuggled + ".\r\n")
			r := c.reply()
			if tc.name == "CRLF.NUL" {
				// No bare CR or LF: one message, the NUL line in it
				// (its dot removed: RFC 5321 §4.5.2).
				c.expect("QUIT", "221 ")
				id := queuedID(t, r)
				_, data := e.message(id)
				e.checkBody(id, data, "Subject: carrier\r\n\r\nbody\r\n\x00\r\n"+smuggled)
				return
			}
			if r != "554 5.6.0 Message refused: bare CR or LF found; lines must end with CRLF (RFC 5321 2.3.8)" {
				t.Errorf("reply %q", r)
			}
			c.expectClosed()
			ids := e.queued()
			if len(ids) != 0 {
				t.Errorf("queued %v, want nothing", ids)
			}
		})
	}
}

// TestStartTLSDiscardsPipelinedPlaintext: commands sent in plaintext
// after STARTTLS in the same packet must not be run inside TLS.
func TestStartTLSDiscardsPipelinedPlaintext(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSMTP)
	c.ehlo()
	c.send("STARTTLS\r\nMAIL FROM:<injected@remote.example>\r\nRCPT TO:<alice@example.org>\r\n")
	if r := c.reply(); r != "220 2.0.0 Ready to start TLS" {
		t.Fatalf("STARTTLS: %q", r)
	}
	c.startTLS()
	c.expect("EHLO client.example", "250-Hello client.example")
	// Had the injected MAIL been run, RCPT would be accepted now.
	if r := c.cmd("RCPT TO:<alice@example.org>"); r != "502 5.5.1 Missing MAIL FROM command." {
		t.Fatalf("RCPT after STARTTLS: %q", r)
	}
}

// TestStartTLSHandshakeFailureCloses: plaintext after "220 Ready to start
// TLS" is no handshake; the connection must end, not fall back.
func TestStartTLSHandshakeFailureCloses(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSMTP)
	c.ehlo()
	if r := c.cmd("STARTTLS"); r != "220 2.0.0 Ready to start TLS" {
		t.Fatalf("STARTTLS: %q", r)
	}
	c.send("MAIL FROM:<plain@remote.example>\r\n")
	c.expectClosed()
}

func TestAuthFailureDelayGrows(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSubmissions)
	c.ehlo()
	bad := "AUTH PLAIN " + authPlain("alice@example.org", "wrong")
	var took []time.Duration
	for range 4 {
		start := time.Now()
		c.expect(bad, "535 5.7.8 ")
		took = append(took, time.Since(start))
	}
	// auth_failures_before_delay = 2, unit 20ms: 0, 0, 20ms, 40ms.
	if took[2] < 20*time.Millisecond || took[3] < 40*time.Millisecond {
		t.Errorf("failure replies took %v; want the 3rd ≥ 20ms and the 4th ≥ 40ms", took)
	}
	// The client address is remembered across connections.
	c2 := e.dial(ServiceSubmissions)
	c2.ehlo()
	start := time.Now()
	c2.expect(bad, "535 5.7.8 ")
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("first failure on a new connection took %v, want ≥ 80ms (5th from this address)", d)
	}
	c2.expect("AUTH PLAIN "+authPlain("alice@example.org", alicePass), "235 ")
	if logs := e.logs.String(); strings.Contains(logs, "wrong") || strings.Contains(logs, alicePass) {
		t.Error("a password reached the log")
	}
}

func TestAuthDelayBounded(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 0, 2: 0, 3: time.Second, 4: 2 * time.Second, 8: 30 * time.Second, 1000: 30 * time.Second} {
		if got := authDelay(n, 2, time.Second); got != want {
			t.Errorf("authDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

// spoolTmp counts entries in the spool's tmp/ directory.
func spoolTmp(e *env) (int, error) {
	ents, err := readDirNames(e.cfg.SpoolDir + "/tmp")
	return len(ents), err
}
