package logging

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeSyslog is a syslog daemon's socket: a unixgram listener in a temp
// directory.
type fakeSyslog struct {
	addr string
	conn *net.UnixConn
}

func newFakeSyslog(t *testing.T) *fakeSyslog {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeSyslog{addr: addr, conn: conn}
}

// next returns the next datagram, failing after 5s.
func (f *fakeSyslog) next(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	if err := f.conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := f.conn.Read(buf)
	if err != nil {
		t.Fatalf("fake syslog: %v", err)
	}
	return string(buf[:n])
}

// none checks that nothing more arrives (the sender is synchronous: a
// datagram written before this call is already queued).
func (f *fakeSyslog) none(t *testing.T) {
	t.Helper()
	if err := f.conn.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	if n, err := f.conn.Read(buf); err == nil {
		t.Errorf("unexpected datagram %q", buf[:n])
	}
}

var header = regexp.MustCompile(`^<(\d+)>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) ([^\[\]: ]+)\[(\d+)\]: (.*)$`)

func TestSyslog(t *testing.T) {
	fake := newFakeSyslog(t)
	var stderr bytes.Buffer
	l, err := Open(Options{Format: "syslog", Level: "debug", Stderr: &stderr, Tag: "deliver", SyslogAddr: fake.addr})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		log  func()
		pri  int // facility mail (2) * 8 + RFC 5424 severity
		body string
	}{
		{func() { l.Debug("probe", "n", 1) }, 2*8 + 7, "msg=probe n=1"},
		{func() { l.Info("delivery", "from", "a@b", "to", "c d@e") }, 2*8 + 6, `msg=delivery from=a@b to="c d@e"`},
		{func() { l.Warn("delivery", "status", "deferred") }, 2*8 + 4, "msg=delivery status=deferred"},
		{func() { l.Error("config", "err", "line\nbreak") }, 2*8 + 3, `msg=config err="line\nbreak"`},
		{func() { l.Log(t.Context(), slog.LevelInfo+2, "between") }, 2*8 + 6, "msg=between"},
		{func() { l.Log(t.Context(), slog.LevelError+4, "worse") }, 2*8 + 3, "msg=worse"},
		{func() { l.With("conn", 7).WithGroup("g").Info("x", "k", "v") }, 2*8 + 6, "msg=x conn=7 g.k=v"},
	}
	for _, tt := range tests {
		tt.log()
		got := fake.next(t)
		m := header.FindStringSubmatch(got)
		if m == nil {
			t.Errorf("datagram %q is not <PRI>Mmm dd hh:mm:ss tag[pid]: msg", got)
			continue
		}
		if m[1] != fmt.Sprint(tt.pri) || m[3] != "deliver" || m[4] != fmt.Sprint(os.Getpid()) || m[5] != tt.body {
			t.Errorf("datagram %q: want priority %d, tag deliver, pid %d, body %q", got, tt.pri, os.Getpid(), tt.body)
		}
		if _, err := time.Parse(time.Stamp, m[2]); err != nil {
			t.Errorf("timestamp %q: %v", m[2], err)
		}
	}
	fake.none(t)
	if stderr.Len() != 0 {
		t.Errorf("syslog logger wrote to stderr: %q", stderr.String())
	}
}

func TestSyslogLevelFilter(t *testing.T) {
	fake := newFakeSyslog(t)
	l, err := Open(Options{Format: "syslog", Level: "warn", Stderr: &bytes.Buffer{}, Tag: "t", SyslogAddr: fake.addr})
	if err != nil {
		t.Fatal(err)
	}
	l.Info("dropped")
	l.Warn("kept")
	if got := fake.next(t); !strings.HasSuffix(got, ": msg=kept") {
		t.Errorf("got %q, want the WARN record only", got)
	}
	fake.none(t)
}

func TestSyslogFallback(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"absent", func(t *testing.T) string { return filepath.Join(t.TempDir(), "no-such-log") }},
		{"not listening", func(t *testing.T) string {
			// A socket file whose daemon has gone: connection refused.
			f := newFakeSyslog(t)
			f.conn.Close()
			return f.addr
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			addr := tc.addr(t)
			l, err := Open(Options{Format: "syslog", Level: "info", Stderr: &stderr, Tag: "deliver", SyslogAddr: addr})
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") ||
				!strings.Contains(lines[0], `msg="syslog unavailable, logging to stderr"`) || !strings.Contains(lines[0], "addr="+addr) {
				t.Fatalf("fallback warning: %q, want one WARN line naming %s", stderr.String(), addr)
			}
			stderr.Reset()
			l.Info("delivery", "status", "sent")
			if got := stderr.String(); !strings.Contains(got, "level=INFO msg=delivery status=sent\n") {
				t.Errorf("after fallback, stderr got %q", got)
			}
		})
	}
}

// TestSyslogDaemonGone: a line the daemon cannot take goes to stderr.
func TestSyslogDaemonGone(t *testing.T) {
	fake := newFakeSyslog(t)
	var stderr bytes.Buffer
	l, err := Open(Options{Format: "syslog", Level: "info", Stderr: &stderr, Tag: "t", SyslogAddr: fake.addr})
	if err != nil {
		t.Fatal(err)
	}
	fake.conn.Close()
	if err := os.Remove(fake.addr); err != nil {
		t.Fatal(err)
	}
	l.Info("delivery", "to", "a@b")
	if got := stderr.String(); got != "msg=delivery to=a@b\n" {
		t.Errorf("stderr = %q, want the undeliverable line", got)
	}
}

// TestSyslogReconnect: a daemon restarted on the same path gets the next
// line.
func TestSyslogReconnect(t *testing.T) {
	fake := newFakeSyslog(t)
	var stderr bytes.Buffer
	l, err := Open(Options{Format: "syslog", Level: "info", Stderr: &stderr, Tag: "t", SyslogAddr: fake.addr})
	if err != nil {
		t.Fatal(err)
	}
	fake.conn.Close()
	if err := os.Remove(fake.addr); err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: fake.addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	fake.conn = conn
	l.Info("again")
	if got := fake.next(t); !strings.HasSuffix(got, ": msg=again") {
		t.Errorf("after restart got %q", got)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestLogfmt(t *testing.T) {
	var stderr bytes.Buffer
	l, err := New("logfmt", "info", &stderr, "deliver")
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("delivery", "to", "a@b")
	got := stderr.String()
	if !regexp.MustCompile(`^time=\S+ level=INFO msg=delivery to=a@b\n$`).MatchString(got) {
		t.Errorf("logfmt line %q", got)
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct{ format, level, want string }{
		{"json", "info", `unknown format "json"`},
		{"logfmt", "INFO", `unknown level "INFO"`},
		{"syslog", "", `unknown level ""`},
		{"", "info", `unknown format ""`},
	} {
		if _, err := New(tc.format, tc.level, &bytes.Buffer{}, "x"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %q) = %v, want error containing %q", tc.format, tc.level, err, tc.want)
		}
	}
}

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  int
	}{
		{slog.LevelDebug - 4, 7}, {slog.LevelDebug, 7}, {slog.LevelInfo - 1, 7},
		{slog.LevelInfo, 6}, {slog.LevelWarn - 1, 6}, {slog.LevelWarn, 4},
		{slog.LevelError - 1, 4}, {slog.LevelError, 3}, {slog.LevelError + 8, 3},
	} {
		if got := int(severity(tc.level)); got != tc.want {
			t.Errorf("severity(%v) = %d, want %d", tc.level, got, tc.want)
		}
	}
}
