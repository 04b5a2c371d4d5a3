package e2e

// A small harness for the mail daemons as separate processes: smtpd on
// three fresh loopback ports (MX, submission, submissions) with a
// self-signed certificate, and deliver --queue consuming the spool.
//
// Readiness is observed, never slept on: deliver --queue reports READY=1
// over sd_notify to an abstract unix socket the test listens on (abstract,
// so the daemon can reach it after dropping root), smtpd is ready when
// every port accepts a connection. Each daemon's standard error is kept
// and printed when the test fails; every process is stopped in t.Cleanup.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
)

// daemonWait bounds every wait for a daemon to start, stop or deliver.
const daemonWait = 30 * time.Second

// daemon is one running program.
type daemon struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	done chan struct{} // closed when the process has been waited for
	err  error         // Wait's result, valid after done
	// termKills: the program does not catch SIGTERM (a launcher such as
	// systemd-socket-activate --accept), so dying of it is a clean stop.
	termKills bool
}

// startDaemon starts path with args and extra environment, and registers
// its stop (SIGTERM, then SIGKILL after daemonWait) and its log for the
// end of the test.
func startDaemon(t *testing.T, name, path string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, name: name, log: &testutil.SyncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(path, args...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", d.name, d.log)
		}
	})
	return d
}

// exited reports whether the process has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits (bounded) for the exit; a process that
// does not stop is killed and the test fails.
func (d *daemon) stop() {
	if d.exited() {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if d.err != nil && !(d.termKills && isTerminated(d.err)) {
			d.t.Errorf("%s exited with %v after SIGTERM", d.name, d.err)
		}
	case <-time.After(daemonWait):
		_ = d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("%s did not stop within %v of SIGTERM", d.name, daemonWait)
	}
}

// isTerminated reports whether err is a death by SIGTERM.
func isTerminated(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// kill9 is a crash: SIGKILL, then wait for the process to be gone.
func (d *daemon) kill9() {
	d.t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		d.t.Fatalf("kill -9 %s: %v", d.name, err)
	}
	select {
	case <-d.done:
	case <-time.After(daemonWait):
		d.t.Fatalf("%s survived SIGKILL for %v", d.name, daemonWait)
	}
}

// mailDaemons is a running smtpd and deliver --queue on one env.
type mailDaemons struct {
	e                             *env
	MX, Submission, Submissions   string // 127.0.0.1:port
	CA                            string // the certificate clients trust
	smtpd, deliver                *daemon
	domains                       []string
	extraConfig                   string
	notifyName                    string // abstract sd_notify socket of deliver
	tlsCert, tlsKey, smtpdUserKey string
}

// daemonConfig is the configuration the harness adds to newEnv's: TLS, and
// when the tests run as root an [smtpd] user that exists (nobody, the
// owner ShareMailRoot gave the mail root, so smtpd and deliver share the
// spool's group).
func (m *mailDaemons) writeConfig() {
	m.e.t.Helper()
	m.e.writeConfig(m.domains, fmt.Sprintf("tls_cert = %s\ntls_key = %s\n%s\n%s", m.tlsCert, m.tlsKey, m.smtpdUserKey, m.extraConfig))
	// deliver --queue reads its configuration and tables after dropping
	// to the mail root's owner.
	for _, p := range []string{m.e.Config, m.e.Passwd, m.e.Aliases} {
		if _, err := os.Stat(p); err == nil {
			chmod(m.e.t, p, 0o644)
		}
	}
}

// newMailDaemons prepares (without starting) smtpd and deliver --queue for
// e: a certificate for localhost and 127.0.0.1, three free ports, and
// mailroom.conf with extraConfig appended (keys of the main section first,
// then any [section]s, e.g. "[smtpd]\nmax_message_size = 1k\n").
func newMailDaemons(t *testing.T, e *env, domains []string, extraConfig string) *mailDaemons {
	t.Helper()
	m := &mailDaemons{
		e:           e,
		MX:          freeAddr(t),
		Submission:  freeAddr(t),
		Submissions: freeAddr(t),
		CA:          filepath.Join(e.Dir, "cert.pem"),
		domains:     domains,
		extraConfig: extraConfig,
		tlsCert:     filepath.Join(e.Dir, "cert.pem"),
		tlsKey:      filepath.Join(e.Dir, "key.pem"),
	}
	if err := tlsconf.WriteSelfSigned(m.tlsCert, m.tlsKey, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	chmod(t, m.tlsCert, 0o644)
	if os.Geteuid() == 0 {
		// A [smtpd] section must come after the main keys; extraConfig
		// may open its own [smtpd] section, which may repeat no key.
		m.smtpdUserKey = "[smtpd]\nuser = nobody\n"
		if strings.Contains(extraConfig, "[smtpd]") {
			m.extraConfig = strings.Replace(extraConfig, "[smtpd]\n", "[smtpd]\nuser = nobody\n", 1)
			m.smtpdUserKey = ""
		}
	}
	m.writeConfig()
	return m
}

// startMailDaemons is newMailDaemons, then deliver --queue, then smtpd,
// each waited for.
func startMailDaemons(t *testing.T, e *env, extraConfig string) *mailDaemons {
	t.Helper()
	m := newMailDaemons(t, e, []string{"example.org"}, extraConfig)
	m.startDeliver()
	m.startSmtpd()
	return m
}

// startDeliver starts deliver --queue and waits for its READY=1: it holds
// the spool lock, has set the spool up and rescanned the queue.
func (m *mailDaemons) startDeliver() {
	t := m.e.t
	t.Helper()
	var buf [8]byte
	if _, err := rand.Read(buf[:]); err != nil {
		t.Fatal(err)
	}
	m.notifyName = "@mailroom-e2e-" + hex.EncodeToString(buf[:])
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: m.notifyName, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	m.deliver = startDaemon(t, "deliver --queue", m.e.bin("deliver"), []string{"NOTIFY_SOCKET=" + m.notifyName},
		"-c", m.e.Config, "--queue")
	deadline := time.Now().Add(daemonWait)
	msg := make([]byte, 512)
	for {
		if err := notify.SetReadDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		n, err := notify.Read(msg)
		if err != nil {
			t.Fatalf("deliver --queue not ready within %v: %v\n%s", daemonWait, err, m.deliver.log)
		}
		if strings.Contains(string(msg[:n]), "READY=1") {
			return
		}
	}
}

// startSmtpd starts smtpd on the three ports and waits until each accepts
// a connection. The spool must exist (startDeliver makes it).
func (m *mailDaemons) startSmtpd() {
	t := m.e.t
	t.Helper()
	m.smtpd = startDaemon(t, "smtpd", m.e.bin("smtpd"), nil, "--config", m.e.Config,
		"--listen", "smtp="+m.MX, "--listen", "submission="+m.Submission, "--listen", "submissions="+m.Submissions)
	for _, addr := range []string{m.MX, m.Submission, m.Submissions} {
		m.waitListening(m.smtpd, addr)
	}
}

// waitListening polls addr until it accepts a connection, failing early if
// d has exited.
func (m *mailDaemons) waitListening(d *daemon, addr string) {
	t := m.e.t
	t.Helper()
	up := testutil.WaitFor(daemonWait, func() bool {
		if d.exited() {
			return true
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if d.exited() {
		t.Fatalf("%s exited before listening on %s: %v\n%s", d.name, addr, d.err, d.log)
	}
	if !up {
		t.Fatalf("%s not listening on %s within %v\n%s", d.name, addr, daemonWait, d.log)
	}
}

// waitNewMail waits until the user's new/ holds n messages and returns
// them, ordered by name. More than n fails the test.
func (m *mailDaemons) waitNewMail(address string, n int) []string {
	t := m.e.t
	t.Helper()
	dir := filepath.Join(m.e.maildir(address), "new")
	count := func() int {
		ents, _ := os.ReadDir(dir)
		return len(ents)
	}
	if !testutil.WaitFor(daemonWait, func() bool { return count() >= n }) {
		t.Fatalf("%s: %d messages in new/ after %v, want %d\ndeliver log:\n%s", address, count(), daemonWait, n, m.deliver.log)
	}
	got := m.e.newMail(address)
	if len(got) != n {
		t.Fatalf("%s: %d messages in new/, want %d", address, len(got), n)
	}
	return got
}

// waitQueueEmpty waits until deliver has removed every message from the
// spool's queue/.
func (m *mailDaemons) waitQueueEmpty() {
	t := m.e.t
	t.Helper()
	if !testutil.WaitFor(daemonWait, func() bool { return len(m.queueEntries()) == 0 }) {
		t.Fatalf("queue/ still holds %v after %v\ndeliver log:\n%s", m.queueEntries(), daemonWait, m.deliver.log)
	}
}

// queueEntries lists the spool's queue/.
func (m *mailDaemons) queueEntries() []string {
	ents, err := os.ReadDir(filepath.Join(m.e.Spool, "queue"))
	if err != nil && !os.IsNotExist(err) {
		m.e.t.Fatal(err)
	}
	names := make([]string, 0, len(ents))
	for _, de := range ents {
		names = append(names, de.Name())
	}
	return names
}

// addedHeaders are the fields mailroom may put above a message it
// received: smtpd's Received, deliver's Return-Path and Delivered-To.
var addedHeaders = map[string]bool{"received": true, "return-path": true, "delivered-to": true}

// wantDelivered checks a Maildir file against the message as sent: the
// file is the sent message byte for byte, preceded only by added trace
// fields. It returns those
// fields. The queue daemon stores a message as it came over the wire,
// CRLF line ends included, so the comparison is exact.
func wantDelivered(t *testing.T, file, sent string) string {
	t.Helper()
	want := sent
	if !strings.HasSuffix(file, want) {
		t.Errorf("delivered message does not end with the message as sent\n got: %q\nwant suffix: %q", clip(file), clip(want))
		return ""
	}
	added := strings.TrimSuffix(file, want)
	for _, line := range strings.SplitAfter(added, "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' { // continuation line
			continue
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || !addedHeaders[strings.ToLower(name)] {
			t.Errorf("unexpected line added above the message: %q\nall added: %q", line, added)
		}
	}
	if !strings.Contains(added, "by mx.test (mailroom)") {
		t.Errorf("no Received field added by smtpd in %q", added)
	}
	return added
}

// clip shortens a message for an error report.
func clip(s string) string {
	const max = 2000
	if len(s) <= max {
		return s
	}
	return s[:max/2] + fmt.Sprintf("...(%d bytes)...", len(s)-max) + s[len(s)-max/2:]
}
