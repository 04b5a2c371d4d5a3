// Package e2e runs mailroom's built programs as separate processes, the way
// an admin, an MTA or a mail client meets them, and checks what they leave
// on disk.
//
// This file is the shared harness; each area adds its own *_test.go:
//
//	e := newEnv(t, "example.org")          // temp mail_root, passwd, aliases, spool, mailroom.conf
//	e.addUser("alice@example.org", "pw")   // via `mailroom user add`
//	r := e.run(msg, "deliver", "-f", "bob@example.net", "alice@example.org")
//	r.wantCode(t, 0)
//	files := e.newMail("alice@example.org")
//
// Programs are built from mailroom/cmd/<name> on first use, once per test
// process, with -race when the tests run with it. A test that drives a
// Debian program first calls testutil.RequireTool (skip when missing, fail
// under MAILROOM_REQUIRE_INTEROP=1). Every child process runs under a
// deadline, so a hung program fails its test instead of the whole run.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
)

func TestMain(m *testing.M) { testutil.RunMain(m) }

// processTimeout bounds every program the harness runs.
const processTimeout = 2 * time.Minute

// env is one installation under a test's temporary directory.
type env struct {
	t        *testing.T
	Dir      string // everything below lives here
	Config   string // mailroom.conf
	MailRoot string
	Passwd   string
	Aliases  string
	Spool    string
	Hostname string
}

// newEnv writes a mailroom.conf hosting domains (at least one) with every
// path in a fresh temporary directory. The passwd file is created by the
// first addUser; the aliases file exists and is empty. When the tests run
// as root, the mail root belongs to nobody (testutil.ShareMailRoot), as it
// would to vmail: mailroom gives new Maildirs to that owner and deliver,
// started as root, drops to it before writing (docs/security.md).
func newEnv(t *testing.T, domains ...string) *env {
	t.Helper()
	if len(domains) == 0 {
		t.Fatal("newEnv: no domain")
	}
	root := testutil.TempMaildirRoot(t)
	testutil.ShareMailRoot(t, root)
	dir := filepath.Dir(root)
	e := &env{
		t:        t,
		Dir:      dir,
		Config:   filepath.Join(dir, "mailroom.conf"),
		MailRoot: root,
		Passwd:   filepath.Join(dir, "passwd"),
		Aliases:  filepath.Join(dir, "aliases"),
		Spool:    filepath.Join(dir, "spool"),
		Hostname: "mx.test",
	}
	if err := os.Mkdir(e.Spool, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.Aliases, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(domains, "")
	return e
}

// writeConfig (re)writes mailroom.conf; extra is appended verbatim, for a
// test that needs other keys or sections.
func (e *env) writeConfig(domains []string, extra string) {
	e.t.Helper()
	conf := fmt.Sprintf(`# written by the e2e harness
hostname = %s
domains = %s
mail_root = %s
passwd_file = %s
aliases_file = %s
spool_dir = %s
%s`, e.Hostname, strings.Join(domains, ", "), e.MailRoot, e.Passwd, e.Aliases, e.Spool, extra)
	if err := os.WriteFile(e.Config, []byte(conf), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// bin returns the path of the built program name (mailroom/cmd/<name>).
func (e *env) bin(name string) string {
	e.t.Helper()
	return testutil.BuildBinaries(e.t, "mailroom/cmd/"+name)[name]
}

// result is what a finished program left.
type result struct {
	cmdline        string
	code           int
	stdout, stderr string
}

// wantCode fails the test unless the program exited with code.
func (r result) wantCode(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", r.cmdline, r.code, code, r.stdout, r.stderr)
	}
}

// run starts bin/<name> with --config first, then args, stdin as its
// input, and waits for it (within processTimeout).
func (e *env) run(stdin, name string, args ...string) result {
	e.t.Helper()
	return e.runProgram(stdin, e.bin(name), append([]string{"--config", e.Config}, args...)...)
}

// runProgram runs any program (built or a Debian one) and returns its exit
// code and output. Failing to start it, or a deadline, fails the test.
func (e *env) runProgram(stdin, path string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = e.Dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := result{cmdline: strings.Join(append([]string{filepath.Base(path)}, args...), " ")}
	err := cmd.Run()
	r.stdout, r.stderr = stdout.String(), stderr.String()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.t.Fatalf("%s: no exit within %v (%v)\nstderr: %s", r.cmdline, processTimeout, ctx.Err(), r.stderr)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		e.t.Fatalf("%s: %v", r.cmdline, err)
	}
	return r
}

// addUser creates an account (and its Maildir) with `mailroom user add`,
// the password on stdin as a provisioning script would pass it.
func (e *env) addUser(address, password string) {
	e.t.Helper()
	e.run(password+"\n", "mailroom", "user", "add", address).wantCode(e.t, 0)
}

// maildir is the Maildir of a virtual user: <mail_root>/<domain>/<local>.
func (e *env) maildir(address string) string {
	e.t.Helper()
	local, domain, ok := strings.Cut(address, "@")
	if !ok {
		e.t.Fatalf("maildir: %q is not user@domain", address)
	}
	return filepath.Join(e.MailRoot, domain, local)
}

// newMail returns the contents of the messages in the user's new/, ordered
// by file name (that is, by delivery time).
func (e *env) newMail(address string) []string {
	e.t.Helper()
	dir := filepath.Join(e.maildir(address), "new")
	entries, err := os.ReadDir(dir)
	if err != nil {
		e.t.Fatal(err)
	}
	names := make([]string, 0, len(entries))
	for _, de := range entries {
		names = append(names, de.Name())
	}
	slices.Sort(names)
	msgs := make([]string, 0, len(names))
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			e.t.Fatal(err)
		}
		msgs = append(msgs, string(b))
	}
	return msgs
}

// wantOwnedLikeMailRoot fails the test unless dir and every file in it
// have the mail root's owner and group.
func (e *env) wantOwnedLikeMailRoot(dir string) {
	e.t.Helper()
	want := ownerOf(e.t, e.MailRoot)
	entries, err := os.ReadDir(dir)
	if err != nil {
		e.t.Fatal(err)
	}
	paths := []string{dir}
	for _, de := range entries {
		paths = append(paths, filepath.Join(dir, de.Name()))
	}
	for _, p := range paths {
		if got := ownerOf(e.t, p); got != want {
			e.t.Errorf("%s is owned by %s, want %s like the mail root", p, got, want)
		}
	}
}

// ownerOf is "uid:gid" of path.
func ownerOf(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("%s: no owner in %T", path, fi.Sys())
	}
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}

// TestHarness checks the harness itself on the two programs that exist
// from the start: an account made by mailroom, a message handed to deliver
// as an MTA would, found in the Maildir.
func TestHarness(t *testing.T) {
	e := newEnv(t, "example.org")
	e.addUser("alice@example.org", "correct horse")

	list := e.run("", "mailroom", "user", "list")
	list.wantCode(t, 0)
	if strings.TrimSpace(list.stdout) != "alice@example.org" {
		t.Errorf("user list printed %q, want alice@example.org alone", list.stdout)
	}

	msg := "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: harness\r\n\r\nhello\r\n"
	e.run(msg, "deliver", "-f", "bob@example.net", "alice@example.org").wantCode(t, 0)
	got := e.newMail("alice@example.org")
	if len(got) != 1 || !strings.Contains(got[0], "Subject: harness") {
		t.Fatalf("new/ holds %q, want the one message", got)
	}
	// Whoever runs the tests, root included, the message belongs to the
	// owner of the mail root, who will read it.
	e.wantOwnedLikeMailRoot(filepath.Join(e.maildir("alice@example.org"), "new"))

	// An unknown user is a permanent failure (67, EX_NOUSER) that leaves
	// nothing behind.
	e.run(msg, "deliver", "-f", "bob@example.net", "nobody@example.org").wantCode(t, 67)
	if n := len(e.newMail("alice@example.org")); n != 1 {
		t.Errorf("alice has %d messages after a failed delivery to someone else, want 1", n)
	}
}
