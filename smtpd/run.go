package smtpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"mailroom/internal/config"
	"mailroom/internal/daemon"
	"mailroom/internal/privs"
	"mailroom/internal/tlsconf"
	"mailroom/spool"
)

// Spec is the smtpd program for internal/daemon: three services, the
// [smtpd] connection limits over all of them, the drop to [smtpd] user,
// and a Server whose tables, certificate and settings SIGHUP replaces for
// new connections. A --listen NAME=ADDR replaces only that service's
// addresses.
func Spec() *daemon.Spec {
	return &daemon.Spec{
		Name:  "smtpd",
		Usage: "mailroom's SMTP server (MX, submission, submissions)",
		Services: []daemon.Service{
			// RFC 5321 §3.1: 421 instead of the greeting.
			{Name: ServiceSMTP, Addrs: func(c *config.Config) *[]string { return &c.Smtpd.ListenSMTP }, Reject: BusyReply},
			{Name: ServiceSubmission, Addrs: func(c *config.Config) *[]string { return &c.Smtpd.ListenSubmission }, Reject: BusyReply},
			{Name: ServiceSubmissions, ImplicitTLS: true, Addrs: func(c *config.Config) *[]string { return &c.Smtpd.ListenSubmissions }},
		},
		ListenPerService: true,
		Limits: func(c *config.Config) (int64, int64) {
			return c.Smtpd.MaxConnections, c.Smtpd.MaxConnectionsPerClient
		},
		Fixed: []daemon.Fixed{
			{Key: "[smtpd] max_connections", Field: func(c *config.Config) any { return &c.Smtpd.MaxConnections }},
			{Key: "[smtpd] max_connections_per_client", Field: func(c *config.Config) any { return &c.Smtpd.MaxConnectionsPerClient }},
		},
		Check:           Check,
		Start:           start,
		DropPrivileges:  func(c *config.Config) error { return dropPrivileges(c.Smtpd.User) },
		ShutdownTimeout: DefaultShutdownTimeout,
	}
}

// Run is the smtpd program (see daemon.Run): it serves until ctx is done
// (SIGTERM in cmd/smtpd), then finishes transactions in flight within the
// shutdown timeout.
func Run(ctx context.Context, cfg *config.Config, opts daemon.Options) error {
	return daemon.Run(ctx, Spec(), cfg, opts)
}

// program is a Server as internal/daemon drives it.
type program struct {
	srv *Server
	log *slog.Logger
}

// start reads the tables (before privileges drop: they may be root's
// alone) and opens the spool.
func start(cfg *config.Config, store *tlsconf.Store, log *slog.Logger) (daemon.Server, error) {
	tables, err := LoadTables(cfg)
	if err != nil {
		return nil, err
	}
	sp, err := spool.Open(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	return &program{srv: NewServer(cfg, sp, tables, ServerOptions{Logger: log, TLS: store}), log: log}, nil
}

func (p *program) ServeConn(c net.Conn, service string) { p.srv.ServeConn(service, c) }

// Reload reads the tables cfg names; new connections get them, cfg and
// store's certificate.
func (p *program) Reload(cfg *config.Config, store *tlsconf.Store) error {
	tables, err := LoadTables(cfg)
	if err != nil {
		p.log.Error("reload", "what", "tables", "err", err)
		return err
	}
	p.srv.Reload(cfg, tables, store)
	p.log.Info("reload", "what", "tables", "users", len(tables.Users.Users()), "aliases", tables.Aliases.Len())
	if store != nil {
		p.log.Info("reload", "what", "tls", "file", cfg.TLSCert)
	}
	return nil
}

func (p *program) Shutdown(ctx context.Context) error { return p.srv.Shutdown(ctx) }

// dropPrivileges makes a smtpd started as root continue as user and that
// user's primary group (the spool's group), and refuses to go on as root.
func dropPrivileges(name string) error {
	if os.Geteuid() == 0 {
		uid, gid, err := privs.User(name)
		if err != nil {
			return fmt.Errorf("%w: %w", privs.ErrRoot, err)
		}
		if err := privs.DropTo(uid, gid); err != nil {
			return fmt.Errorf("%w: becoming %s (uid %d gid %d): %w", privs.ErrRoot, name, uid, gid, err)
		}
	}
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return privs.ErrRoot
	}
	return nil
}

// Check is --check-config beyond cfg.Check: the tables load, the
// certificate loads, the spool exists, and submissions has a certificate.
func Check(cfg *config.Config) error {
	var errs []error
	if _, err := LoadTables(cfg); err != nil {
		errs = append(errs, err)
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if _, err := tlsconf.Load(cfg.TLSCert, cfg.TLSKey); err != nil {
			errs = append(errs, err)
		}
	} else if len(cfg.Smtpd.ListenSubmissions) > 0 {
		errs = append(errs, errors.New("listen_submissions needs tls_cert and tls_key"))
	}
	if _, err := spool.Open(cfg.SpoolDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
