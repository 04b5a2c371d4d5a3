package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"mailroom/internal/account"
	"mailroom/internal/config"
)

// recordingServer is an AccountServer that remembers what it was given.
type recordingServer struct {
	implicit []bool
	dbs      []*account.DB
	shutErr  error
}

func (r *recordingServer) ServeConn(c net.Conn, implicitTLS bool) {
	r.implicit = append(r.implicit, implicitTLS)
	_ = c.Close()
}

func (r *recordingServer) UseAccounts(_ *config.Config, db *account.DB, _ func() *tls.Config) {
	r.dbs = append(r.dbs, db)
}

func (r *recordingServer) Shutdown(context.Context) error { return r.shutErr }

var errClosedForTest = errors.New("server closed")

func TestAccountStart(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.MailRoot = dir
	cfg.PasswdFile = filepath.Join(dir, "passwd")
	rec := &recordingServer{}
	start := AccountStart("pop3s", errClosedForTest, func(_ *config.Config, db *account.DB, _ func() *tls.Config, _ *slog.Logger) AccountServer {
		rec.dbs = append(rec.dbs, db)
		return rec
	})
	log := slog.New(slog.DiscardHandler)
	if _, err := start(cfg, nil, log); err == nil {
		t.Fatal("started without a passwd file")
	}
	if err := os.WriteFile(cfg.PasswdFile, []byte("alice@example.org:{PLAIN}pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := start(cfg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.dbs) != 1 || len(rec.dbs[0].Users()) != 1 {
		t.Fatalf("the server got %d tables, want the one with alice", len(rec.dbs))
	}

	for _, service := range []string{"pop3", "pop3s"} {
		a, b := net.Pipe()
		srv.ServeConn(a, service)
		_ = b.Close()
	}
	if len(rec.implicit) != 2 || rec.implicit[0] || !rec.implicit[1] {
		t.Errorf("implicit TLS per connection = %v, want [false true]", rec.implicit)
	}

	// A reload whose passwd file does not load changes nothing.
	bad := *cfg
	bad.PasswdFile = filepath.Join(dir, "missing")
	if err := srv.Reload(&bad, nil); err == nil || len(rec.dbs) != 1 {
		t.Errorf("reload with a missing passwd file: err %v, %d tables given", err, len(rec.dbs))
	}
	if err := os.WriteFile(cfg.PasswdFile, []byte("alice@example.org:{PLAIN}pw\nbob@example.org:{PLAIN}pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(cfg, nil); err != nil || len(rec.dbs) != 2 || len(rec.dbs[1].Users()) != 2 {
		t.Errorf("reload: err %v, %d tables given, want the new one with two users", err, len(rec.dbs))
	}

	rec.shutErr = errClosedForTest
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a server already shut: %v, want nil", err)
	}
	rec.shutErr = errors.New("stuck")
	if err := srv.Shutdown(context.Background()); err == nil {
		t.Error("Shutdown hid the server's failure")
	}
}
