package pop3d

import (
	"strings"
	"testing"

	"mailroom/internal/config"
	"mailroom/internal/testutil"
)

// TestApply: settings applied on SIGHUP reach the sessions that start
// afterwards; a session in flight keeps the ones it started with, and the
// fields mailroom.conf does not set stay.
func TestApply(t *testing.T) {
	e := newTestEnv(t, nil)
	old := e.dial()
	must(t, old.line(), "+OK pop.test ")

	cfg := config.Default()
	cfg.Hostname = "pop.reloaded"
	cfg.PlaintextAuthOnLoopback = true
	cfg.Pop3d.Expire = "30"
	e.srv.Apply(cfg, e.currentUsers, e.srv.TLS)

	c := e.dial()
	must(t, c.line(), "+OK pop.reloaded ")
	c.send("CAPA\r\n")
	must(t, c.line(), "+OK")
	if capa := c.multi(); !strings.Contains(capa, "EXPIRE 30") {
		t.Errorf("CAPA after Apply lacks EXPIRE 30:\n%s", capa)
	}
	old.send("CAPA\r\n")
	must(t, old.line(), "+OK")
	if capa := old.multi(); strings.Contains(capa, "EXPIRE") {
		t.Errorf("the session in flight took the new EXPIRE:\n%s", capa)
	}
	if s := e.srv.snapshot(); s.AuthDelay != -1 || s.Logger != e.srv.Logger || s.shared != e.srv.shared {
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
