package e2e

// pop3d as a separate process, driven by the POP3 clients Debian ships:
// python3's poplib, fetchmail, getmail6 and mpop, each over TLS with the
// test's self-signed certificate as the only trust anchor.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/account"
	"mailroom/internal/account/accounttest"
	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
)

// pop3Messages are delivered to the test user: dot lines, a long line,
// 8-bit text, CRLF and LF line ends.
var pop3Messages = []string{
	"From: a@example.net\nTo: alice@example.org\nSubject: one\n\nhello\n.\n..two dots\n",
	"From: b@example.net\r\nTo: alice@example.org\r\nSubject: two\r\n\r\n" + strings.Repeat("long ", 400) + "\r\n.end\r\n",
	"From: c@example.net\nTo: alice@example.org\nSubject: =?utf-8?q?caf=C3=A9?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9 \xe2\x82\xac\n",
}

// pop3Server is a running pop3d.
type pop3Server struct {
	plain, tls string // addresses
	cert       string // the CA file clients trust
	cmd        *exec.Cmd
	stderr     *bytes.Buffer
}

// startPop3d writes a certificate, configures TLS and starts pop3d on two
// fresh loopback ports; it is stopped with SIGTERM when the test ends.
func startPop3d(t *testing.T, e *env, extra string) *pop3Server {
	t.Helper()
	cert, key := filepath.Join(e.Dir, "cert.pem"), filepath.Join(e.Dir, "key.pem")
	if err := tlsconf.WriteSelfSigned(cert, key, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cert, 0o644); err != nil {
		t.Fatal(err)
	}
	e.writeConfig([]string{"example.org"}, fmt.Sprintf("tls_cert = %s\ntls_key = %s\n%s", cert, key, extra))
	s := &pop3Server{plain: freeAddr(t), tls: freeAddr(t), cert: cert, stderr: &bytes.Buffer{}}
	s.cmd = exec.Command(e.bin("pop3d"), "--config", e.Config, "--listen", s.plain, "--listen", "pop3s="+s.tls)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("pop3d exited with %v after SIGTERM\n%s", err, s.stderr)
			}
		case <-time.After(processTimeout):
			_ = s.cmd.Process.Kill()
			t.Errorf("pop3d did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("pop3d log:\n%s", s.stderr)
		}
	})
	up := testutil.WaitFor(30*time.Second, func() bool {
		c, err := net.Dial("tcp", s.tls)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if !up {
		t.Fatalf("pop3d is not listening on %s\n%s", s.tls, s.stderr)
	}
	return s
}

// pop3Setup makes alice with the messages and a running pop3d.
func pop3Setup(t *testing.T, extra string) (*env, *pop3Server, []string) {
	t.Helper()
	e := newEnv(t, "example.org")
	e.addUser("alice@example.org", "alice pw")
	cheapPassword(t, e, "alice@example.org", "alice pw")
	for _, m := range pop3Messages {
		e.run(m, "deliver", "-f", "x@example.net", "alice@example.org").wantCode(t, 0)
	}
	files := e.newMail("alice@example.org")
	return e, startPop3d(t, e, extra), files
}

// crlf is a message as POP3 carries it (without dot-stuffing): CRLF line
// ends.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// poplibScript downloads everything over POP3S and prints JSON: UIDL
// listing and each message's bytes (lines joined with CRLF, as poplib
// un-stuffs them). argv: host port cafile user password action.
const poplibScript = `
import json, poplib, ssl, sys
host, port, ca, user, pw, action = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
p = poplib.POP3_SSL(host, int(port), context=ctx, timeout=30)
p.user(user); p.pass_(pw)
out = {"uidl": [l.decode() for l in p.uidl()[1]], "msgs": []}
n = len(p.list()[1])
for i in range(1, n + 1):
    lines = p.retr(i)[1]
    out["msgs"].append((b"\r\n".join(lines) + b"\r\n").decode("latin-1"))
if action == "dele-drop":
    for i in range(1, n + 1): p.dele(i)
    p.sock.close()
elif action == "dele-quit":
    for i in range(1, n + 1): p.dele(i)
    p.quit()
else:
    p.quit()
print(json.dumps(out))
`

type poplibResult struct {
	UIDL []string `json:"uidl"`
	Msgs []string `json:"msgs"`
}

func runPoplib(t *testing.T, e *env, s *pop3Server, action string) poplibResult {
	t.Helper()
	python := requireTool(t, "/usr/bin/python3")
	host, port, _ := net.SplitHostPort(s.tls)
	r := e.runProgram("", python, "-c", poplibScript, host, port, s.cert, "alice@example.org", "alice pw", action)
	r.wantCode(t, 0)
	var res poplibResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("poplib output %q: %v", r.stdout, err)
	}
	return res
}

func TestPop3dPoplib(t *testing.T) {
	for _, format := range []string{"maildir", "dovecot"} {
		t.Run(format, func(t *testing.T) {
			e, s, files := pop3Setup(t, "[pop3d]\nuidl_format = "+format+"\n")
			first := runPoplib(t, e, s, "keep")
			if len(first.Msgs) != len(files) {
				t.Fatalf("poplib got %d messages, want %d", len(first.Msgs), len(files))
			}
			for i, m := range first.Msgs {
				// latin-1 round trip: m holds the raw bytes one per rune.
				got := latin1Bytes(m)
				if got != crlf(files[i]) {
					t.Errorf("message %d: poplib got %q, want %q", i+1, got, crlf(files[i]))
				}
			}
			// A dropped connection after DELE deletes nothing.
			second := runPoplib(t, e, s, "dele-drop")
			if !slices.Equal(first.UIDL, second.UIDL) {
				t.Fatalf("UIDL changed between sessions: %q then %q", first.UIDL, second.UIDL)
			}
			third := runPoplib(t, e, s, "dele-quit")
			if !slices.Equal(first.UIDL, third.UIDL) {
				t.Fatalf("a dropped connection changed the mailbox: UIDL %q then %q", first.UIDL, third.UIDL)
			}
			last := runPoplib(t, e, s, "keep")
			if len(last.Msgs) != 0 {
				t.Fatalf("after DELE and QUIT %d messages remain", len(last.Msgs))
			}
		})
	}
}

func latin1Bytes(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return string(b)
}

// lfBody is a message as a client that stores LF files writes it.
func lfBody(m string) string { return strings.ReplaceAll(m, "\r\n", "\n") }

// wantContains checks that every message appears, LF-normalised, in what
// a client delivered (clients may add a Received or Delivered-To line).
func wantContains(t *testing.T, client string, got []string, files []string) {
	t.Helper()
	if len(got) != len(files) {
		t.Fatalf("%s delivered %d messages, want %d", client, len(got), len(files))
	}
	all := lfBody(strings.Join(got, "\x00"))
	for i, f := range files {
		if !strings.Contains(all, lfBody(f)) {
			t.Errorf("%s: message %d (%q) not delivered byte for byte; got %q", client, i+1, f, got)
		}
	}
}

// readDirFiles returns the files in dir (recursively), sorted by name.
func readDirFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out = append(out, string(b))
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

func TestPop3dFetchmailKeep(t *testing.T) {
	fetchmail := requireTool(t, "/usr/bin/fetchmail")
	e, s, files := pop3Setup(t, "")
	out := filepath.Join(e.Dir, "fetched")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(s.tls)
	rc := filepath.Join(e.Dir, "fetchmailrc")
	writeFile(t, rc, fmt.Sprintf(`set no syslog
poll %s protocol pop3 port %s uidl
  user "alice@example.org" password "alice pw" is root here
  ssl sslcertck sslcertfile %q sslcertpath %q sslcommonname localhost
  keep
  mda "/bin/sh -c 'cat > %s/msg.$$'"
`, host, port, s.cert, e.Dir, out))
	if err := os.Chmod(rc, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--fetchmailrc", rc, "--idfile", filepath.Join(e.Dir, "fetchids"), "--nodetach", "--nosyslog", "-v"}
	r := e.runProgram("", fetchmail, args...)
	r.wantCode(t, 0)
	wantContains(t, "fetchmail", readDirFiles(t, out), files)
	// keep: the mail stays, and the second run finds nothing new
	// (fetchmail exits 1, "no mail").
	if n := len(e.newMail("alice@example.org")); n+len(curFiles(t, e)) != len(files) {
		t.Fatalf("after fetchmail keep the Maildir holds %d+%d messages", n, len(curFiles(t, e)))
	}
	r = e.runProgram("", fetchmail, args...)
	if r.code != 1 {
		t.Fatalf("second fetchmail run: exit %d, want 1 (no new mail)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := readDirFiles(t, out); len(got) != len(files) {
		t.Fatalf("the second run downloaded again: %d files", len(got))
	}
}

func curFiles(t *testing.T, e *env) []string {
	return readDirFiles(t, filepath.Join(e.maildir("alice@example.org"), "cur"))
}

func TestPop3dGetmailKeep(t *testing.T) {
	getmail := requireTool(t, "/usr/bin/getmail")
	e, s, files := pop3Setup(t, "")
	dest := filepath.Join(e.Dir, "getmail-dest")
	for _, d := range []string{"", "tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dest, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(s.tls)
	gdir := filepath.Join(e.Dir, "getmail")
	if err := os.Mkdir(gdir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(gdir, "getmailrc"), fmt.Sprintf(`[retriever]
type = SimplePOP3SSLRetriever
server = %s
port = %s
username = alice@example.org
password = alice pw
ca_certs = %s
ssl_cert_hostname = localhost

[destination]
type = Maildir
path = %s/
%s
[options]
delete = false
read_all = false
delivered_to = false
received = false
verbose = 2
`, host, port, s.cert, dest, getmailUser(t, dest)))
	args := []string{"--getmaildir", gdir, "--rcfile", "getmailrc"}
	r := e.runProgram("", getmail, args...)
	r.wantCode(t, 0)
	wantContains(t, "getmail", readDirFiles(t, filepath.Join(dest, "new")), files)
	r = e.runProgram("", getmail, args...)
	r.wantCode(t, 0)
	if got := readDirFiles(t, filepath.Join(dest, "new")); len(got) != len(files) {
		t.Fatalf("the second getmail run downloaded again: %d messages\n%s", len(got), r.stdout)
	}
	if !strings.Contains(r.stdout, "0 messages") {
		t.Errorf("second getmail run did not report 0 messages:\n%s", r.stdout)
	}
}

func TestPop3dMpopKeep(t *testing.T) {
	mpop := requireTool(t, "/usr/bin/mpop")
	e, s, files := pop3Setup(t, "")
	dest := filepath.Join(e.Dir, "mpop-dest")
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dest, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	host, port, _ := net.SplitHostPort(s.plain)
	// mpop over STLS on the plain port (pop3), the other TLS path.
	args := []string{"--host=" + host, "--port=" + port, "--tls=on", "--tls-starttls=on",
		"--tls-trust-file=" + s.cert, "--auth=user", "--user=alice@example.org",
		"--passwordeval=echo 'alice pw'", "--keep=on", "--only-new=on",
		"--uidls-file=" + filepath.Join(e.Dir, "mpop-uidls"), "--delivery=maildir," + dest}
	r := e.runProgram("", mpop, args...)
	r.wantCode(t, 0)
	wantContains(t, "mpop", readDirFiles(t, filepath.Join(dest, "new")), files)
	r = e.runProgram("", mpop, args...)
	r.wantCode(t, 0)
	if got := readDirFiles(t, filepath.Join(dest, "new")); len(got) != len(files) {
		t.Fatalf("the second mpop run downloaded again: %d messages", len(got))
	}
	// Without --keep, mpop deletes what it fetched at QUIT.
	r = e.runProgram("", mpop, append(args, "--keep=off", "--only-new=off")...)
	r.wantCode(t, 0)
	if n := len(e.newMail("alice@example.org")) + len(curFiles(t, e)); n != 0 {
		t.Fatalf("after mpop --keep=off %d messages remain", n)
	}
}

// cheapPassword replaces a user's hash with a cheap one: pop3d built with
// -race verifies a production bcrypt hash in tens of seconds.
func cheapPassword(t *testing.T, e *env, address, password string) {
	t.Helper()
	accounttest.CheapHashes(t)
	hash, err := account.HashPassword(password, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := account.SetPassword(e.Passwd, address, hash); err != nil {
		t.Fatal(err)
	}
}

// getmailUser is the [destination] user line: getmail refuses to deliver
// as root, so as root dest is given to nobody and getmail delivers as it.
func getmailUser(t *testing.T, dest string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return ""
	}
	for _, d := range []string{"", "tmp", "new", "cur"} {
		if err := os.Chown(filepath.Join(dest, d), testutil.NobodyID, testutil.NobodyID); err != nil {
			t.Fatal(err)
		}
	}
	return "user = nobody\n"
}
