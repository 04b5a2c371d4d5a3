package deliver

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"

	"mailroom/internal/config"
	"mailroom/internal/testutil"
	"mailroom/maildir"
)

// mdaEnv is a mail system in a temp dir: config, passwd, aliases, mail root.
type mdaEnv struct {
	t        *testing.T
	outside  string // a directory outside the mail root
	mailRoot string
	cfg      *config.Config
}

const testPasswd = `a@example.test:
b@example.test:
q@example.test:::::::userdb_quota_rule=*:bytes=10
evil@example.test:
`

const testAliases = `list@example.test: a@example.test, b@example.test
both: a, \a
far@example.test: someone@elsewhere.test
cmd@example.test: |/bin/cat
`

func newMDAEnv(t *testing.T) *mdaEnv {
	t.Helper()
	root := testutil.TempMaildirRoot(t)
	parent := filepath.Dir(root)
	e := &mdaEnv{t: t, mailRoot: root, outside: filepath.Join(parent, "outside")}
	mustWrite(t, filepath.Join(parent, "passwd"), testPasswd)
	mustWrite(t, filepath.Join(parent, "aliases"), testAliases)
	if err := os.Mkdir(e.outside, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Hostname = "mx.example.test"
	cfg.Domains = []string{"example.test"}
	cfg.MailRoot = root
	cfg.PasswdFile = filepath.Join(parent, "passwd")
	cfg.AliasesFile = filepath.Join(parent, "aliases")
	cfg.SpoolDir = filepath.Join(parent, "spool")
	e.cfg = cfg
	return e
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

type runResult struct {
	code           int
	stdout, stderr string
}

// firstLine is what Postfix reads: the RFC 3463 status text.
func (r runResult) firstLine() string {
	line, _, _ := strings.Cut(r.stderr, "\n")
	return line
}

func (e *mdaEnv) run(msg io.Reader, env map[string]string, args ...string) runResult {
	e.t.Helper()
	opt, err := ParseArgs(args)
	if err != nil {
		e.t.Fatalf("ParseArgs(%q): %v", args, err)
	}
	var out, errb bytes.Buffer
	code := Run(e.cfg, opt, System{
		Stdin:  msg,
		Stdout: &out,
		Stderr: &errb,
		LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	})
	return runResult{code, out.String(), errb.String()}
}

func (e *mdaEnv) runString(msg string, args ...string) runResult {
	e.t.Helper()
	return e.run(strings.NewReader(msg), nil, args...)
}

// maildirOf is the INBOX of a user of example.test.
func (e *mdaEnv) maildirOf(local string) string {
	return filepath.Join(e.mailRoot, "example.test", local)
}

// files lists the regular files in dir (none if dir is missing).
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range ents {
		names = append(names, filepath.Join(dir, de.Name()))
	}
	sort.Strings(names)
	return names
}

// onlyMessage returns the one message in maildir/new, failing otherwise,
// and checks tmp/ is empty.
func onlyMessage(t *testing.T, maildirPath string) string {
	t.Helper()
	got := files(t, filepath.Join(maildirPath, "new"))
	if len(got) != 1 {
		t.Fatalf("%s/new holds %d files, want 1: %q", maildirPath, len(got), got)
	}
	if tmp := files(t, filepath.Join(maildirPath, "tmp")); len(tmp) != 0 {
		t.Errorf("tmp/ not cleaned: %q", tmp)
	}
	data, err := os.ReadFile(got[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// noTrace fails if any file at all exists under the mail root or the
// outside directory.
func (e *mdaEnv) noTrace() {
	e.t.Helper()
	for _, dir := range []string{e.mailRoot, e.outside} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				e.t.Errorf("walk %s: %v", p, err)
				return nil
			}
			// maildirsize is the quota's bookkeeping (computed by the
			// quota check), not a trace of the message.
			if !d.IsDir() && d.Type()&fs.ModeSymlink == 0 && d.Name() != maildir.QuotaFileName {
				e.t.Errorf("left behind: %s", p)
			}
			return nil
		})
	}
}

const simpleMsg = "From: s@sender.test\nSubject: hi\n\nbody\n"

func TestDeliverSimple(t *testing.T) {
	e := newMDAEnv(t)
	r := e.runString(simpleMsg, "-f", "s@sender.test", "a@example.test")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	got := onlyMessage(t, e.maildirOf("a"))
	want := "Return-Path: <s@sender.test>\nDelivered-To: a@example.test\n" + simpleMsg
	if got != want {
		t.Errorf("message =\n%q\nwant\n%q", got, want)
	}
	for _, kv := range []string{"status=sent", "from=s@sender.test", "to=a@example.test", "mailbox=a@example.test", "folder=INBOX", "path=", "delay="} {
		if !strings.Contains(r.stderr, kv) {
			t.Errorf("log %q lacks %q", r.stderr, kv)
		}
	}
}

func TestDeliverTraceHeaders(t *testing.T) {
	postfixStyle := "From s@sender.test  Mon Nov 23 21:14:47 2026\nReturn-Path: <s@sender.test>\n" +
		"X-Original-To: a+tag@example.test\nDelivered-To: a+tag@example.test\nReceived: from x\n\tby y\n" + simpleMsg
	tests := []struct {
		name string
		msg  string
		args []string
		env  map[string]string
		want string
	}{
		{
			name: "From_ line dropped and its sender used",
			msg:  "From s@sender.test  Mon Nov 23 21:14:47 2026\n" + simpleMsg,
			args: []string{"a@example.test"},
			want: "Return-Path: <s@sender.test>\nDelivered-To: a@example.test\n" + simpleMsg,
		},
		{
			name: "-f beats the From_ line",
			msg:  "From other@x  Mon Nov 23 21:14:47 2026\n" + simpleMsg,
			args: []string{"-f", "s@sender.test", "a@example.test"},
			want: "Return-Path: <s@sender.test>\nDelivered-To: a@example.test\n" + simpleMsg,
		},
		{
			name: "postfix mailbox_command: nothing added, nothing duplicated",
			msg:  postfixStyle,
			env:  map[string]string{"SENDER": "s@sender.test", "RECIPIENT": "a+tag@example.test"},
			want: strings.SplitN(postfixStyle, "\n", 2)[1],
		},
		{
			name: "null sender",
			msg:  simpleMsg,
			args: []string{"-f", "", "a@example.test"},
			want: "Return-Path: <>\nDelivered-To: a@example.test\n" + simpleMsg,
		},
		{
			name: "MAILER-DAEMON is the null sender",
			msg:  simpleMsg,
			args: []string{"-f", "MAILER-DAEMON", "a@example.test"},
			want: "Return-Path: <>\nDelivered-To: a@example.test\n" + simpleMsg,
		},
		{
			name: "sender and recipient from the environment",
			msg:  simpleMsg,
			env:  map[string]string{"SENDER": "e@sender.test", "RECIPIENT": "A@Example.Test"},
			want: "Return-Path: <e@sender.test>\nDelivered-To: a@example.test\n" + simpleMsg,
		},
		{
			name: "-d names the recipient",
			msg:  simpleMsg,
			args: []string{"-d", "a@example.test", "-f", "s@sender.test"},
			want: "Return-Path: <s@sender.test>\nDelivered-To: a@example.test\n" + simpleMsg,
		},
		{
			name: "CRLF message gets CRLF trace fields",
			msg:  "Subject: x\r\n\r\nbody\r\n",
			args: []string{"-f", "s@sender.test", "a@example.test"},
			want: "Return-Path: <s@sender.test>\r\nDelivered-To: a@example.test\r\nSubject: x\r\n\r\nbody\r\n",
		},
		{
			name: "8-bit and 2,000-character lines kept byte for byte",
			msg:  "Subject: \xe9t\xe9\n\n" + strings.Repeat("\xc3\xa9x", 700) + "\n" + strings.Repeat("y", 2000) + "\n",
			args: []string{"-f", "s@sender.test", "a@example.test"},
			want: "Return-Path: <s@sender.test>\nDelivered-To: a@example.test\nSubject: \xe9t\xe9\n\n" +
				strings.Repeat("\xc3\xa9x", 700) + "\n" + strings.Repeat("y", 2000) + "\n",
		},
		{
			name: "message without final newline",
			msg:  "Subject: x\n\nno newline",
			args: []string{"-f", "s@sender.test", "a@example.test"},
			want: "Return-Path: <s@sender.test>\nDelivered-To: a@example.test\nSubject: x\n\nno newline",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMDAEnv(t)
			r := e.run(strings.NewReader(tt.msg), tt.env, tt.args...)
			if r.code != ExitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if got := onlyMessage(t, e.maildirOf("a")); got != tt.want {
				t.Errorf("message =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestDeliverFailures covers every failing exit path that leaves nothing
// behind: status, first stderr line, and no file anywhere.
func TestDeliverFailures(t *testing.T) {
	tests := []struct {
		name     string
		msg      string
		args     []string
		env      map[string]string
		setup    func(e *mdaEnv)
		code     int
		status   string // prefix of stderr's first line
		quiet    bool   // no log lines without -v
		hasUsage bool
	}{
		{name: "empty message", msg: "", args: []string{"a@example.test"}, code: ExitDataErr, status: "5.6.0 empty message"},
		{name: "From_ line only", msg: "From x  Mon Nov 23 21:14:47 2026\n", args: []string{"a@example.test"}, code: ExitDataErr, status: "5.6.0 empty message"},
		{name: "no headers", msg: "just text\n\nmore\n", args: []string{"a@example.test"}, code: ExitDataErr, status: "5.6.0 message has no header section"},
		{name: "NUL in headers", msg: "Subject: a\x00\n\nb\n", args: []string{"a@example.test"}, code: ExitDataErr, status: "5.6.0 message contains NUL bytes"},
		{name: "NUL deep in the body", msg: "Subject: a\n\n" + strings.Repeat("x", 200<<10) + "\x00tail\n",
			args: []string{"a@example.test"}, code: ExitDataErr, status: "5.6.0 message contains NUL bytes"},
		{name: "too big", msg: "Subject: a\n\n" + strings.Repeat("x", 4096), args: []string{"a@example.test"},
			setup: func(e *mdaEnv) { e.cfg.Deliver.MaxMessageSize = 1000 }, code: ExitDataErr, status: "5.3.4 message too big"},
		{name: "unknown user", msg: simpleMsg, args: []string{"nobody@example.test"}, code: ExitNoUser, status: "5.1.1 <nobody@example.test>: user unknown"},
		{name: "dot-dot local part", msg: simpleMsg, args: []string{"../a@example.test"}, code: ExitNoPerm, status: "5.7.1 <../a@example.test>: delivery refused"},
		{name: "slash in local part", msg: simpleMsg, args: []string{"x/a@example.test"}, code: ExitNoPerm, status: "5.7.1 <x/a@example.test>: delivery refused"},
		{name: "dot-dot and slash", msg: simpleMsg, args: []string{"../../outside@example.test"}, code: ExitNoPerm, status: "5.7.1"},
		{name: "loop", msg: "Delivered-To: A@EXAMPLE.test\n" + simpleMsg, args: []string{"a@example.test"},
			code: ExitDataErr, status: "5.4.6 <a@example.test>: mail forwarding loop"},
		{name: "loop below the MTA's trace block",
			msg:  "Return-Path: <s@x>\nDelivered-To: a@example.test\nReceived: x\nDelivered-To: a@example.test\n" + simpleMsg,
			args: []string{"a@example.test"}, code: ExitDataErr, status: "5.4.6"},
		{name: "loop via $RECIPIENT", msg: "Received: x\nDelivered-To: <a@example.test>\n" + simpleMsg,
			env: map[string]string{"RECIPIENT": "a@example.test"}, code: ExitDataErr, status: "5.4.6"},
		{name: "over quota, tempfail", msg: simpleMsg, args: []string{"q@example.test"}, code: ExitTempFail, status: "4.2.2 mailbox full"},
		{name: "over quota, bounce", msg: simpleMsg, args: []string{"q@example.test"},
			setup: func(e *mdaEnv) { e.cfg.Deliver.OverQuota = "bounce" }, code: ExitNoPerm, status: "5.2.2 mailbox full"},
		{name: "default quota", msg: simpleMsg, args: []string{"a@example.test"},
			setup: func(e *mdaEnv) { e.cfg.Deliver.QuotaMessages = 0; e.cfg.Deliver.Quota = 5 }, code: ExitTempFail, status: "4.2.2 mailbox full"},
		{name: "symlink out of the mail root", msg: simpleMsg, args: []string{"evil@example.test"},
			setup: func(e *mdaEnv) {
				os.MkdirAll(filepath.Join(e.mailRoot, "example.test"), 0o700)
				if err := os.Symlink(e.outside, e.maildirOf("evil")); err != nil {
					e.t.Fatal(err)
				}
			}, code: ExitNoPerm, status: "5.7.0 mailbox path refused as unsafe"},
		{name: "remote alias target", msg: simpleMsg, args: []string{"far@example.test"}, code: ExitNoPerm, status: "5.3.3"},
		{name: "pipe target not allowed", msg: simpleMsg, args: []string{"cmd@example.test"}, code: ExitNoPerm, status: "5.7.1"},
		{name: "pipe target allowed but unsupported", msg: simpleMsg, args: []string{"cmd@example.test"},
			setup: func(e *mdaEnv) { e.cfg.Deliver.AllowPipeTargets = true }, code: ExitNoPerm, status: "5.3.3"},
		{name: "passwd file unreadable", msg: simpleMsg, args: []string{"a@example.test"},
			setup: func(e *mdaEnv) { e.cfg.PasswdFile = filepath.Join(e.outside, "missing") }, code: ExitTempFail, status: "4.3.5"},
		{name: "mail root missing", msg: simpleMsg, args: []string{"a@example.test"},
			setup: func(e *mdaEnv) { e.cfg.MailRoot = filepath.Join(e.outside, "missing") }, code: ExitTempFail, status: "4.3.0"},
		{name: "no recipient", msg: simpleMsg, code: ExitUsage, status: "5.3.0 no recipient", hasUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMDAEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			r := e.run(strings.NewReader(tt.msg), tt.env, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, tt.code, r.stderr)
			}
			if !strings.HasPrefix(r.firstLine(), tt.status) {
				t.Errorf("stderr first line %q, want prefix %q", r.firstLine(), tt.status)
			}
			if strings.Contains(r.stderr, "level=") {
				t.Errorf("log lines without -v on failure (they would end up in the bounce): %q", r.stderr)
			}
			if strings.Contains(r.stderr, e.outside) || (strings.Contains(r.stderr, e.mailRoot) && e.cfg.MailRoot == e.mailRoot) {
				t.Errorf("stderr names a path: %q", r.stderr)
			}
			e.noTrace()
			if tt.hasUsage {
				if !strings.Contains(r.stderr, "\nusage: deliver") {
					t.Errorf("no usage after the status line: %q", r.stderr)
				}
				return
			}
			// With -v the log line follows the status line.
			e2 := newMDAEnv(t)
			if tt.setup != nil {
				tt.setup(e2)
			}
			r2 := e2.run(strings.NewReader(tt.msg), tt.env, append([]string{"-v"}, tt.args...)...)
			if r2.code != tt.code || !strings.HasPrefix(r2.firstLine(), tt.status) || !strings.Contains(r2.stderr, "level=") {
				t.Errorf("-v: exit %d, stderr %q", r2.code, r2.stderr)
			}
		})
	}
}

func TestDeliverFolder(t *testing.T) {
	e := newMDAEnv(t)
	for _, f := range []string{"Sent", "Lists", "Lists/Go"} {
		if err := maildir.CreateFolder(e.maildirOf("a"), f); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		folder string
		dir    string
	}{
		{"Sent", ".Sent"},
		{"Lists.Go", ".Lists.Go"},
		{"Lists/Go", ".Lists.Go"},
		{"INBOX", ""},
		{"Missing", ""},      // falls back to INBOX, as dovecot-lda
		{"Bad..Name", ""},    // an invalid name falls back too
		{"../../escape", ""}, // and never leaves the Maildir
	}
	for _, tt := range tests {
		before := len(files(t, filepath.Join(e.maildirOf("a"), tt.dir, "new")))
		r := e.runString(simpleMsg, "-m", tt.folder, "a@example.test")
		if r.code != ExitOK {
			t.Fatalf("-m %s: exit %d, stderr %q", tt.folder, r.code, r.stderr)
		}
		after := len(files(t, filepath.Join(e.maildirOf("a"), tt.dir, "new")))
		if after != before+1 {
			t.Errorf("-m %s: %s/new went from %d to %d files", tt.folder, tt.dir, before, after)
		}
		if tt.dir == "" && tt.folder != "INBOX" && !strings.Contains(r.stderr, "folder_requested=") {
			t.Errorf("-m %s: fallback not logged: %q", tt.folder, r.stderr)
		}
	}
}

func TestDeliverSeveralRecipients(t *testing.T) {
	t.Run("one file per recipient, each with its Delivered-To", func(t *testing.T) {
		e := newMDAEnv(t)
		r := e.runString(simpleMsg, "-f", "s@sender.test", "a@example.test", "b@example.test")
		if r.code != ExitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		for _, u := range []string{"a", "b"} {
			got := onlyMessage(t, e.maildirOf(u))
			want := "Return-Path: <s@sender.test>\nDelivered-To: " + u + "@example.test\n" + simpleMsg
			if got != want {
				t.Errorf("%s got %q, want %q", u, got, want)
			}
		}
		e.noScratch()
	})
	t.Run("an alias's mailboxes share one hard-linked file", func(t *testing.T) {
		e := newMDAEnv(t)
		r := e.runString(simpleMsg, "-f", "s@sender.test", "list@example.test")
		if r.code != ExitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		pa := files(t, filepath.Join(e.maildirOf("a"), "new"))
		pb := files(t, filepath.Join(e.maildirOf("b"), "new"))
		if len(pa) != 1 || len(pb) != 1 {
			t.Fatalf("a has %q, b has %q", pa, pb)
		}
		if !sameFile(t, pa[0], pb[0]) {
			t.Errorf("%s and %s are not one hard-linked file", pa[0], pb[0])
		}
		if got := onlyMessage(t, e.maildirOf("a")); !strings.HasPrefix(got, "Return-Path: <s@sender.test>\nDelivered-To: list@example.test\n") {
			t.Errorf("message %q", got)
		}
	})
	t.Run("duplicate targets delivered once", func(t *testing.T) {
		e := newMDAEnv(t)
		if r := e.runString(simpleMsg, "both@example.test"); r.code != ExitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		onlyMessage(t, e.maildirOf("a"))
	})
	t.Run("worst outcome wins, temporary first", func(t *testing.T) {
		e := newMDAEnv(t)
		r := e.runString(simpleMsg, "a@example.test", "nobody@example.test", "q@example.test")
		if r.code != ExitTempFail {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "4.2.2 ") || !strings.HasPrefix(lines[1], "5.1.1 <nobody@example.test>") {
			t.Errorf("stderr %q", r.stderr)
		}
		// a@ was delivered; the MTA's retry will deliver it again
		// (at-least-once), which the doc states.
		onlyMessage(t, e.maildirOf("a"))
	})
	t.Run("permanent failure with a success", func(t *testing.T) {
		e := newMDAEnv(t)
		r := e.runString(simpleMsg, "a@example.test", "nobody@example.test")
		if r.code != ExitNoUser || !strings.HasPrefix(r.firstLine(), "5.1.1 ") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		onlyMessage(t, e.maildirOf("a"))
	})
	t.Run("bad data refused before any mailbox sees it", func(t *testing.T) {
		e := newMDAEnv(t)
		r := e.runString("Subject: a\n\n"+strings.Repeat("z", 100<<10)+"\x00", "a@example.test", "b@example.test")
		if r.code != ExitDataErr {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		for _, u := range []string{"a", "b"} {
			if got := files(t, filepath.Join(e.maildirOf(u), "new")); len(got) != 0 {
				t.Errorf("%s/new has %q", u, got)
			}
		}
		e.noScratch()
	})
}

// noScratch checks no multi-recipient scratch file is left in any tmp/.
func (e *mdaEnv) noScratch() {
	e.t.Helper()
	for _, u := range []string{"a", "b"} {
		if got := files(e.t, filepath.Join(e.maildirOf(u), "tmp")); len(got) != 0 {
			e.t.Errorf("%s/tmp has %q", u, got)
		}
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

func TestExplain(t *testing.T) {
	e := newMDAEnv(t)
	r := e.run(nil, nil, "--explain", "list@example.test")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"list@example.test", "a@example.test", "b@example.test", "alias"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("explain text lacks %q:\n%s", want, r.stdout)
		}
	}
	r = e.run(nil, nil, "--explain", "list@example.test", "--json")
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var res struct {
		Address string
		Targets []struct{ Kind, Address, Root string }
		Steps   []struct{ Rule string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("JSON: %v\n%s", err, r.stdout)
	}
	if res.Address != "list@example.test" || len(res.Targets) != 2 || res.Targets[0].Kind != "mailbox" ||
		res.Targets[0].Root != e.maildirOf("a") || len(res.Steps) == 0 {
		t.Errorf("JSON decision %+v", res)
	}
	r = e.run(nil, nil, "--explain", "nobody@example.test", "--json")
	if r.code != ExitOK || !strings.Contains(r.stdout, `"unknown"`) {
		t.Errorf("unknown: exit %d, out %q", r.code, r.stdout)
	}
	e.cfg.PasswdFile = filepath.Join(e.outside, "missing")
	if r = e.run(nil, nil, "--explain", "a@example.test"); r.code != ExitTempFail || !strings.HasPrefix(r.firstLine(), "4.3.5") {
		t.Errorf("unreadable passwd: exit %d, stderr %q", r.code, r.stderr)
	}
}

// repeatReader yields n bytes of a pattern without holding them.
type repeatReader struct {
	pattern []byte
	n       int64
	off     int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = r.pattern[r.off]
		r.off = (r.off + 1) % len(r.pattern)
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// TestDeliverLarge streams a generated 100 MB message and checks that the
// delivery's allocations stay far below the message size.
func TestDeliverLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB delivery skipped in -short mode")
	}
	e := newMDAEnv(t)
	e.cfg.Deliver.MaxMessageSize = 0
	const size = 100 << 20
	line := []byte(strings.Repeat("0123456789abcdef", 4) + "\n")
	msg := io.MultiReader(strings.NewReader("Subject: big\n\n"), &repeatReader{pattern: line, n: size})
	var before, after runtimeMem
	before.read()
	r := e.run(msg, nil, "-f", "s@sender.test", "a@example.test")
	after.read()
	if r.code != ExitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	got := files(t, filepath.Join(e.maildirOf("a"), "new"))
	if len(got) != 1 {
		t.Fatalf("new/ has %q", got)
	}
	fi, err := os.Stat(got[0])
	if err != nil {
		t.Fatal(err)
	}
	wantSize := int64(len("Return-Path: <s@sender.test>\nDelivered-To: a@example.test\nSubject: big\n\n")) + size
	if fi.Size() != wantSize {
		t.Errorf("size %d, want %d", fi.Size(), wantSize)
	}
	if alloc := after.total - before.total; alloc > 16<<20 {
		t.Errorf("delivery allocated %d bytes for a %d-byte message: not streamed", alloc, size)
	}
}

// TestDeliverDiskFull fills a small tmpfs (root only): exit 75 with 4.3.1,
// nothing in new/, tmp/ cleaned.
func TestDeliverDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	e := newMDAEnv(t)
	mnt := filepath.Join(filepath.Dir(e.mailRoot), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	e.cfg.MailRoot = mnt
	maildirA := filepath.Join(mnt, "example.test", "a")
	msg := "Subject: big\n\n" + strings.Repeat("x", 1<<20)
	r := e.runString(msg, "-f", "s@sender.test", "a@example.test")
	if r.code != ExitTempFail || !strings.HasPrefix(r.firstLine(), "4.3.1 mail system full") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, sub := range []string{"new", "tmp", "cur"} {
		if got := files(t, filepath.Join(maildirA, sub)); len(got) != 0 {
			t.Errorf("%s/ holds %q", sub, got)
		}
	}
	// A small message still fits: the failure left no space behind.
	if r := e.runString(simpleMsg, "a@example.test"); r.code != ExitOK {
		t.Errorf("small message after the full one: exit %d, stderr %q", r.code, r.stderr)
	}
}

// runtimeMem samples the process's cumulative heap allocation.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	m.total = st.TotalAlloc
}
