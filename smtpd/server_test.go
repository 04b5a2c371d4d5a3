package smtpd

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestConnectionLimitPerClient(t *testing.T) {
	cfg := testConfig(t)
	cfg.Smtpd.MaxConnectionsPerClient = 2
	e := startServer(t, cfg)
	a, b := e.dial(ServiceSMTP), e.dial(ServiceSubmission)
	for _, c := range []*client{a, b} {
		if r := c.reply(); !strings.HasPrefix(r, "220 ") {
			t.Fatalf("greeting %q", r)
		}
	}
	c := e.dial(ServiceSMTP)
	if r := c.reply(); r != "421 4.7.0 mx.example.org too many connections, try again later" {
		t.Fatalf("third connection: %q", r)
	}
	c.expectClosed()
	// Freeing one makes room again.
	a.expect("QUIT", "221 ")
	a.expectClosed()
	waitConns(t, e, 1)
	d := e.dial(ServiceSMTP)
	if r := d.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("after a QUIT: %q", r)
	}
}

// waitConns waits until the server serves n connections or fewer.
func waitConns(t testing.TB, e *env, n int) {
	timeout := time.After(ioLimit)
	for {
		open, changed := e.srv.openConns()
		if open <= n {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d connections open, want %d", open, n)
		}
	}
}

// TestShutdownFinishesTransactions: idle connections close at once, a
// message in flight is accepted, then its connection closes.
func TestShutdownFinishesTransactions(t *testing.T) {
	e := startServer(t, testConfig(t))
	idle := e.dial(ServiceSMTP)
	idle.ehlo()
	busy := e.dial(ServiceSMTP)
	busy.ehlo()
	busy.expect("MAIL FROM:<s@remote.example>", "250 ")
	busy.expect("RCPT TO:<alice@example.org>", "250 ")
	busy.expect("DATA", "354 ")
	busy.send("Subject: in flight\r\n\r\n")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioLimit)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	idle.expectClosed()
	// New connections are refused now.
	busy.send("still here\r\n.\r\n")
	id := queuedID(t, busy.reply())
	busy.expectClosed()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_, data := e.message(id)
	e.checkBody(id, data, "Subject: in flight\r\n\r\nstill here\r\n")
}

func TestHTTPOverTLSCloses(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSubmissions)
	if r := c.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("greeting %q", r)
	}
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.expectClosed()
	if !strings.Contains(e.logs.String(), "msg=forbidden") {
		t.Error("no forbidden line in the log")
	}
}

func TestUTF8Addresses(t *testing.T) {
	e := startServer(t, testConfig(t))
	c := e.dial(ServiceSMTP)
	c.ehlo()
	c.expect("MAIL FROM:<jörg@remote.example>", "553 5.6.7 ")
	c.expect("MAIL FROM:<jörg@remote.example> SMTPUTF8", "250 ")
	c.expect("RCPT TO:<alice@example.org>", "250 ")
	c.expect("DATA", "354 ")
	c.send("Subject: ü\r\n\r\nx\r\n.\r\n")
	id := queuedID(t, c.reply())
	m, _ := e.message(id)
	if !m.Envelope.SMTPUTF8 || m.Envelope.Sender != "jörg@remote.example" {
		t.Errorf("envelope %+v", m.Envelope)
	}
}
