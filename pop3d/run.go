package pop3d

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
	ServicePOP3  = "pop3"  // STLS (port 110)
	ServicePOP3S = "pop3s" // implicit TLS (port 995)
)

// ShutdownTimeout bounds how long SIGTERM waits for sessions to finish
// the command in flight.
const ShutdownTimeout = 30 * time.Second

// Spec is the pop3d program for internal/daemon: the services, the
// [pop3d] connection limits, the drop to the owner of mail_root, and a
// Server whose passwd file and settings SIGHUP replaces for new sessions.
func Spec() *daemon.Spec {
	return &daemon.Spec{
		Name:  "pop3d",
		Usage: "POP3 and POP3S server over Maildirs",
		Services: []daemon.Service{
			{
				Name:  ServicePOP3,
				Addrs: func(c *config.Config) *[]string { return &c.Pop3d.ListenPOP3 },
				// RFC 2449 §8.1.2 SYS/TEMP: try again later.
				Reject: func(*config.Config) string { return "-ERR [SYS/TEMP] too many connections" },
			},
			{Name: ServicePOP3S, ImplicitTLS: true, Addrs: func(c *config.Config) *[]string { return &c.Pop3d.ListenPOP3S }},
		},
		// A single connection (inetd, Accept=yes) is pop3 unless told.
		SingleService: ServicePOP3,
		Limits: func(c *config.Config) (int64, int64) {
			return c.Pop3d.MaxConnections, c.Pop3d.MaxConnectionsPerClient
		},
		Fixed: []daemon.Fixed{
			{Key: "[pop3d] max_connections", Field: func(c *config.Config) any { return &c.Pop3d.MaxConnections }},
			{Key: "[pop3d] max_connections_per_client", Field: func(c *config.Config) any { return &c.Pop3d.MaxConnectionsPerClient }},
		},
		Start:           daemon.AccountStart(ServicePOP3S, ErrServerClosed, newServer),
		DropPrivileges:  func(c *config.Config) error { return privs.DropToMail(c.MailRoot, c.Smtpd.User) },
		ShutdownTimeout: ShutdownTimeout,
	}
}

// Run is the pop3d program (see daemon.Run).
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
