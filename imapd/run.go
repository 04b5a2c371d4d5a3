package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"time"

	"mailroom/internal/account"
	"mailroom/internal/config"
	"mailroom/internal/daemon"
	"mailroom/internal/privs"
	"mailroom/internal/tlsconf"
)

// Service names, as systemd's FileDescriptorName= and --listen name=ADDR
// spell them.
const (
	ServiceIMAP  = "imap"  // STARTTLS (port 143)
	ServiceIMAPS = "imaps" // implicit TLS (port 993)
)

// ShutdownTimeout bounds how long SIGTERM waits for sessions to finish
// the command in flight.
const ShutdownTimeout = 30 * time.Second

// Spec is the imapd program for internal/daemon: the services, the
// [imapd] connection limits, the drop to the owner of mail_root, and a
// Server whose passwd file and settings SIGHUP replaces for new sessions.
func Spec() *daemon.Spec {
	return &daemon.Spec{
		Name:  "imapd",
		Usage: "IMAP4rev1 and IMAP4rev2 server over Maildirs",
		Services: []daemon.Service{
			{
				Name:  ServiceIMAP,
				Addrs: func(c *config.Config) *[]string { return &c.Imapd.ListenIMAP },
				// RFC 9051 §7.1.5: BYE as the greeting refuses the session.
				Reject: func(*config.Config) string { return "* BYE [UNAVAILABLE] too many connections" },
			},
			{Name: ServiceIMAPS, ImplicitTLS: true, Addrs: func(c *config.Config) *[]string { return &c.Imapd.ListenIMAPS }},
		},
		// A single connection (inetd, Accept=yes) is imap unless told.
		SingleService: ServiceIMAP,
		Limits: func(c *config.Config) (int64, int64) {
			return c.Imapd.MaxConnections, c.Imapd.MaxConnectionsPerClient
		},
		Fixed: []daemon.Fixed{
			{Key: "[imapd] max_connections", Field: func(c *config.Config) any { return &c.Imapd.MaxConnections }},
			{Key: "[imapd] max_connections_per_client", Field: func(c *config.Config) any { return &c.Imapd.MaxConnectionsPerClient }},
		},
		Start:           start,
		DropPrivileges:  func(c *config.Config) error { return privs.DropToMail(c.MailRoot, c.Smtpd.User) },
		ShutdownTimeout: ShutdownTimeout,
	}
}

// Run is the imapd program (see daemon.Run).
func Run(ctx context.Context, cfg *config.Config, opts daemon.Options) error {
	return daemon.Run(ctx, Spec(), cfg, opts)
}

// ErrRoot is returned by Run when it would have to serve as root.
var ErrRoot = privs.ErrRoot

// program is a Server as internal/daemon drives it.
type program struct {
	srv *Server
	log *slog.Logger
}

// start reads the passwd file (before privileges drop: it may be root's
// alone) and builds the server.
func start(cfg *config.Config, store *tlsconf.Store, log *slog.Logger) (daemon.Server, error) {
	db, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if err != nil {
		return nil, err
	}
	return &program{srv: NewServer(cfg, usersOf(db), tlsOf(store), log), log: log}, nil
}

func (p *program) ServeConn(c net.Conn, service string) {
	p.srv.ServeConn(c, service == ServiceIMAPS)
}

// Reload reads the passwd file cfg names; new sessions get it, cfg's
// settings and store's certificate.
func (p *program) Reload(cfg *config.Config, store *tlsconf.Store) error {
	db, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if err != nil {
		p.log.Error("reload", "what", "tables", "file", cfg.PasswdFile, "err", err)
		return err
	}
	p.srv.Apply(cfg, usersOf(db), tlsOf(store))
	p.log.Info("reload", "what", "tables", "file", cfg.PasswdFile, "users", len(db.Users()))
	return nil
}

func (p *program) Shutdown(ctx context.Context) error {
	if err := p.srv.Shutdown(ctx); err != nil && !errors.Is(err, ErrServerClosed) {
		return err
	}
	return nil
}

func usersOf(db *account.DB) func() Users { return func() Users { return db } }

// tlsOf is the TLS configuration of store, nil without one.
func tlsOf(store *tlsconf.Store) func() *tls.Config {
	if store == nil {
		return nil
	}
	return store.Config
}
