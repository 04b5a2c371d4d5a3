package e2e

// Debian's Postfix on loopback hands mail to deliver through
// mailbox_command, the way an admin plugs an MDA into Postfix's local(8).
//
// What the set-up needs, learnt by trying it as root:
//   - A private instance: `postfix -c DIR start` with its own main.cf,
//     master.cf, queue_directory and data_directory. Run by root, Postfix
//     starts it without DIR being listed in /etc/postfix/main.cf's
//     alternate_config_directories (that list guards the set-gid programs,
//     postdrop and postqueue, which this test does not use: mail arrives
//     over SMTP), so the system's configuration is left untouched.
//   - Errors of `postfix check/start` go to the log, not to stderr when it
//     is not a terminal: maillog_file (within maillog_file_prefixes) and the
//     postlog service put them in a file the test prints on failure.
//   - local(8) runs mailbox_command with the recipient's uid, so the
//     recipient must be a system user: nobody (uid 65534). Every file
//     deliver reads must be readable by it and the mail root writable.
//   - local(8) gives deliver a message starting with "From sender date",
//     then Return-Path, X-Original-To and Delivered-To, and sets SENDER and
//     RECIPIENT (with the +extension): deliver takes everything from there.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
)

// requireTool applies the interop rule to a Debian program.
func requireTool(t *testing.T, path string) string {
	t.Helper()
	return testutil.RequireTool(t, path)
}

// requireRoot applies the interop rule to running as root, which starting
// Postfix needs.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(testutil.RequireInteropEnv) == "1" {
		t.Fatalf("starting Postfix needs root (%s=1)", testutil.RequireInteropEnv)
	}
	t.Skipf("starting Postfix needs root; set %s=1 to make this a failure", testutil.RequireInteropEnv)
}

// postfixWait bounds every wait on the Postfix instance.
const postfixWait = 60 * time.Second

// postfixInstance is a private Postfix under a test's directory.
type postfixInstance struct {
	t       *testing.T
	postfix string // the postfix(1) program
	dir     string // config, queue, data, log
	conf    string
	addr    string // smtpd's 127.0.0.1:port
}

func TestPostfixMailboxCommand(t *testing.T) {
	requireRoot(t)
	postfix := requireTool(t, "/usr/sbin/postfix")
	nobody := lookupUser(t, "nobody")
	if _, err := user.Lookup("postfix"); err != nil {
		t.Fatalf("postfix is installed but its user is missing: %v", err)
	}

	e := newEnv(t, "example.test")
	if err := os.WriteFile(e.Passwd, []byte("nobody@example.test:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// deliver runs as nobody: it must reach its config, tables and
	// program, and own the mail root.
	deliverBin := filepath.Join(e.Dir, "bin", "deliver")
	copyExecutable(t, e.bin("deliver"), deliverBin)
	for _, p := range []string{filepath.Dir(e.Dir), e.Dir, filepath.Dir(deliverBin)} {
		chmod(t, p, 0o755)
	}
	for _, p := range []string{e.Config, e.Aliases} {
		chmod(t, p, 0o644)
	}
	if err := os.Chown(e.MailRoot, nobody, nobody); err != nil {
		t.Fatal(err)
	}

	pf := startPostfix(t, postfix, filepath.Join(e.Dir, "postfix"),
		fmt.Sprintf("mailbox_command = %s -c %s\n", deliverBin, e.Config))

	body := "From: Alice <alice@sender.test>\r\nTo: nobody+e2e@example.test\r\n" +
		"Subject: via postfix\r\n\r\nHello through Postfix.\r\n\xc3\xa9t\xc3\xa9 8-bit line\r\n"
	if err := smtp.SendMail(pf.addr, nil, "alice@sender.test", []string{"nobody+e2e@example.test"}, []byte(body)); err != nil {
		t.Fatalf("SMTP to Postfix: %v\n%s", err, pf.log())
	}
	maildir := e.maildir("nobody@example.test")
	msgs := pf.waitFiles(filepath.Join(maildir, "new"), 1)
	data, err := os.ReadFile(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	msg := string(data)
	t.Logf("delivered %s:\n%s", msgs[0], msg)
	if !strings.HasPrefix(msg, "Return-Path: <alice@sender.test>\n") {
		t.Errorf("message does not open with the Return-Path (From_ line kept?):\n%s", msg)
	}
	for field, want := range map[string]int{
		"Return-Path: <alice@sender.test>\n":     1,
		"Delivered-To: nobody+e2e@example.test":  1,
		"X-Original-To: nobody+e2e@example.test": 1,
		"Subject: via postfix":                   1,
		"\nFrom ":                                0,
	} {
		if got := strings.Count(msg, field); got != want {
			t.Errorf("%q appears %d times, want %d", field, got, want)
		}
	}
	if !strings.HasSuffix(msg, "\n\nHello through Postfix.\n\xc3\xa9t\xc3\xa9 8-bit line\n") {
		t.Errorf("body not delivered as sent:\n%q", msg)
	}
	if tmp, _ := os.ReadDir(filepath.Join(maildir, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ not cleaned: %v", tmp)
	}

	// A system user without a mailroom account: deliver exits 67 and
	// Postfix bounces with deliver's own RFC 3463 status and text (it
	// takes the leading "5.1.1" as the DSN code and shows the rest).
	if _, err := user.Lookup("daemon"); err != nil {
		t.Logf("no system user daemon (%v): unknown-user case not run", err)
		return
	}
	if err := smtp.SendMail(pf.addr, nil, "alice@sender.test", []string{"daemon@example.test"}, []byte(body)); err != nil {
		t.Fatalf("SMTP to Postfix: %v\n%s", err, pf.log())
	}
	pf.waitLog("to=<daemon@example.test>", "dsn=5.1.1", "status=bounced (<daemon@example.test>: user unknown")
}

// startPostfix writes and starts a private instance whose main.cf ends
// with extraMain, and stops it when the test ends.
func startPostfix(t *testing.T, postfix, dir, extraMain string) *postfixInstance {
	t.Helper()
	pf := &postfixInstance{t: t, postfix: postfix, dir: dir, conf: filepath.Join(dir, "conf"), addr: freeAddr(t)}
	for _, d := range []string{pf.conf, filepath.Join(dir, "queue"), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	chmod(t, dir, 0o755)
	pfUser := lookupUser(t, "postfix")
	if err := os.Chown(filepath.Join(dir, "data"), pfUser, -1); err != nil {
		t.Fatal(err)
	}
	mainCf := fmt.Sprintf(`# private instance of the mailroom e2e tests
compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
syslog_name = postfix-mailroom-e2e
myhostname = mx.example.test
mydomain = example.test
myorigin = $myhostname
mydestination = example.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
recipient_delimiter = +
# Nothing leaves this machine: bounces to the outside fail at once.
default_transport = error:no mail leaves the e2e instance
relay_transport = error:no mail leaves the e2e instance
%s`, dir, extraMain)
	// Debian's master.cf minus chroot (the queue is a temp dir) and minus
	// what the test does not use; smtpd on our port.
	masterCf := pf.addr + " inet n - n - - smtpd\n" + `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
	writeFile(t, filepath.Join(pf.conf, "main.cf"), mainCf)
	writeFile(t, filepath.Join(pf.conf, "master.cf"), masterCf)
	if out, err := pf.command("check"); err != nil {
		t.Fatalf("postfix check: %v\n%s\n%s", err, out, pf.log())
	}
	if out, err := pf.command("start"); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, pf.log())
	}
	t.Cleanup(pf.stop)
	pf.waitListening()
	return pf
}

func (pf *postfixInstance) command(verb string) (string, error) {
	cmd := exec.Command(pf.postfix, "-c", pf.conf, verb)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stop stops the instance and waits (bounded) for its master to exit, so
// the temp dir can be removed.
func (pf *postfixInstance) stop() {
	pid := pf.masterPID()
	if out, err := pf.command("stop"); err != nil {
		pf.t.Errorf("postfix stop: %v\n%s", err, out)
	}
	if pid <= 0 {
		return
	}
	deadline := time.Now().Add(postfixWait)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	pf.t.Errorf("postfix master %d still running %v after stop", pid, postfixWait)
}

func (pf *postfixInstance) masterPID() int {
	b, err := os.ReadFile(filepath.Join(pf.dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

func (pf *postfixInstance) log() string {
	b, err := os.ReadFile(filepath.Join(pf.dir, "maillog"))
	if err != nil {
		return fmt.Sprintf("(no Postfix log: %v)", err)
	}
	return "Postfix log:\n" + string(b)
}

// waitListening polls until smtpd accepts connections.
func (pf *postfixInstance) waitListening() {
	pf.t.Helper()
	deadline := time.Now().Add(postfixWait)
	for {
		c, err := net.DialTimeout("tcp", pf.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			pf.t.Fatalf("Postfix smtpd not listening on %s after %v: %v\n%s", pf.addr, postfixWait, err, pf.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFiles polls dir until it holds n files, and returns their paths.
func (pf *postfixInstance) waitFiles(dir string, n int) []string {
	pf.t.Helper()
	deadline := time.Now().Add(postfixWait)
	for {
		ents, _ := os.ReadDir(dir)
		if len(ents) >= n {
			paths := make([]string, 0, len(ents))
			for _, de := range ents {
				paths = append(paths, filepath.Join(dir, de.Name()))
			}
			if len(paths) != n {
				pf.t.Fatalf("%s holds %d files, want %d", dir, len(paths), n)
			}
			return paths
		}
		if time.Now().After(deadline) {
			pf.t.Fatalf("%s: %d files after %v, want %d\n%s", dir, len(ents), postfixWait, n, pf.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog polls the Postfix log for a line holding every one of parts.
func (pf *postfixInstance) waitLog(parts ...string) {
	pf.t.Helper()
	deadline := time.Now().Add(postfixWait)
	for {
		for _, line := range strings.Split(pf.log(), "\n") {
			if containsAll(line, parts) {
				pf.t.Logf("Postfix: %s", line)
				return
			}
		}
		if time.Now().After(deadline) {
			pf.t.Fatalf("no Postfix log line with %q after %v\n%s", parts, postfixWait, pf.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func lookupUser(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("user %s: %v", name, err)
	}
	id, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatalf("user %s: uid %q: %v", name, u.Uid, err)
	}
	return id
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyExecutable copies a built program where another uid can run it (the
// build directory is private to root).
func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}
