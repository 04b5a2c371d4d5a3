package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/listen"
	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
)

// ioLimit bounds every wait of these tests.
const ioLimit = 10 * time.Second

// fakeServer greets with the hostname of the configuration the session
// started with, answers "host" with it again, "QUIT" with "bye" and the
// end of the session. Reload refuses a configuration whose passwd_file
// does not exist, as a real server refuses tables it cannot load.
type fakeServer struct {
	cfg   atomic.Pointer[config.Config]
	store atomic.Pointer[tlsconf.Store]

	mu       sync.Mutex
	stopping bool
	conns    map[net.Conn]bool
	idle     chan struct{} // closed when stopping and conns is empty
}

func (f *fakeServer) ServeConn(c net.Conn, service string) {
	cfg := f.cfg.Load()
	f.mu.Lock()
	if f.stopping {
		f.mu.Unlock()
		c.Close()
		return
	}
	f.conns[c] = true
	f.mu.Unlock()
	defer func() {
		c.Close()
		f.mu.Lock()
		delete(f.conns, c)
		if f.stopping && len(f.conns) == 0 {
			close(f.idle)
		}
		f.mu.Unlock()
	}()
	fmt.Fprintf(c, "hello %s %s\r\n", service, cfg.Hostname)
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(line) == "QUIT" {
			fmt.Fprintf(c, "bye\r\n")
			return
		}
		fmt.Fprintf(c, "host %s\r\n", cfg.Hostname)
	}
}

func (f *fakeServer) Reload(cfg *config.Config, store *tlsconf.Store) error {
	if _, err := os.Stat(cfg.PasswdFile); err != nil {
		return err
	}
	f.cfg.Store(cfg)
	f.store.Store(store)
	return nil
}

// Shutdown waits for the sessions; at ctx's end it closes them.
func (f *fakeServer) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.stopping = true
	if len(f.conns) == 0 {
		close(f.idle)
	}
	f.mu.Unlock()
	select {
	case <-f.idle:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		for c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		<-f.idle
		return ctx.Err()
	}
}

// harness runs a daemon of testSpec on loopback in this process.
type harness struct {
	t      *testing.T
	dir    string
	conf   string
	logs   *testutil.SyncBuffer
	srv    *fakeServer
	plain  string // address of the plain service
	cancel context.CancelFunc
	done   chan error
}

// writeConfig writes mailroom.conf: the main keys, then extra (sections).
func (h *harness) writeConfig(main, extra string) {
	h.t.Helper()
	if !strings.Contains(main, "passwd_file") {
		main += "\npasswd_file = " + filepath.Join(h.dir, "passwd")
	}
	text := fmt.Sprintf("mail_root = %s\nspool_dir = %s\n%s\n[imapd]\nlisten_imap = 127.0.0.1:143\n%s",
		h.dir, filepath.Join(h.dir, "spool"), main, extra)
	if err := os.WriteFile(h.conf, []byte(text), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func startHarness(t *testing.T, main, extra string, timeout time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), logs: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	h.conf = filepath.Join(h.dir, "mailroom.conf")
	if err := os.WriteFile(filepath.Join(h.dir, "passwd"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.writeConfig(main, extra)
	cfg, err := config.Load(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec(false)
	spec.Start = func(cfg *config.Config, store *tlsconf.Store, _ *slog.Logger) (Server, error) {
		h.srv = &fakeServer{conns: map[net.Conn]bool{}, idle: make(chan struct{})}
		h.srv.cfg.Store(cfg)
		h.srv.store.Store(store)
		return h.srv, nil
	}
	spec.DropPrivileges = func(*config.Config) error { return nil }
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		h.done <- Run(ctx, spec, cfg, Options{
			ConfigPath:      h.conf,
			Listen:          []string{"127.0.0.1:0"},
			Logger:          slog.New(slog.NewTextHandler(h.logs, nil)),
			ShutdownTimeout: timeout,
			Ready:           func(s *listen.Set) { ready <- s.Listeners[0].Addr().String() },
		})
	}()
	select {
	case h.plain = <-ready:
	case err := <-h.done:
		t.Fatalf("Run: %v\n%s", err, h.logs)
	case <-time.After(ioLimit):
		t.Fatal("not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(ioLimit):
			t.Error("Run did not return")
		}
		if t.Failed() {
			t.Logf("log:\n%s", h.logs)
		}
	})
	return h
}

// waitLog waits for a log line holding every part, after the first skip
// bytes of the log.
func (h *harness) waitLog(skip int, parts ...string) {
	h.t.Helper()
	ok := testutil.WaitFor(ioLimit, func() bool {
		for _, line := range strings.Split(h.logs.String()[skip:], "\n") {
			if containsAll(line, parts) {
				return true
			}
		}
		return false
	})
	if !ok {
		h.t.Fatalf("no log line with %q", parts)
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

// hup sends SIGHUP to this process (the daemon catches it) and waits for
// the reload's outcome, a log line holding want.
func (h *harness) hup(want ...string) {
	h.t.Helper()
	mark := len(h.logs.String())
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		h.t.Fatal(err)
	}
	h.waitLog(mark, want...)
}

// client is one connection to the daemon.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func (h *harness) dial() *client {
	h.t.Helper()
	c, err := net.DialTimeout("tcp", h.plain, ioLimit)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioLimit))
	return &client{t: h.t, c: c, r: bufio.NewReader(c)}
}

func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *client) ask(cmd string) string {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.c, "%s\r\n", cmd); err != nil {
		c.t.Fatal(err)
	}
	return c.line()
}

func expect(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestReload: a good file applies to new sessions while the one in flight
// keeps its settings; fixed keys stay and are named; a bad file, or one
// whose tables do not load, is refused and the old one stays in force.
func TestReload(t *testing.T) {
	h := startHarness(t, "hostname = one.example", "", 0)
	old := h.dial()
	expect(t, old.line(), "hello plain one.example")

	h.writeConfig("hostname = two.example\nlog_level = debug", "max_connections = 7\n")
	h.hup("msg=reload", "what=config", "file="+h.conf)
	for _, key := range []string{"key=log_level", `key="[testd] max_connections"`} {
		h.waitLog(0, "level=WARN", "msg=reload", key, "needs a restart")
	}
	if strings.Contains(h.logs.String(), "listen_plain") {
		t.Error("an unchanged listen address was reported as changed")
	}
	expect(t, h.dial().line(), "hello plain two.example")
	expect(t, old.ask("host"), "host one.example")
	if got := h.srv.cfg.Load(); got.LogLevel != "info" || got.Imapd.MaxConnections == 7 {
		t.Errorf("fixed keys applied: log_level %q max_connections %d", got.LogLevel, got.Imapd.MaxConnections)
	}

	for _, tc := range []struct{ name, main, err string }{
		{"syntax", "hostname = three.example\nno equals sign here", "level=ERROR"},
		{"check", "hostname = three.example\nlog_level = loud", "level=ERROR"},
		{"tables", "hostname = three.example\npasswd_file = " + filepath.Join(h.dir, "missing"), "missing"},
		{"certificate", "hostname = three.example\ntls_cert = /nonexistent/cert.pem\ntls_key = /nonexistent/key.pem", "nonexistent"},
	} {
		h.writeConfig(tc.main, "")
		h.hup("level=ERROR", "msg=reload", "what=config", tc.err, "keeping the old configuration")
		expect(t, h.dial().line(), "hello plain two.example")
	}
	expect(t, old.ask("QUIT"), "bye")
}

// TestReloadTLS: a reload that names a certificate gives the server a
// store loaded from the new paths.
func TestReloadTLS(t *testing.T) {
	h := startHarness(t, "", "", 0)
	if h.srv.store.Load() != nil {
		t.Fatal("a store without tls_cert")
	}
	cert, key := filepath.Join(h.dir, "cert.pem"), filepath.Join(h.dir, "key.pem")
	if err := tlsconf.WriteSelfSigned(cert, key, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	h.writeConfig("tls_cert = "+cert+"\ntls_key = "+key, "")
	h.hup("level=INFO", "msg=reload", "what=config")
	store := h.srv.store.Load()
	if store == nil || store.Certificate() == nil {
		t.Fatal("no certificate after the reload")
	}
}

// TestStop: at the stop no new connection is accepted, a session in
// flight may finish, and Run returns nil.
func TestStop(t *testing.T) {
	h := startHarness(t, "hostname = one.example", "", ioLimit)
	busy := h.dial()
	expect(t, busy.line(), "hello plain one.example")
	h.cancel()
	h.waitLog(0, "msg=stop")
	// The listener is closed: a new client is refused by the kernel.
	if !testutil.WaitFor(ioLimit, func() bool {
		c, err := net.DialTimeout("tcp", h.plain, ioLimit)
		if err == nil {
			c.Close()
		}
		return err != nil
	}) {
		t.Error("still accepting after the stop")
	}
	expect(t, busy.ask("host"), "host one.example")
	expect(t, busy.ask("QUIT"), "bye")
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		h.done <- err // for the cleanup
	case <-time.After(ioLimit):
		t.Fatal("Run did not return once the session was over")
	}
}

// TestStopBound: a session that does not finish is cut at the shutdown
// timeout, and the stop is still clean.
func TestStopBound(t *testing.T) {
	h := startHarness(t, "", "", 100*time.Millisecond)
	stuck := h.dial()
	stuck.line()
	start := time.Now()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		h.done <- err
	case <-time.After(ioLimit):
		t.Fatal("Run did not return at the bound")
	}
	if d := time.Since(start); d > ioLimit/2 {
		t.Errorf("stop took %v", d)
	}
	if _, err := stuck.r.ReadString('\n'); !errors.Is(err, net.ErrClosed) && err == nil {
		t.Error("the stuck session was not closed")
	}
	h.waitLog(0, "level=WARN", "msg=stop", "deadline exceeded")
}

// TestLimits: over max_connections the client gets the service's
// refusal, with the settings in force.
func TestLimits(t *testing.T) {
	h := startHarness(t, "hostname = one.example", "max_connections = 1\n", 0)
	first := h.dial()
	first.line()
	expect(t, h.dial().line(), "BUSY one.example")
	h.waitLog(0, "msg=reject", "service=plain", "too many connections")
}

// TestImplicitTLSNeedsCertificate: a listener of an implicit-TLS service
// without a certificate is refused at start.
func TestImplicitTLSNeedsCertificate(t *testing.T) {
	cfg := config.Default()
	cfg.Imapd.ListenIMAP = nil
	cfg.Imapd.ListenIMAPS = []string{"127.0.0.1:0"}
	spec := testSpec(false)
	spec.Start = func(*config.Config, *tlsconf.Store, *slog.Logger) (Server, error) {
		t.Fatal("started without a certificate")
		return nil, nil
	}
	err := Run(context.Background(), spec, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "secure") || !strings.Contains(err.Error(), "needs tls_cert") {
		t.Errorf("Run: %v, want secure needs tls_cert", err)
	}
}
