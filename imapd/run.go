package imapd

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"mailroom/internal/account"
	"mailroom/internal/config"
	"mailroom/internal/daemon"
	"mailroom/internal/privs"
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
		Start:           daemon.AccountStart(ServiceIMAPS, ErrServerClosed, newServer),
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

// newServer is the server internal/daemon drives.
func newServer(cfg *config.Config, db *account.DB, tlsConfig func() *tls.Config, log *slog.Logger) daemon.AccountServer {
	return NewServer(cfg, usersOf(db), tlsConfig, log)
}

// UseAccounts is Apply with the account table db (daemon.AccountServer).
func (s *Server) UseAccounts(cfg *config.Config, db *account.DB, tlsConfig func() *tls.Config) {
	s.Apply(cfg, usersOf(db), tlsConfig)
}

func usersOf(db *account.DB) func() Users { return func() Users { return db } }
