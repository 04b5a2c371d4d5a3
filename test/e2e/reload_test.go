package e2e

// Reload and shutdown with transactions in flight (issue 6), with the
// built daemons: SIGHUP reads mailroom.conf again and applies it to new
// sessions only, a bad file is refused with the old one kept, and
// SIGTERM lets what is in flight finish before a clean exit. Waits are
// on log lines, protocol replies and files, each bounded by daemonWait.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
)

// rawSMTP is a line-level SMTP client: the tests stop it mid-DATA.
type rawSMTP struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func dialSMTP(t *testing.T, addr string) *rawSMTP {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, daemonWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(daemonWait)); err != nil {
		t.Fatal(err)
	}
	s := &rawSMTP{t: t, c: c, rd: bufio.NewReader(c)}
	s.expect("220")
	return s
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (s *rawSMTP) reply() string {
	s.t.Helper()
	for range 100 {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			s.t.Fatalf("smtp read: %v (after %q)", err, line)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
	s.t.Fatal("smtp: endless reply")
	return ""
}

func (s *rawSMTP) expect(code string) string {
	s.t.Helper()
	r := s.reply()
	if !strings.HasPrefix(r, code) {
		s.t.Fatalf("smtp: got %q, want %s", r, code)
	}
	return r
}

func (s *rawSMTP) send(text string) {
	s.t.Helper()
	if _, err := io.WriteString(s.c, text); err != nil {
		s.t.Fatalf("smtp write: %v", err)
	}
}

// step sends a command and expects a reply code.
func (s *rawSMTP) step(cmd, code string) string {
	s.t.Helper()
	s.send(cmd + "\r\n")
	return s.expect(code)
}

// startData opens a transaction from sender to rcpt and sends the
// message's first part after DATA's 354.
func (s *rawSMTP) startData(from, rcpt, first string) {
	s.t.Helper()
	s.step("EHLO reload.e2e.test", "250")
	s.step("MAIL FROM:<"+from+">", "250")
	s.step("RCPT TO:<"+rcpt+">", "250")
	s.step("DATA", "354")
	s.send(first)
}

// waitLog waits until d's log has a line holding every part, after the
// first skip bytes.
func waitLog(t *testing.T, d *daemon, skip int, parts ...string) {
	t.Helper()
	found := func() bool {
		log := d.log.String()
		if skip > len(log) {
			return false
		}
		for _, line := range strings.Split(log[skip:], "\n") {
			if containsAll(line, parts) {
				return true
			}
		}
		return false
	}
	if !testutil.WaitFor(daemonWait, found) {
		t.Fatalf("%s: no log line with %q within %v\n%s", d.name, parts, daemonWait, d.log)
	}
}

// hup sends SIGHUP to d and waits for a log line of the reload's outcome
// holding want.
func hup(t *testing.T, d *daemon, want ...string) {
	t.Helper()
	mark := len(d.log.String())
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, mark, want...)
}

// term sends SIGTERM to d and waits (bounded) for its exit, which must be
// a clean one (status 0) within bound.
func term(t *testing.T, d *daemon, bound time.Duration) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, d, bound)
}

func waitExit(t *testing.T, d *daemon, bound time.Duration) {
	t.Helper()
	select {
	case <-d.done:
		if d.err != nil {
			t.Fatalf("%s exited with %v after SIGTERM\n%s", d.name, d.err, d.log)
		}
	case <-time.After(bound):
		t.Fatalf("%s still running %v after SIGTERM\n%s", d.name, bound, d.log)
	}
}

// refused reports whether addr refuses connections now.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err != nil
}

// readableByDaemons makes the files a daemon reads again on SIGHUP, after
// dropping root, readable to it (docs/security.md gives the key to the
// daemons' group; here they run as nobody).
func readableByDaemons(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		chmod(t, p, 0o644)
	}
}

// servedCertificate returns the DER of the certificate the implicit-TLS
// service at addr presents.
func servedCertificate(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: daemonWait}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// certificateFile returns the DER of the first certificate in a PEM file.
func certificateFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		t.Fatal(err)
	}
	return b.Bytes
}

// bigBody is a body of about n bytes in 80-byte lines.
func bigBody(n int) string {
	return strings.Repeat(strings.Repeat("r", 78)+"\r\n", n/80+1)
}

// TestReloadSmtpd: SIGHUP while a client is in the middle of DATA. The
// client's transaction completes under the settings it started with (its
// message is bigger than the new limit) and is delivered; the next
// connection gets the new settings: a new user in passwd, a smaller
// max_message_size, a new certificate. A broken mailroom.conf is then
// refused: the error is logged and the last good configuration stays in
// force, still serving.
func TestReloadSmtpd(t *testing.T) {
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "pw")
	m := newMailDaemons(t, e, []string{"example.org"}, "[smtpd]\nmax_message_size = 1M\n")
	readableByDaemons(t, m.tlsKey)
	m.startDeliver()
	m.startSmtpd()
	oldCert := servedCertificate(t, m.Submissions)

	inFlight := dialSMTP(t, m.MX)
	first := message("carol@example.net", "alice@example.org", "in flight at reload", bigBody(8<<10))
	inFlight.startData("carol@example.net", "alice@example.org", first[:len(first)/2])

	// The new configuration: a user more, a smaller limit, a new
	// certificate at new paths.
	addFastUser(t, e, "dave@example.org", "pw")
	m.tlsCert, m.tlsKey = filepath.Join(e.Dir, "cert2.pem"), filepath.Join(e.Dir, "key2.pem")
	if err := tlsconf.WriteSelfSigned(m.tlsCert, m.tlsKey, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	readableByDaemons(t, m.tlsCert, m.tlsKey)
	m.extraConfig = "[smtpd]\nmax_message_size = 2k\n"
	if os.Geteuid() == 0 {
		m.extraConfig = "[smtpd]\nuser = nobody\nmax_message_size = 2k\n"
	}
	m.writeConfig()
	hup(t, m.smtpd, "level=INFO", "msg=reload", "what=config", "file="+e.Config)
	// deliver learns of the new user the same way.
	hup(t, m.deliver, "level=INFO", "msg=reload", "what=config", "file="+e.Config)

	// The transaction in flight finishes under the old limit.
	inFlight.send(first[len(first)/2:] + ".\r\n")
	inFlight.expect("250")
	inFlight.step("QUIT", "221")
	got := m.waitNewMail("alice@example.org", 1)
	wantDelivered(t, got[0], first)

	// New connections: the new user, the new limit, the new certificate.
	checkNewConfig := func(when string) {
		t.Helper()
		c := dialSMTP(t, m.MX)
		c.step("EHLO reload.e2e.test", "250")
		c.step("MAIL FROM:<carol@example.net>", "250")
		c.step("RCPT TO:<dave@example.org>", "250")
		c.step("DATA", "354")
		c.send(message("carol@example.net", "dave@example.org", "too big now", bigBody(8<<10)) + ".\r\n")
		if r := c.reply(); !strings.HasPrefix(r, "552") {
			t.Errorf("%s: 8k message after the limit went to 2k: %q, want 552", when, r)
		}
		if !bytes.Equal(servedCertificate(t, m.Submissions), certificateFile(t, m.tlsCert)) {
			t.Errorf("%s: submissions does not serve the new certificate", when)
		}
	}
	checkNewConfig("after the reload")
	if bytes.Equal(oldCert, certificateFile(t, m.tlsCert)) {
		t.Fatal("the new certificate is the old one")
	}
	small := message("carol@example.net", "dave@example.org", "small enough", "Short.\n")
	if err := sendPlain(m.MX, "carol@example.net", "dave@example.org", small); err != nil {
		t.Fatalf("to the new user: %v", err)
	}
	wantDelivered(t, m.waitNewMail("dave@example.org", 1)[0], small)

	// A broken file is refused; the configuration in force stays.
	if err := os.WriteFile(e.Config, []byte("hostname = broken.example\nthis is not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup(t, m.smtpd, "level=ERROR", "msg=reload", "what=config", "this is not a key", "keeping the old configuration")
	hup(t, m.deliver, "level=ERROR", "msg=reload", "what=config", "this is not a key", "keeping the old configuration")
	checkNewConfig("after a refused reload")
	// A file naming a listen address and a spool of its own: those keys
	// need a restart and are named; the rest applies.
	m.writeConfig()
	conf, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	conf = regexp.MustCompile(`(?m)^spool_dir = .*$`).ReplaceAll(conf, []byte("spool_dir = /nonexistent/spool"))
	if err := os.WriteFile(e.Config, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*daemon{m.smtpd, m.deliver} {
		hup(t, d, "level=INFO", "msg=reload", "what=config")
		waitLog(t, d, 0, "level=WARN", "msg=reload", "key=spool_dir", `reason="needs a restart"`)
	}
	if err := sendPlain(m.MX, "carol@example.net", "alice@example.org", small); err != nil {
		t.Fatalf("after a reload that changed spool_dir: %v", err)
	}
	m.waitNewMail("alice@example.org", 2)
}

// TestShutdownSmtpdMidData: SIGTERM while a client is in the middle of
// DATA. smtpd stops accepting at once, the transaction completes with 250,
// smtpd exits 0 within its bound, and the message is delivered.
func TestShutdownSmtpdMidData(t *testing.T) {
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "pw")
	m := startMailDaemons(t, e, "")

	c := dialSMTP(t, m.MX)
	msg := message("carol@example.net", "alice@example.org", "in flight at stop", bigBody(64<<10))
	c.startData("carol@example.net", "alice@example.org", msg[:len(msg)/2])
	mark := len(m.smtpd.log.String())
	if err := m.smtpd.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, m.smtpd, mark, "msg=stop")
	for _, addr := range []string{m.MX, m.Submission, m.Submissions} {
		if !refused(addr) {
			t.Errorf("%s still accepts connections after SIGTERM", addr)
		}
	}
	if m.smtpd.exited() {
		t.Fatal("smtpd exited with a transaction in flight")
	}
	c.send(msg[len(msg)/2:] + ".\r\n")
	c.expect("250")
	// 30 s is smtpd's bound; the exit comes as soon as the client is done.
	waitExit(t, m.smtpd, 30*time.Second+daemonWait)
	wantDelivered(t, m.waitNewMail("alice@example.org", 1)[0], msg)
}

// startPop3dDaemon starts pop3d on a loopback port (plaintext logins are
// allowed there by plaintext_auth_on_loopback) and waits until it
// accepts connections.
func startPop3dDaemon(t *testing.T, e *env, extra string) (*daemon, string) {
	t.Helper()
	e.writeConfig([]string{"example.org"}, "plaintext_auth_on_loopback = yes\n"+extra)
	readableByDaemons(t, e.Config, e.Passwd)
	addr := freeAddr(t)
	d := startDaemon(t, "pop3d", e.bin("pop3d"), nil, "--config", e.Config, "--listen", addr)
	if !testutil.WaitFor(daemonWait, func() bool { return d.exited() || !refused(addr) }) || d.exited() {
		t.Fatalf("pop3d not listening on %s: %v\n%s", addr, d.err, d.log)
	}
	return d, addr
}

// rawLines is a line client for POP3 and IMAP.
type rawLines struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func dialLines(t *testing.T, addr string) *rawLines {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, daemonWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(daemonWait)); err != nil {
		t.Fatal(err)
	}
	return &rawLines{t: t, c: c, rd: bufio.NewReader(c)}
}

func (l *rawLines) line() string {
	l.t.Helper()
	s, err := l.rd.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read: %v (after %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

func (l *rawLines) send(s string) {
	l.t.Helper()
	if _, err := io.WriteString(l.c, s); err != nil {
		l.t.Fatalf("write: %v", err)
	}
}

// until reads lines until one starts with prefix and returns it.
func (l *rawLines) until(prefix string) string {
	l.t.Helper()
	for range 10000 {
		if s := l.line(); strings.HasPrefix(s, prefix) {
			return s
		}
	}
	l.t.Fatalf("no line starting %q", prefix)
	return ""
}

func (l *rawLines) pop(cmd, want string) string {
	l.t.Helper()
	l.send(cmd + "\r\n")
	r := l.line()
	if !strings.HasPrefix(r, want) {
		l.t.Fatalf("%s: %q, want %s", cmd, r, want)
	}
	return r
}

// mailFiles lists the files in a Maildir's new/ and cur/.
func mailFiles(t *testing.T, e *env, address string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(e.maildir(address), sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range ents {
			out = append(out, sub+"/"+de.Name())
		}
	}
	return out
}

// TestShutdownPop3dDelePending: SIGTERM while a session has DELE pending
// and is waiting for its next command. As Dovecot does, pop3d tells it
// "-ERR [SYS/TEMP]" and closes it without entering the UPDATE state
// (RFC 1939 §6: only QUIT commits deletions), so nothing is deleted; it
// exits 0. A session that QUITs before the stop has its deletions
// committed.
func TestShutdownPop3dDelePending(t *testing.T) {
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "alice pw")
	for i := range 3 {
		msg := message("x@example.net", "alice@example.org", fmt.Sprintf("pop %d", i), "Body.\n")
		e.run(msg, "deliver", "-f", "x@example.net", "alice@example.org").wantCode(t, 0)
	}
	d, addr := startPop3dDaemon(t, e, "")
	login := func() *rawLines {
		c := dialLines(t, addr)
		if g := c.line(); !strings.HasPrefix(g, "+OK") {
			t.Fatalf("greeting %q", g)
		}
		c.pop("USER alice@example.org", "+OK")
		c.pop("PASS alice pw", "+OK")
		return c
	}
	committed := login()
	committed.pop("DELE 1", "+OK")
	committed.pop("QUIT", "+OK")
	if !testutil.WaitFor(daemonWait, func() bool { return len(mailFiles(t, e, "alice@example.org")) == 2 }) {
		t.Fatalf("QUIT did not commit DELE: %v", mailFiles(t, e, "alice@example.org"))
	}

	pending := login()
	pending.pop("STAT", "+OK 2 ")
	pending.pop("DELE 1", "+OK")
	pending.pop("DELE 2", "+OK")
	before := mailFiles(t, e, "alice@example.org")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := pending.line(); !strings.HasPrefix(r, "-ERR [SYS/TEMP]") {
		t.Errorf("session at SIGTERM got %q, want -ERR [SYS/TEMP]", r)
	}
	if rest, err := io.ReadAll(pending.rd); len(rest) != 0 || err != nil {
		t.Errorf("after the shutdown reply: %q, %v; want the end of the connection", rest, err)
	}
	waitExit(t, d, ShutdownBound)
	if after := mailFiles(t, e, "alice@example.org"); len(after) != len(before) {
		t.Errorf("a session cut by SIGTERM deleted messages: %v, was %v", after, before)
	}
}

// ShutdownBound is how long a stop may take here: the daemons' 30 s
// bound and the wait of the harness.
const ShutdownBound = 30*time.Second + daemonWait

// TestShutdownImapdIdle: on SIGTERM an IDLE session is told "* BYE" and
// imapd exits 0.
func TestShutdownImapdIdle(t *testing.T) {
	_, s := imapSetup(t)
	idle := dialIMAPS(t, "idle", s.tls, s.cert)
	idle.send("i1 IDLE\r\n")
	if r := idle.response(); !strings.HasPrefix(r, "+") {
		t.Fatalf("IDLE: %q", r)
	}
	if err := s.d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := idle.response(); !strings.HasPrefix(r, "* BYE") {
		t.Errorf("IDLE session at SIGTERM got %q, want * BYE", r)
	}
	waitExit(t, s.d, ShutdownBound)
}

// TestShutdownImapdAppendInFlight: on SIGTERM an APPEND whose literal is
// still arriving completes and is stored before imapd exits 0.
func TestShutdownImapdAppendInFlight(t *testing.T) {
	e, s := imapSetup(t)
	app := dialIMAPS(t, "app", s.tls, s.cert)
	before := len(mailFiles(t, e, imapUser))
	body := message("x@example.net", imapUser, "appended during the stop", bigBody(32<<10))
	app.send(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", len(body)))
	if r := app.response(); !strings.HasPrefix(r, "+") {
		t.Fatalf("APPEND continuation: %q", r)
	}
	app.send(body[:len(body)/2])
	mark := len(s.d.log.String())
	if err := s.d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, s.d, mark, "msg=stop")
	app.send(body[len(body)/2:] + "\r\n")
	var tagged string
	for range 100 {
		if tagged = app.response(); strings.HasPrefix(tagged, "a1 ") {
			break
		}
	}
	if !strings.HasPrefix(tagged, "a1 OK") {
		t.Fatalf("APPEND in flight at SIGTERM: %q, want a1 OK", tagged)
	}
	waitExit(t, s.d, ShutdownBound)
	if after := len(mailFiles(t, e, imapUser)); after != before+1 {
		t.Errorf("APPEND acknowledged but %d messages, want %d", after, before+1)
	}
}

// TestShutdownDeliverInFlight: SIGTERM to deliver --queue while it is
// delivering a stream of messages smtpd acknowledged; deliver exits 0,
// and after a restart every acknowledged message is delivered (at least
// once), none lost.
func TestShutdownDeliverInFlight(t *testing.T) {
	const n = 60
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "pw")
	m := startMailDaemons(t, e, "")
	subjects := map[string]bool{}
	c := dialSMTP(t, m.MX)
	c.step("EHLO stream.e2e.test", "250")
	for i := range n {
		subject := fmt.Sprintf("stream %03d", i)
		c.step("MAIL FROM:<carol@example.net>", "250")
		c.step("RCPT TO:<alice@example.org>", "250")
		c.step("DATA", "354")
		c.send(message("carol@example.net", "alice@example.org", subject, bigBody(4<<10)) + ".\r\n")
		c.expect("250")
		subjects[subject] = true
		if i == n/3 {
			// Deliveries are under way: stop deliver now, while the
			// rest keeps arriving in the spool.
			waitLog(t, m.deliver, 0, "msg=delivery", "status=sent")
			term(t, m.deliver, ShutdownBound)
		}
	}
	c.step("QUIT", "221")
	waitLog(t, m.deliver, 0, "msg=stop")
	m.startDeliver()
	m.waitQueueEmpty()
	got := map[string]int{}
	subjectRe := regexp.MustCompile(`(?m)^Subject: (.*)\r?$`)
	for _, data := range e.newMail("alice@example.org") {
		if sm := subjectRe.FindStringSubmatch(data); sm != nil {
			got[strings.TrimSpace(sm[1])]++
		}
	}
	for s := range subjects {
		if got[s] == 0 {
			t.Errorf("acknowledged %q was never delivered", s)
		}
	}
	dups := 0
	for _, k := range got {
		dups += k - 1
	}
	t.Logf("%d messages acknowledged, %d distinct delivered, %d duplicates", n, len(got), dups)
}

// TestReloadPop3d: SIGHUP gives new sessions the new hostname (in the
// greeting) and a user added to passwd, while a session in flight keeps
// its own; a broken file is refused and pop3d goes on serving with the
// configuration in force.
func TestReloadPop3d(t *testing.T) {
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "alice pw")
	d, addr := startPop3dDaemon(t, e, "")
	greet := func() (*rawLines, string) {
		c := dialLines(t, addr)
		return c, c.line()
	}
	old, g := greet()
	if !strings.Contains(g, "+OK "+e.Hostname+" ") {
		t.Fatalf("greeting %q, want hostname %s", g, e.Hostname)
	}
	old.pop("USER alice@example.org", "+OK")
	old.pop("PASS alice pw", "+OK")

	addFastUser(t, e, "bob@example.org", "bob pw")
	e.Hostname = "pop.reloaded.test"
	e.writeConfig([]string{"example.org"}, "plaintext_auth_on_loopback = yes\n")
	readableByDaemons(t, e.Config, e.Passwd)
	hup(t, d, "level=INFO", "msg=reload", "what=config", "file="+e.Config)

	c, g := greet()
	if !strings.Contains(g, "+OK pop.reloaded.test ") {
		t.Errorf("greeting after the reload %q, want the new hostname", g)
	}
	c.pop("USER bob@example.org", "+OK")
	c.pop("PASS bob pw", "+OK")
	c.pop("QUIT", "+OK")
	old.pop("STAT", "+OK")
	old.pop("QUIT", "+OK")

	if err := os.WriteFile(e.Config, []byte("[pop3d]\nuidl_format = neither\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hup(t, d, "level=ERROR", "msg=reload", "what=config", "uidl_format", "keeping the old configuration")
	c, g = greet()
	if !strings.Contains(g, "+OK pop.reloaded.test ") {
		t.Errorf("greeting after a refused reload %q, want the configuration in force", g)
	}
	c.pop("USER bob@example.org", "+OK")
	c.pop("PASS bob pw", "+OK")
	c.pop("QUIT", "+OK")
	term(t, d, ShutdownBound)
}
