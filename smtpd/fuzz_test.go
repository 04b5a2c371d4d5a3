package smtpd

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// FuzzServer drives the real server over a loopback socket with arbitrary
// client bytes. Whatever they are, the server must answer and end the
// connection in bounded time, never panic, and queue exactly the
// messages it acknowledged with a 250 after DATA or BDAT.
func FuzzServer(f *testing.F) {
	for _, file := range mustGlob(f, "testdata/*.txt") {
		var b strings.Builder
		for _, l := range transcriptLinesTB(f, file) {
			if c, ok := strings.CutPrefix(l, "C: "); ok {
				b.WriteString(c + "\r\n")
			}
		}
		f.Add([]byte(b.String()))
	}
	session := "EHLO x\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
	for _, end := range []string{"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r", "\r\n.\r\r\n", "\r\n.\r\n"} {
		f.Add([]byte(session + "Subject: x\r\n\r\nbody" + end + "MAIL FROM:<b@remote.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n"))
	}
	f.Add([]byte("EHLO x\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nBDAT 5\r\nab\r\ncBDAT 2 LAST\r\nd\n"))
	f.Add([]byte("EHLO x\r\nAUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAGFsaWNlLXNlY3JldA==\r\nAUTH LOGIN\r\n*\r\nSTARTTLS\r\nGET / HTTP/1.0\r\n"))
	testAuthDelay = time.Microsecond
	defer func() { testAuthDelay = 20 * time.Millisecond }()
	cfg := testConfig(f)
	cfg.Smtpd.CommandTimeout = 2 * time.Second
	cfg.Smtpd.DataTimeout = 2 * time.Second
	cfg.PlaintextAuthOnLoopback = true
	e := startServer(f, cfg)
	f.Fuzz(func(t *testing.T, input []byte) {
		before, err := e.sp.List()
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp", e.addrs[ServiceSMTP], ioLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioLimit))
		// Write while reading, so that a server blocked on writing its
		// replies cannot deadlock the test.
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write(input)
			c.(*net.TCPConn).CloseWrite()
			wrote <- err
		}()
		replies, err := io.ReadAll(c)
		if err != nil {
			// A reset after the server closed with unread input is fine.
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("server did not end the connection within %v: %v", ioLimit, err)
			}
		}
		<-wrote
		if !bytes.HasPrefix(replies, []byte("220 ")) && len(replies) > 0 {
			t.Fatalf("no greeting: %q", replies[:min(len(replies), 100)])
		}
		// The connection is over for the server too once its goroutine
		// is done; wait for it (bounded) before counting the spool.
		waitIdle(t, e)
		after, err := e.sp.List()
		if err != nil {
			t.Fatal(err)
		}
		acked := queuedRE.FindAll(replies, -1)
		if got := len(after) - len(before); got != len(acked) {
			t.Fatalf("%d messages queued, %d acknowledged; replies:\n%s", got, len(acked), replies)
		}
	})
}

// waitIdle waits until the server has no connection left.
func waitIdle(t testing.TB, e *env) {
	timeout := time.After(ioLimit)
	for {
		n, changed := e.srv.openConns()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%d connections still open on the server", n)
		}
	}
}
