package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"mailroom/internal/testutil"
	"mailroom/spool"
)

// sendmailEnv is an installation with a spool ready for drops and a
// configuration any user can read (sendmail runs as the submitting user).
func sendmailEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, "example.org")
	if err := spool.Setup(e.Spool); err != nil {
		t.Fatal(err)
	}
	e.writeConfig([]string{"example.org"}, "[sendmail]\norigin = example.org\n")
	if err := os.Chmod(e.Config, 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// droppedMessage is a maildrop entry after pickup.
type droppedMessage struct {
	env  spool.Envelope
	data string
}

func (d droppedMessage) rcpts() []string {
	var out []string
	for _, r := range d.env.Recipients {
		out = append(out, r.Addr)
	}
	return out
}

// pickupAll moves every maildrop entry into the queue, as the queue
// daemon would, and reads each back.
func (e *env) pickupAll() []droppedMessage {
	e.t.Helper()
	sp, err := spool.Open(e.Spool)
	if err != nil {
		e.t.Fatal(err)
	}
	ids, err := sp.ListMaildrop()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []droppedMessage
	for _, id := range ids {
		qid, err := sp.Pickup(id)
		if err != nil {
			e.t.Fatalf("pickup %s: %v", id, err)
		}
		m, err := sp.Message(qid)
		if err != nil {
			e.t.Fatal(err)
		}
		f, err := m.OpenData()
		if err != nil {
			e.t.Fatal(err)
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, droppedMessage{env: m.Envelope, data: string(data)})
	}
	return out
}

func (e *env) onePickup() droppedMessage {
	e.t.Helper()
	ds := e.pickupAll()
	if len(ds) != 1 {
		e.t.Fatalf("%d maildrop entries, want 1", len(ds))
	}
	return ds[0]
}

// header is the value of the first field name in data, "" if none.
func header(data, name string) string {
	for _, line := range strings.Split(data, "\n") {
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestSendmailCallers runs the command lines real programs pass
// (ecosystem §1.1) against the built program and checks the maildrop
// entries byte for byte.
func TestSendmailCallers(t *testing.T) {
	const body = "\nline one\n.\nline three\n"
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		rcpts []string
		data  string // the message before the added fields' place, "" = stdin
	}{
		{"debian cron", []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@mx> true\n" + body, []string{"root@example.org"}, ""},
		{"cronie", []string{"-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"},
			"From: root (Cron Daemon)\nTo: alice\nSubject: Cron <root@mx> true\n" + body, []string{"alice@example.org"}, ""},
		{"mutt", []string{"-oem", "-oi", "--", "bob@example.net", "-dash@example.net"},
			"From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: mutt\n" + body, []string{"bob@example.net", "-dash@example.net"}, ""},
		{"git send-email", []string{"-i", "bob@example.net", "carol@example.com"},
			"From: Alice <alice@example.org>\nSubject: [PATCH] x\n" + body, []string{"bob@example.net", "carol@example.com"}, ""},
		{"git send-email -f", []string{"-f", "alice@example.org", "-i", "bob@example.net"},
			"From: Alice <alice@example.org>\nSubject: [PATCH] x\n" + body, []string{"bob@example.net"}, ""},
		{"php", []string{"-t", "-i"},
			"To: bob@example.net\r\nSubject: php\r\nBcc: hidden@example.net\r\nFrom: www-data@example.org\r\n\r\nline one\r\n.\r\nline three\r\n",
			[]string{"bob@example.net", "hidden@example.net"},
			"To: bob@example.net\nSubject: php\nFrom: www-data@example.org\n" + body},
		{"MIME::Lite", []string{"-t", "-oi", "-oem", "-falice@example.org"},
			"From: alice@example.org\nTo: bob@example.net, carol@example.com\nSubject: perl\n" + body, []string{"bob@example.net", "carol@example.com"}, ""},
		{"unattended-upgrades", []string{"-oi", "-t"},
			"From: root\nTo: root\nSubject: upgrades\n" + body, []string{"root@example.org"}, ""},
		{"lone dot without -i", []string{"root"},
			"From: root\nSubject: at\n\nfirst\n.\nnever read\n", []string{"root@example.org"}, "From: root\nSubject: at\n\nfirst\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := sendmailEnv(t)
			e.run(tc.stdin, "sendmail", tc.args...).wantCode(t, 0)
			d := e.onePickup()
			if !slices.Equal(d.rcpts(), tc.rcpts) {
				t.Errorf("recipients %q, want %q", d.rcpts(), tc.rcpts)
			}
			want := tc.data
			if want == "" {
				want = tc.stdin
			}
			// Date and Message-ID are appended to the header.
			head, rest, _ := strings.Cut(want, "\n\n")
			added := "Date: " + header(d.data, "Date") + "\nMessage-ID: " + header(d.data, "Message-ID") + "\n"
			want = head + "\n" + added + "\n" + rest
			if d.data != want {
				t.Errorf("data\n got %q\nwant %q", d.data, want)
			}
			if !strings.HasSuffix(header(d.data, "Message-ID"), "@mx.test>") || header(d.data, "Date") == "" {
				t.Errorf("added fields: %q", added)
			}
		})
	}
}

// copyBinary puts the built sendmail where an unprivileged user can run
// it (the build directory is private), under name.
func copyBinary(t *testing.T, e *env, name string) string {
	t.Helper()
	dir := filepath.Join(e.Dir, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(e.bin("sendmail"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// runAs runs path as uid:gid (when the test is root) and returns the exit
// code and stderr.
func runAs(t *testing.T, uid, gid int, dir, stdin, path string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if os.Getuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	case err != nil:
		t.Fatalf("%s: %v", path, err)
	}
	return 0, stderr.String()
}

// TestSendmailUnprivileged submits as an ordinary user (nobody when the
// tests run as root): the drop belongs to that uid, and a -f naming
// someone else is replaced by the user's own address.
func TestSendmailUnprivileged(t *testing.T) {
	e := sendmailEnv(t)
	path := copyBinary(t, e, "sendmail")
	uid, gid := os.Getuid(), os.Getgid()
	login := "root"
	if uid == 0 {
		uid, gid, login = testutil.NobodyID, testutil.NobodyID, "nobody"
	} else if u := os.Getenv("USER"); u != "" {
		login = u
	}
	code, stderr := runAs(t, uid, gid, e.Dir, "Subject: hi\n\nbody\n", path,
		"-C", e.Config, "-f", "ceo@example.org", "-i", "bob@example.net")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d := e.onePickup()
	if int(d.env.UID) != uid {
		t.Errorf("uid %d, want %d", d.env.UID, uid)
	}
	if uid == testutil.NobodyID {
		if d.env.Sender != login+"@example.org" || !strings.Contains(stderr, "not in trusted_users") {
			t.Errorf("sender %q (stderr %q), want %s@example.org and a warning", d.env.Sender, stderr, login)
		}
		// nobody cannot read the queue: mailq says so, with 77.
		mailq := copyBinary(t, e, "mailq")
		code, stderr = runAs(t, uid, gid, e.Dir, "", mailq, "-C", e.Config)
		if code != 77 || !strings.Contains(stderr, "permission denied") {
			t.Errorf("mailq as nobody: exit %d %q, want 77 permission denied", code, stderr)
		}
	}
}

// TestSendmailMailqAndExitCodes: argv[0] dispatch and the statuses
// scripts rely on.
func TestSendmailMailqAndExitCodes(t *testing.T) {
	e := sendmailEnv(t)
	mailq := copyBinary(t, e, "mailq")
	r := e.runProgram("", mailq, "-C", e.Config)
	r.wantCode(t, 0)
	if r.stdout != "Mail queue is empty\n" {
		t.Errorf("mailq: %q", r.stdout)
	}
	e.run("x\n", "sendmail", "-i", "root").wantCode(t, 0)
	e.pickupAll()
	r = e.runProgram("", mailq, "-C", e.Config)
	r.wantCode(t, 0)
	if !strings.Contains(r.stdout, "root@example.org\n") || !strings.HasSuffix(r.stdout, "in 1 Request.\n") {
		t.Errorf("mailq:\n%s", r.stdout)
	}
	newaliases := copyBinary(t, e, "newaliases")
	e.runProgram("", newaliases, "-C", e.Config).wantCode(t, 0)

	e.run("", "sendmail", "-bx").wantCode(t, 64)
	os.WriteFile(filepath.Join(e.Dir, "big.conf"), []byte(strings.Replace(mustRead(t, e.Config), "[sendmail]", "[smtpd]\nmax_message_size = 1k\n[sendmail]", 1)), 0o644)
	e.runProgram(strings.Repeat("x", 4096)+"\n", e.bin("sendmail"), "-C", filepath.Join(e.Dir, "big.conf"), "-i", "root").wantCode(t, 65)
	os.RemoveAll(e.Spool)
	e.run("x\n", "sendmail", "-i", "root").wantCode(t, 75)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSendmailMutt: mutt in batch mode sends through our sendmail.
func TestSendmailMutt(t *testing.T) {
	mutt := requireTool(t, "mutt")
	e := sendmailEnv(t)
	cmd := `set sendmail="` + e.bin("sendmail") + ` -C ` + e.Config + ` -oem -oi"`
	r := e.runProgramEnv([]string{"HOME=" + e.Dir, "EMAIL=alice@example.org"}, "Hello from mutt.\n", mutt,
		"-n", "-F", "/dev/null", "-e", cmd, "-e", "set from=alice@example.org", "-s", "mutt subject", "bob@example.net")
	r.wantCode(t, 0)
	d := e.onePickup()
	if !slices.Equal(d.rcpts(), []string{"bob@example.net"}) {
		t.Errorf("recipients %q", d.rcpts())
	}
	if header(d.data, "Subject") != "mutt subject" || !strings.Contains(d.data, "\n\nHello from mutt.\n") || strings.Contains(d.data, "\r") {
		t.Errorf("data %q", d.data)
	}
}

// TestSendmailGitSendEmail: git send-email in sendmail mode (no "--",
// "-i" then the recipients).
func TestSendmailGitSendEmail(t *testing.T) {
	git := requireTool(t, "git")
	e := sendmailEnv(t)
	// git-email's script loads Mail::Address (libmailtools-perl) as soon as
	// it runs; without it git send-email is as good as missing.
	perl := requireTool(t, "perl")
	if _, err := os.Stat("/usr/lib/git-core/git-send-email"); err != nil {
		requireTool(t, "/usr/lib/git-core/git-send-email")
	}
	if err := exec.Command(perl, "-MMail::Address", "-e", "1").Run(); err != nil {
		requireTool(t, "/usr/share/perl5/Mail/Address.pm") // libmailtools-perl
	}
	patch := filepath.Join(e.Dir, "0001-x.patch")
	os.WriteFile(patch, []byte("From 1234567890abcdef1234567890abcdef12345678 Mon Sep 17 00:00:00 2001\n"+
		"From: Alice <alice@example.org>\nDate: Sun, 23 Nov 2025 21:56:00 +0000\nSubject: [PATCH] x\n\n"+
		"A change.\n---\n x | 1 +\n\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+x\n--\n2.39.5\n\n"), 0o644)
	// git wants a committer identity even to send; a CI machine has none.
	r := e.runProgramEnv([]string{"HOME=" + e.Dir, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.org",
		"GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.org"}, "", git, "send-email",
		"--smtp-server="+e.bin("sendmail"), "--smtp-server-option=-C", "--smtp-server-option="+e.Config,
		"--from=Alice <alice@example.org>", "--to=bob@example.net", "--cc=carol@example.com",
		"--envelope-sender=alice@example.org", "--confirm=never", "--no-chain-reply-to", "--suppress-cc=all", patch)
	r.wantCode(t, 0)
	d := e.onePickup()
	if !slices.Equal(d.rcpts(), []string{"bob@example.net", "carol@example.com"}) || d.env.Sender != "alice@example.org" {
		t.Errorf("envelope %+v", d.env)
	}
	if header(d.data, "Subject") != "[PATCH] x" || !strings.Contains(d.data, "\n+x\n") {
		t.Errorf("data %q", d.data)
	}
}

// runProgramEnv is runProgram with extra environment variables.
func (e *env) runProgramEnv(extraEnv []string, stdin, path string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = e.Dir
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := result{cmdline: strings.Join(append([]string{filepath.Base(path)}, args...), " ")}
	err := cmd.Run()
	r.stdout, r.stderr = stdout.String(), stderr.String()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.t.Fatalf("%s: no exit within %v", r.cmdline, processTimeout)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		e.t.Fatalf("%s: %v", r.cmdline, err)
	}
	return r
}
