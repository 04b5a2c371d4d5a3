package deliver

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
	conf := e.writeConfigFile("[deliver]\nmax_message_size = 1k\n")
	bad := filepath.Join(filepath.Dir(e.mailRoot), "bad.conf")
	mustWrite(t, bad, "no_such_key = 1\n")
	// With or without a syslog daemon on this machine (the logger falls
	// back to stderr), the status line stays first and success prints
	// nothing before it.
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
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, tt.env...)
			cmd.Stdin = strings.NewReader(tt.stdin)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, errb.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.stdout)
			}
			if !strings.HasPrefix(errb.String(), tt.stderr) {
				t.Errorf("stderr %q, want prefix %q", errb.String(), tt.stderr)
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
