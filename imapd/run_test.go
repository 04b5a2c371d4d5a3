package imapd

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/testutil"
	"mailroom/maildir"
)

// TestNewServerFromConfig: every [imapd] key that is a session setting
// reaches the Server.
func TestNewServerFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.PlaintextAuthOnLoopback = true
	cfg.Imapd.LoginTimeout = 7 * time.Second
	cfg.Imapd.IdleTimeout = 45 * time.Minute
	cfg.Imapd.MaxErrors = 3
	cfg.Imapd.MaxAuthFailures = 2
	cfg.Imapd.AppendLimit = 1 << 20
	s := NewServer(cfg, nil, nil, nil)
	got := []any{s.PlaintextAuthOnLoopback, s.loginTimeout(), s.idleTimeout(), s.maxBad(), s.maxAuthFailures(), s.appendLimit(), s.maxPerUser()}
	want := []any{true, 7 * time.Second, 45 * time.Minute, 3, 2, int64(1 << 20), DefaultMaxConnectionsPerUser}
	if !slices.Equal(got, want) {
		t.Errorf("server settings %v, want %v", got, want)
	}
	// The wire limit follows append_limit.
	if l := s.limits(); l.MaxMessage != 1<<20 {
		t.Errorf("wire MaxMessage %d, want %d", l.MaxMessage, 1<<20)
	}
}

// TestMaxConnectionsPerUser: past the limit a login is refused with NO
// [LIMIT] (the session stays usable), and a slot comes back when a
// session ends.
func TestMaxConnectionsPerUser(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.MaxConnectionsPerUser = 2 })
	e.addUser("bob@example.org", "bobpw")
	a, b := e.login(), e.login()
	c := e.dial()
	c.line()
	must(t, last(c.cmd("1", "LOGIN "+testUser+" "+testPass)), "1 NO [LIMIT]")
	// Another user is not affected, and the refused session may still
	// log in as someone else.
	must(t, last(c.cmd("2", "LOGIN bob@example.org bobpw")), "2 OK")
	must(t, last(a.cmd("3", "LOGOUT")), "3 OK")
	a.expectEOF()
	// The slot is released before the tagged LOGOUT reply is sent.
	d := e.dial()
	d.line()
	must(t, last(d.cmd("4", "LOGIN "+testUser+" "+testPass)), "4 OK")
	must(t, last(b.cmd("5", "NOOP")), "5 OK")
}

// TestIdleWithoutInotify: when no inotify instance is left, IDLE falls
// back to looking at the Maildir and still reports a delivery.
func TestIdleWithoutInotify(t *testing.T) {
	saved := watchMailbox
	watchMailbox = func(*maildir.Mailbox, func()) (*maildir.Watcher, error) {
		return nil, errors.New("inotify: too many open files")
	}
	t.Cleanup(func() { watchMailbox = saved })
	e := newTestEnv(t, nil)
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	c.send("i IDLE\r\n")
	must(t, c.line(), "+ ")
	deliver(t, e.root(), "", fixture1)
	must(t, c.line(), "* 1 EXISTS") // within ioTimeout
	c.send("DONE\r\n")
	r := c.until("i")
	must(t, last(r), "i OK")
}

// TestApply: settings applied on SIGHUP reach the sessions that start
// afterwards; a session in flight keeps the ones it started with.
func TestApply(t *testing.T) {
	e := newTestEnv(t, nil)
	old := e.login()

	cfg := config.Default()
	cfg.PlaintextAuthOnLoopback = true
	cfg.Imapd.AppendLimit = 12345
	e.srv.Apply(cfg, e.currentUsers, e.srv.TLS)

	c := e.login()
	if got := strings.Join(c.cmd("1", "CAPABILITY"), "\n"); !strings.Contains(got, "APPENDLIMIT=12345") {
		t.Errorf("after Apply: %s", got)
	}
	if got := strings.Join(old.cmd("1", "CAPABILITY"), "\n"); strings.Contains(got, "APPENDLIMIT=12345") || !strings.Contains(got, "APPENDLIMIT=") {
		t.Errorf("the session in flight: %s", got)
	}
	if s := e.srv.snapshot(); s.AuthDelay != -1 || s.shared != e.srv.shared {
		t.Errorf("Apply lost a field mailroom.conf does not set: AuthDelay %v", s.AuthDelay)
	}
}

// TestCloneCopiesEverySetting: a field added to Server and forgotten in
// clone would silently fall back to its default after the first SIGHUP.
func TestCloneCopiesEverySetting(t *testing.T) {
	s := &Server{}
	testutil.FillExported(t, s)
	for _, name := range testutil.ZeroExported(s.clone()) {
		t.Errorf("clone drops %s", name)
	}
}
