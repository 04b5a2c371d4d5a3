package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
)

func TestMain(m *testing.M) { testutil.RunMain(m) }

// writeConfigFile writes e's configuration as a mailroom.conf.
func (e *mdaEnv) writeConfigFile(extra string) string {
	e.t.Helper()
	path := filepath.Join(filepath.Dir(e.mailRoot), "mailroom.conf")
	conf := "hostname = mx.example.test\ndomains = example.test\n" +
		"mail_root = " + e.cfg.MailRoot + "\npasswd_file = " + e.cfg.PasswdFile +
		"\naliases_file = " + e.cfg.AliasesFile + "\n" + extra
	mustWrite(e.t, path, conf)
	return path
}

// TestBinary runs the built program: the command line, the config file
// and the exit statuses as an MTA sees them.
func TestBinary(t *testing.T) {
	bin := testutil.BuildBinaries(t, "mailroom/cmd/deliver")["deliver"]
	e := newMDAEnv(t)
	// As root, deliver writes as the owner of mail_root.
	testutil.ShareMailRoot(t, e.mailRoot)
	conf := e.writeConfigFile("[deliver]\nmax_message_size = 1k\n")
	bad := filepath.Join(filepath.Dir(e.mailRoot), "bad.conf")
	mustWrite(t, bad, "no_such_key = 1\n")
	// With or without a syslog daemon on this machine (the logger falls
	// back to stderr), the status line stays first and success prints
	// nothing before it.
	// A transport table with a bad line: --check-config must read it
	// as the queue daemon would.
	table := filepath.Join(filepath.Dir(e.mailRoot), "transport")
	mustWrite(t, table, "example.net [relay.example]:99999\n")
	badRemote := filepath.Join(filepath.Dir(e.mailRoot), "badremote.conf")
	mustWrite(t, badRemote, readFile(t, conf)+"transport_file = "+table+"\n")
	syslogConf := filepath.Join(filepath.Dir(e.mailRoot), "syslog.conf")
	mustWrite(t, syslogConf, strings.Replace(readFile(t, conf), "hostname =", "log_format = syslog\nhostname =", 1))
	tests := []struct {
		name   string
		args   []string
		env    []string
		stdin  string
		code   int
		stdout string // substring
		stderr string // prefix of the first line
	}{
		{name: "deliver, glued -f", args: []string{"-c", conf, "-fs@sender.test", "a@example.test"}, stdin: simpleMsg, code: 0},
		{name: "deliver from the environment", args: []string{"--config=" + conf}, env: []string{"RECIPIENT=b@example.test", "SENDER="}, stdin: simpleMsg, code: 0},
		{name: "too big per the file", args: []string{"-c", conf, "a@example.test"}, stdin: "Subject: x\n\n" + strings.Repeat("y", 2000), code: ExitDataErr, stderr: "5.3.4 "},
		{name: "unknown user", args: []string{"-c", conf, "zz@example.test"}, stdin: simpleMsg, code: ExitNoUser, stderr: "5.1.1 "},
		{name: "usage", args: []string{"-c", conf, "-x"}, code: ExitUsage, stderr: "5.3.0 deliver: usage: unknown option -x"},
		{name: "config missing", args: []string{"-c", conf + ".missing", "a@example.test"}, stdin: simpleMsg, code: ExitTempFail, stderr: "4.3.5 "},
		{name: "config bad", args: []string{"-c", bad, "a@example.test"}, stdin: simpleMsg, code: ExitTempFail, stderr: "4.3.5 "},
		{name: "check-config", args: []string{"-c", conf, "--check-config"}, code: 0, stdout: ": ok"},
		{name: "check-config bad", args: []string{"-c", bad, "--check-config"}, code: 78, stderr: "deliver: "},
		{name: "check-config bad transport table", args: []string{"-c", badRemote, "--check-config"}, code: 78, stderr: "deliver: " + badRemote + ": remote: " + table + ":1: "},
		{name: "print-config bad", args: []string{"-c", bad, "--print-config"}, code: 78, stderr: "deliver: " + bad + ":1: "},
		{name: "print-config missing", args: []string{"-c", conf + ".missing", "--print-config"}, code: 78, stderr: "deliver: config: open "},
		{name: "syslog, delivered", args: []string{"-c", syslogConf, "a@example.test"}, stdin: simpleMsg, code: 0},
		{name: "syslog, unknown user", args: []string{"-c", syslogConf, "zz@example.test"}, stdin: simpleMsg, code: ExitNoUser, stderr: "5.1.1 "},
		{name: "print-config", args: []string{"-c", conf, "--print-config"}, code: 0, stdout: "mail_root = " + e.mailRoot},
		{name: "explain", args: []string{"-c", conf, "--explain", "list@example.test"}, code: 0, stdout: "b@example.test"},
		{name: "explain json", args: []string{"-c", conf, "--explain", "a+x@example.test", "--json"}, code: 0, stdout: `"kind": "mailbox"`},
		{name: "help", args: []string{"--help"}, code: 0, stdout: "usage: deliver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBinary(t, bin, nil, tt.env, tt.stdin, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout %q lacks %q", r.stdout, tt.stdout)
			}
			if !strings.HasPrefix(r.stderr, tt.stderr) {
				t.Errorf("stderr %q, want prefix %q", r.stderr, tt.stderr)
			}
		})
	}
	got := onlyMessage(t, e.maildirOf("b"))
	if !strings.HasPrefix(got, "Return-Path: <") || !strings.HasSuffix(got, simpleMsg) {
		t.Errorf("b: %q", got)
	}
	// a: the glued -f run and the syslog run.
	aNew := filepath.Join(e.maildirOf("a"), "new")
	if names := files(t, aNew); len(names) != 2 {
		t.Errorf("a has %d messages, want 2", len(names))
	} else {
		for _, n := range names {
			if got := readFile(t, n); !strings.HasPrefix(got, "Return-Path: <") || !strings.HasSuffix(got, simpleMsg) {
				t.Errorf("a: %q", got)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(e.maildirOf("zz"))); err == nil {
		t.Error("a Maildir was made for an unknown user")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runBinary runs the program with a fixed small environment plus env,
// started with cred's ids when cred is not nil, bounded in time.
func runBinary(t *testing.T, bin string, cred *syscall.Credential, env []string, stdin string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := runResult{stdout: out.String(), stderr: errb.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %q: %v", bin, args, ctx.Err())
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// requireRoot applies the interop rule to running as root, which the
// privilege tests need.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(testutil.RequireInteropEnv) == "1" {
		t.Fatalf("this test needs root (%s=1)", testutil.RequireInteropEnv)
	}
	t.Skipf("this test needs root; set %s=1 to make this a failure", testutil.RequireInteropEnv)
}

// owner is the uid and gid owning path.
func owner(t *testing.T, path string) (uid, gid uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// TestBinaryAsRoot: started by root, deliver writes as the owner of
// mail_root, or writes nothing at all.
func TestBinaryAsRoot(t *testing.T) {
	requireRoot(t)
	bin := testutil.BuildBinaries(t, "mailroom/cmd/deliver")["deliver"]
	const nobody = testutil.NobodyID
	tests := []struct {
		name   string
		setup  func(t *testing.T, e *mdaEnv) // after ShareMailRoot
		args   []string                      // after -c conf
		code   int
		stderr string   // the first line exactly; "" for none
		wrote  []string // the users of example.test that got the message
	}{
		{name: "owned by nobody", args: []string{"a@example.test"}, code: 0, wrote: []string{"a"}},
		{name: "alias to two mailboxes", args: []string{"list@example.test"}, code: 0, wrote: []string{"a", "b"}},
		{
			name:   "owned by root",
			setup:  func(t *testing.T, e *mdaEnv) { chown(t, e.mailRoot, 0, 0) },
			args:   []string{"a@example.test"},
			code:   ExitTempFail,
			stderr: "4.3.5 refusing to deliver as root: mail_root %s is owned by root",
		},
		{
			name:   "group root",
			setup:  func(t *testing.T, e *mdaEnv) { chown(t, e.mailRoot, nobody, 0) },
			args:   []string{"a@example.test"},
			code:   ExitTempFail,
			stderr: "4.3.5 refusing to deliver as root: mail_root %s has group root",
		},
		{
			name: "missing",
			setup: func(t *testing.T, e *mdaEnv) {
				if err := os.Remove(e.mailRoot); err != nil {
					t.Fatal(err)
				}
			},
			args:   []string{"a@example.test"},
			code:   ExitTempFail,
			stderr: "4.3.5 refusing to deliver as root: mail_root %s does not exist",
		},
		{
			// The refusal is about writing: explaining a route needs none.
			name:  "explain, owned by root",
			setup: func(t *testing.T, e *mdaEnv) { chown(t, e.mailRoot, 0, 0) },
			args:  []string{"--explain", "a@example.test"},
			code:  0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMDAEnv(t)
			testutil.ShareMailRoot(t, e.mailRoot)
			// Tables only root may read: deliver reads them before it
			// drops root.
			passwd := filepath.Join(filepath.Dir(e.mailRoot), "passwd")
			if err := os.Chmod(passwd, 0o600); err != nil {
				t.Fatal(err)
			}
			conf := e.writeConfigFile("")
			if tt.setup != nil {
				tt.setup(t, e)
			}
			r := runBinary(t, bin, nil, nil, simpleMsg, append([]string{"-c", conf}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if want := fmt.Sprintf(tt.stderr, e.mailRoot); tt.stderr != "" && r.firstLine() != want {
				t.Errorf("first stderr line %q, want %q", r.firstLine(), want)
			}
			if tt.code != 0 {
				// Nothing written: the mail root is as it was, or absent.
				if ents, err := os.ReadDir(e.mailRoot); len(ents) != 0 || err != nil && !os.IsNotExist(err) {
					t.Errorf("mail root after a refusal: %v, %v", ents, err)
				}
				return
			}
			for _, local := range tt.wrote {
				msg := files(t, filepath.Join(e.maildirOf(local), "new"))
				if len(msg) != 1 {
					t.Fatalf("%s/new holds %q, want one message", local, msg)
				}
				for _, p := range []string{msg[0], e.maildirOf(local), filepath.Join(e.maildirOf(local), "tmp"), filepath.Dir(e.maildirOf(local))} {
					if uid, gid := owner(t, p); uid != nobody || gid != nobody {
						t.Errorf("%s is owned by %d:%d, want the mail root's owner %d:%d", p, uid, gid, nobody, nobody)
					}
				}
			}
		})
	}
}

// TestBinaryUnprivileged: a deliver not started by root changes no ids
// and checks no owner; it writes as its caller, even into a mail root
// owned by root that it may write to.
func TestBinaryUnprivileged(t *testing.T) {
	bin := testutil.BuildBinaries(t, "mailroom/cmd/deliver")["deliver"]
	e := newMDAEnv(t)
	conf := e.writeConfigFile("")
	var cred *syscall.Credential
	wantUID, wantGID := uint32(os.Getuid()), uint32(os.Getgid())
	if os.Geteuid() == 0 {
		// Run it as nobody: a root-owned mail root open to all, and a
		// copy of the program nobody can reach.
		testutil.ShareMailRoot(t, e.mailRoot)
		chown(t, e.mailRoot, 0, 0)
		if err := os.Chmod(e.mailRoot, 0o777); err != nil {
			t.Fatal(err)
		}
		bin = reachableCopy(t, bin, filepath.Dir(e.mailRoot))
		cred = &syscall.Credential{Uid: testutil.NobodyID, Gid: testutil.NobodyID}
		wantUID, wantGID = testutil.NobodyID, testutil.NobodyID
	}
	r := runBinary(t, bin, cred, nil, simpleMsg, "-c", conf, "a@example.test")
	if r.code != 0 {
		t.Fatalf("exit %d; stderr %q", r.code, r.stderr)
	}
	msg := files(t, filepath.Join(e.maildirOf("a"), "new"))
	if len(msg) != 1 {
		t.Fatalf("new/ holds %q, want one message", msg)
	}
	if uid, gid := owner(t, msg[0]); uid != wantUID || gid != wantGID {
		t.Errorf("message owned by %d:%d, want the caller's %d:%d", uid, gid, wantUID, wantGID)
	}
}

// TestBeforeWrite: the hook runs once, after the tables are loaded and
// before the message is read; its error defers the message and leaves
// nothing behind.
func TestBeforeWrite(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		noPasswd  bool
		hookErr   error
		code      int
		firstLine string
		calls     int
	}{
		{name: "hook passes", args: []string{"a@example.test", "b@example.test"}, code: 0, calls: 1},
		{name: "hook refuses", args: []string{"a@example.test"}, hookErr: errors.New("refusing to deliver as root: mail_root /m is owned by root"),
			code: ExitTempFail, firstLine: "4.3.5 refusing to deliver as root: mail_root /m is owned by root", calls: 1},
		{name: "tables unreadable: not called", args: []string{"a@example.test"}, noPasswd: true,
			code: ExitTempFail, firstLine: "4.3.5 mail system configuration error", calls: 0},
		{name: "no recipient: not called", code: ExitUsage, firstLine: "5.3.0 no recipient: give RECIPIENT or -d USER, or set $RECIPIENT", calls: 0},
		{name: "explain: not called", args: []string{"--explain", "a@example.test"}, code: 0, calls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMDAEnv(t)
			if tt.noPasswd {
				e.cfg.PasswdFile += ".missing"
			}
			opt, err := ParseArgs(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			stdin := &watchedReader{r: strings.NewReader(simpleMsg)}
			calls := 0
			var out, errb bytes.Buffer
			code := Run(e.cfg, opt, System{Stdin: stdin, Stdout: &out, Stderr: &errb, BeforeWrite: func() error {
				calls++
				if stdin.read {
					t.Error("BeforeWrite called after the message was read")
				}
				if _, err := os.Stat(filepath.Join(e.mailRoot, "example.test")); err == nil {
					t.Error("BeforeWrite called after a Maildir was made")
				}
				return tt.hookErr
			}})
			r := runResult{code, out.String(), errb.String()}
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if tt.firstLine != "" && r.firstLine() != tt.firstLine {
				t.Errorf("first stderr line %q, want %q", r.firstLine(), tt.firstLine)
			}
			if calls != tt.calls {
				t.Errorf("BeforeWrite called %d times, want %d", calls, tt.calls)
			}
			if tt.code != 0 {
				if ents, err := os.ReadDir(e.mailRoot); err != nil || len(ents) != 0 {
					t.Errorf("mail root after a failure: %v, %v", ents, err)
				}
			}
		})
	}
}

// watchedReader records whether anything read it.
type watchedReader struct {
	r    io.Reader
	read bool
}

func (w *watchedReader) Read(p []byte) (int, error) {
	w.read = true
	return w.r.Read(p)
}

func chown(t *testing.T, path string, uid, gid int) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// reachableCopy copies the program into dir (searchable by others) where
// another uid can run it: the build directory is private to root.
func reachableCopy(t *testing.T, bin, dir string) string {
	t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(bin))
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
