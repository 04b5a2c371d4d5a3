package deliver

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailroom/internal/logging"
)

// syslogListener is a fake syslog daemon: a unixgram socket in a temp dir.
func syslogListener(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return addr, conn
}

// datagrams reads what has arrived; the logger writes synchronously, so
// everything Run logged is already queued.
func datagrams(t *testing.T, conn *net.UnixConn) []string {
	t.Helper()
	var got []string
	buf := make([]byte, 64<<10)
	for i := 0; i < 100; i++ {
		if err := conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(buf[:n]))
	}
	t.Fatal("too many datagrams")
	return nil
}

func (e *mdaEnv) runWithLogger(newLogger func(io.Writer) (*slog.Logger, error), msg string, args ...string) runResult {
	e.t.Helper()
	opt, err := ParseArgs(args)
	if err != nil {
		e.t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Run(e.cfg, opt, System{Stdin: strings.NewReader(msg), Stdout: &out, Stderr: &errb, NewLogger: newLogger})
	return runResult{code, out.String(), errb.String()}
}

// TestSyslogLogging: with log_format = syslog every summary line goes to
// the syslog daemon, failures included, and stderr carries only the status.
func TestSyslogLogging(t *testing.T) {
	addr, conn := syslogListener(t)
	e := newMDAEnv(t)
	syslogger := func(w io.Writer) (*slog.Logger, error) {
		return logging.Open(logging.Options{Format: "syslog", Level: "info", Stderr: w, Tag: "deliver", SyslogAddr: addr})
	}

	r := e.runWithLogger(syslogger, simpleMsg, "-f", "s@sender.test", "a@example.test")
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("delivery: exit %d, stderr %q (want nothing: the line went to syslog)", r.code, r.stderr)
	}
	got := datagrams(t, conn)
	if len(got) != 1 || !strings.HasPrefix(got[0], "<22>") || !strings.Contains(got[0], " deliver[") ||
		!strings.Contains(got[0], "msg=delivery from=s@sender.test to=a@example.test mailbox=a@example.test folder=INBOX status=sent path=") {
		t.Errorf("syslog got %q, want one mail.info summary line", got)
	}

	for _, verbose := range []bool{false, true} {
		args := []string{"zz@example.test"}
		if verbose {
			args = append([]string{"-v"}, args...)
		}
		r = e.runWithLogger(syslogger, simpleMsg, args...)
		if r.code != ExitNoUser || r.stderr != "5.1.1 <zz@example.test>: user unknown\n" {
			t.Errorf("unknown user (-v %v): exit %d, stderr %q; want the status line alone", verbose, r.code, r.stderr)
		}
		got = datagrams(t, conn)
		if len(got) != 1 || !strings.HasPrefix(got[0], "<20>") || !strings.Contains(got[0], "to=zz@example.test status=bounced dsn=5.1.1") {
			t.Errorf("unknown user (-v %v): syslog got %q, want one mail.warning line", verbose, got)
		}
	}
}

// TestSyslogFallbackKeepsStatusFirst: without a syslog daemon the logger
// writes its warning and the lines to the held-back stream, so stderr
// still starts with the status line and a failure shows no log lines.
func TestSyslogFallbackKeepsStatusFirst(t *testing.T) {
	e := newMDAEnv(t)
	absent := filepath.Join(t.TempDir(), "no-log")
	logger := func(w io.Writer) (*slog.Logger, error) {
		return logging.Open(logging.Options{Format: "syslog", Level: "info", Stderr: w, Tag: "deliver", SyslogAddr: absent})
	}
	r := e.runWithLogger(logger, simpleMsg, "zz@example.test")
	if r.code != ExitNoUser || r.stderr != "5.1.1 <zz@example.test>: user unknown\n" {
		t.Errorf("failure: exit %d, stderr %q", r.code, r.stderr)
	}
	r = e.runWithLogger(logger, simpleMsg, "a@example.test")
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != ExitOK || len(lines) != 2 || !strings.Contains(lines[0], "syslog unavailable") || !strings.Contains(lines[1], "msg=delivery") {
		t.Errorf("success: exit %d, stderr %q; want the fallback warning, then the summary line", r.code, r.stderr)
	}
}

func TestLoggerErrorIsTempFail(t *testing.T) {
	e := newMDAEnv(t)
	r := e.runWithLogger(func(io.Writer) (*slog.Logger, error) { return nil, errors.New("bad log_level") }, simpleMsg, "a@example.test")
	if r.code != ExitTempFail || !strings.HasPrefix(r.stderr, "4.3.5 mail system configuration error: bad log_level") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if got := files(t, filepath.Join(e.maildirOf("a"), "new")); len(got) != 0 {
		t.Errorf("delivered despite the logger error: %q", got)
	}
}

// TestLogLevel: log_level = warn hides the success line, not the failure.
func TestLogLevel(t *testing.T) {
	e := newMDAEnv(t)
	e.cfg.LogLevel = "warn"
	if r := e.runString(simpleMsg, "a@example.test"); r.code != ExitOK || r.stderr != "" {
		t.Errorf("success at warn: exit %d, stderr %q", r.code, r.stderr)
	}
	r := e.runString(simpleMsg, "-v", "zz@example.test")
	if r.code != ExitNoUser || !strings.Contains(r.stderr, "level=WARN msg=delivery") {
		t.Errorf("failure at warn with -v: exit %d, stderr %q", r.code, r.stderr)
	}
}
