package e2e

// Remote delivery: mail submitted with the built sendmail is delivered by
// the built `deliver --queue` to Debian's Postfix, a remote MX on
// loopback reached through transport_file. Postfix stores it with
// local(8) into a Maildir of its own (mail_spool_directory ending in
// "/"). Between the two sits a small TCP relay of the test's, which can
// answer "421" for a while, so that retries and expiry can be watched
// without stopping Postfix.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
	"mailroom/spool"
)

// remoteWait bounds every wait on a delivery across the processes.
const remoteWait = 60 * time.Second

// flakyRelay forwards connections to a backend, or, while down, answers
// each with a 421 greeting and hangs up.
type flakyRelay struct {
	ln      net.Listener
	backend string
	down    atomic.Bool
	refused atomic.Int64
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]bool
}

func startFlakyRelay(t *testing.T, backend string) *flakyRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &flakyRelay{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *flakyRelay) track(c net.Conn, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.conns[c] = true
	} else {
		delete(r.conns, c)
	}
}

func (r *flakyRelay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.track(c, true)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.track(c, false)
			defer c.Close()
			if r.down.Load() {
				r.refused.Add(1)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, "421 4.3.2 relay.test service not available, try later\r\n")
				return
			}
			b, err := net.DialTimeout("tcp", r.backend, 10*time.Second)
			if err != nil {
				return
			}
			r.track(b, true)
			defer r.track(b, false)
			defer b.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(b, c); b.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, b); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// queueLog collects a daemon's log while the test reads it.
type queueLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *queueLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *queueLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startQueue runs `deliver --queue` until the test (or subtest) ends,
// then stops it with SIGTERM.
func startQueue(t *testing.T, e *env) *queueLog {
	t.Helper()
	logs := &queueLog{}
	cmd := exec.Command(e.bin("deliver"), "--config", e.Config, "--queue")
	cmd.Dir, cmd.Stdout, cmd.Stderr = e.Dir, logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("deliver --queue exited with %v after SIGTERM", err)
			}
		case <-time.After(processTimeout):
			_ = cmd.Process.Kill()
			t.Errorf("deliver --queue did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("deliver --queue log:\n%s", logs)
		}
	})
	if !testutil.WaitFor(30*time.Second, func() bool { return strings.Contains(logs.String(), "msg=start ") }) ||
		strings.Contains(logs.String(), "level=ERROR msg=start") {
		t.Fatalf("deliver --queue did not start:\n%s", logs)
	}
	return logs
}

// waitMaildir waits for dir to hold n files and returns their contents.
func waitMaildir(t *testing.T, dir string, n int, why func() string) []string {
	t.Helper()
	var names []string
	ok := testutil.WaitFor(remoteWait, func() bool {
		ents, _ := os.ReadDir(dir)
		names = names[:0]
		for _, de := range ents {
			names = append(names, de.Name())
		}
		return len(names) >= n
	})
	if !ok || len(names) != n {
		t.Fatalf("%s holds %d files, want %d\n%s", dir, len(names), n, why())
	}
	var out []string
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestRemoteDeliveryPostfix(t *testing.T) {
	requireRoot(t)
	postfix := requireTool(t, "/usr/sbin/postfix")
	e := newEnv(t, "example.org")
	e.addUser("alice@example.org", "pw")
	if err := spool.Setup(e.Spool); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Dir(e.Dir), e.Dir} {
		chmod(t, p, 0o755)
	}
	// The queue daemon reads the tables after dropping to the mail
	// root's owner.
	for _, p := range []string{e.Passwd, e.Aliases} {
		chmod(t, p, 0o644)
	}

	// Postfix: the MX for example.test with STARTTLS; local(8) keeps
	// nobody's mail in <dir>/mailspool/nobody/ as a Maildir.
	pfDir := filepath.Join(e.Dir, "postfix")
	spoolDir := filepath.Join(pfDir, "mailspool")
	if err := os.MkdirAll(spoolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, spoolDir, 0o1777)
	cert, key := filepath.Join(pfDir, "cert.pem"), filepath.Join(pfDir, "key.pem")
	if err := tlsconf.WriteSelfSigned(cert, key, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	pf := startPostfix(t, postfix, pfDir, fmt.Sprintf(`mail_spool_directory = %s/
home_mailbox =
mailbox_command =
smtpd_tls_cert_file = %s
smtpd_tls_key_file = %s
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
`, spoolDir, cert, key))
	// smtpd's TLS needs tlsmgr (its PRNG seed), which the shared
	// master.cf leaves out: add it and reload.
	masterCf := filepath.Join(pf.conf, "master.cf")
	f, err := os.OpenFile(masterCf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.WriteString(f, "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if out, err := pf.command("reload"); err != nil {
		t.Fatalf("postfix reload: %v\n%s", err, out)
	}
	pf.waitLog("reload --")
	relay := startFlakyRelay(t, pf.addr)

	transport := filepath.Join(e.Dir, "transport")
	writeFile(t, transport, "# the remote MX of the tests\nexample.test [127.0.0.1]:"+remotePort(t, relay.ln.Addr().String())+"\n")
	configure := func(lifetime string) {
		e.writeConfig([]string{"example.org"}, fmt.Sprintf(`[sendmail]
origin = example.org
[deliver]
transport_file = %s
tls_security_level = may
min_backoff = 1s
max_backoff = 1s
queue_lifetime = %s
`, transport, lifetime))
		chmod(t, e.Config, 0o644)
	}
	nobodyNew := filepath.Join(spoolDir, "nobody", "new")
	aliceNew := filepath.Join(e.maildir("alice@example.org"), "new")
	submit := func(rcpt, subject, body string) string {
		t.Helper()
		msg := "From: Alice <alice@example.org>\nTo: <" + rcpt + ">\nSubject: " + subject +
			"\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@example.org>\n\n" + body
		e.run(msg, "sendmail", "-f", "alice@example.org", "-i", "--", rcpt).wantCode(t, 0)
		return msg
	}

	t.Run("delivered over STARTTLS, byte for byte", func(t *testing.T) {
		configure("1h")
		logs := startQueue(t, e)
		body := "Hello Postfix.\n.a line with a leading dot\n\xc3\xa9t\xc3\xa9 8-bit\n\nlast line\n"
		msg := submit("nobody@example.test", "to postfix", body)
		got := waitMaildir(t, nobodyNew, 1, func() string { return logs.String() + pf.log() })[0]
		// Postfix adds Return-Path, Delivered-To, X-Original-To and its
		// Received; the rest is ours, unchanged.
		if !strings.HasSuffix(got, msg) {
			t.Errorf("stored message does not end with the submitted one:\n%q\nwant suffix\n%q", got, msg)
		}
		if !strings.HasPrefix(got, "Return-Path: <alice@example.org>\n") {
			t.Errorf("envelope sender not passed on:\n%s", got)
		}
		if !strings.Contains(got, "(using TLS") {
			t.Errorf("Postfix's Received line shows no TLS:\n%s", got)
		}
		pf.waitLog("TLS connection established from")
		if !testutil.WaitFor(remoteWait, func() bool {
			l := logs.String()
			return strings.Contains(l, "msg=connect") && strings.Contains(l, "tls=unverified") &&
				strings.Contains(l, "to=nobody@example.test status=sent")
		}) {
			t.Errorf("deliver's log lacks the TLS connection or the delivery:\n%s", logs)
		}
	})

	t.Run("a refused recipient bounces to the local sender", func(t *testing.T) {
		configure("1h")
		logs := startQueue(t, e)
		submit("nosuch@example.test", "refused", "Nobody reads this.\n")
		bounce := waitMaildir(t, aliceNew, 1, func() string { return logs.String() + pf.log() })[0]
		for _, want := range []string{"multipart/report", "report-type=delivery-status", "Final-Recipient: rfc822; nosuch@example.test",
			"Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1", "Remote-MTA: dns; 127.0.0.1", "Subject: refused"} {
			if !strings.Contains(bounce, want) {
				t.Errorf("bounce lacks %q:\n%s", want, bounce)
			}
		}
		if !strings.Contains(logs.String(), "to=nosuch@example.test status=bounced") {
			t.Errorf("no bounced line:\n%s", logs)
		}
	})

	t.Run("a temporarily failing peer is retried", func(t *testing.T) {
		configure("1h")
		relay.down.Store(true)
		logs := startQueue(t, e)
		before := relay.refused.Load()
		msg := submit("nobody@example.test", "retried", "Second try lucky.\n")
		if !testutil.WaitFor(remoteWait, func() bool {
			return relay.refused.Load() > before && strings.Contains(logs.String(), "to=nobody@example.test status=deferred")
		}) {
			t.Fatalf("no deferral after a 421:\n%s", logs)
		}
		if !strings.Contains(logs.String(), "dsn=4.3.2") {
			t.Errorf("the 421's status is not in the log:\n%s", logs)
		}
		relay.down.Store(false)
		got := waitMaildir(t, nobodyNew, 2, func() string { return logs.String() + pf.log() })
		found := false
		for _, m := range got {
			found = found || strings.HasSuffix(m, msg)
		}
		if !found {
			t.Errorf("the retried message is not in the Maildir as sent: %q", got)
		}
	})

	t.Run("a long outage expires into a bounce", func(t *testing.T) {
		configure("5s")
		relay.down.Store(true)
		defer relay.down.Store(false)
		logs := startQueue(t, e)
		before := relay.refused.Load()
		submit("nobody@example.test", "expired", "Never arrives.\n")
		bounces := waitMaildir(t, aliceNew, 2, func() string { return logs.String() })
		var bounce string
		for _, b := range bounces {
			if strings.Contains(b, "Subject: expired") {
				bounce = b
			}
		}
		for _, want := range []string{"Final-Recipient: rfc822; nobody@example.test", "Action: failed", "421 4.3.2"} {
			if !strings.Contains(bounce, want) {
				t.Errorf("expiry bounce lacks %q:\n%s", want, bounce)
			}
		}
		if n := relay.refused.Load() - before; n < 2 {
			t.Errorf("%d attempts before expiry, want retries", n)
		}
		if n := len(waitMaildir(t, nobodyNew, 2, func() string { return "" })); n != 2 {
			t.Errorf("%d messages at Postfix, want the 2 from before", n)
		}
	})
}

func remotePort(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
