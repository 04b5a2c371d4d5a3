package smtpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/listen"
	"mailroom/internal/logging"
	"mailroom/internal/privs"
	"mailroom/internal/tlsconf"
	"mailroom/spool"
)

// Options are how smtpd was started, beyond the configuration.
type Options struct {
	Logger  *slog.Logger // nil: from cfg's log_format and log_level, on stderr
	Inetd   bool         // --inetd: one connection on fd 0/1
	Service string       // --service: the service of an inetd or Accept=yes connection
	// ShutdownTimeout bounds how long SIGTERM waits for transactions in
	// flight; zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Ready, if set, is called once the sockets are open and privileges
	// dropped, just before serving (tests learn the addresses from it).
	Ready func(*listen.Set)
}

// Run is the smtpd program: it opens the sockets (systemd, inetd or
// cfg's listen_* addresses), loads the TLS certificate and the tables,
// drops root privileges to [smtpd] user, and serves until ctx is done
// (SIGTERM in cmd/smtpd), then finishes transactions in flight within
// ShutdownTimeout. SIGHUP reloads the tables and the certificate; on a bad
// reload the old ones stay and the error is logged.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	log := opts.Logger
	if log == nil {
		var err error
		if log, err = logging.New(cfg.LogFormat, cfg.LogLevel, os.Stderr, "smtpd"); err != nil {
			return err
		}
	}
	var store *tlsconf.Store
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		var err error
		if store, err = tlsconf.Load(cfg.TLSCert, cfg.TLSKey); err != nil {
			return fmt.Errorf("smtpd: %w", err)
		}
	}
	set, err := listen.Open(listen.Options{
		Wants: []listen.Want{
			{Name: ServiceSMTP, Addrs: cfg.Smtpd.ListenSMTP},
			{Name: ServiceSubmission, Addrs: cfg.Smtpd.ListenSubmission},
			{Name: ServiceSubmissions, Addrs: cfg.Smtpd.ListenSubmissions},
		},
		Inetd:   opts.Inetd,
		Service: opts.Service,
	})
	if err != nil {
		return fmt.Errorf("smtpd: %w", err)
	}
	defer set.Close()
	if err := checkSockets(set, store); err != nil {
		return err
	}
	// Read what may be readable by root only before dropping privileges.
	tables, err := LoadTables(cfg)
	if err != nil {
		return err
	}
	sp, err := spool.Open(cfg.SpoolDir)
	if err != nil {
		return fmt.Errorf("smtpd: %w", err)
	}
	if err := dropPrivileges(cfg.Smtpd.User); err != nil {
		return err
	}
	srv := NewServer(cfg, sp, tables, ServerOptions{Logger: log, TLS: store})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if opts.Ready != nil {
		opts.Ready(set)
	}
	done := make(chan error, 1)
	if set.Conn != nil {
		go func() { srv.ServeConn(set.Service, set.Conn); done <- nil }()
	} else {
		if len(set.Listeners) == 0 {
			return errors.New("smtpd: no listeners: listen_smtp, listen_submission and listen_submissions are all empty")
		}
		go func() { done <- srv.Serve(set.Listeners) }()
	}
	log.Info("start", "mode", set.Mode.String(), "listeners", len(set.Listeners), "uid", os.Geteuid())
	if err := listen.Notify("READY=1"); err != nil {
		log.Warn("notify", "err", err)
	}
	for {
		select {
		case <-hup:
			reload(cfg, srv, store, log)
		case err := <-done:
			return err
		case <-ctx.Done():
			return shutdown(srv, done, opts.ShutdownTimeout, log)
		}
	}
}

// checkSockets refuses an implicit-TLS socket without a certificate.
func checkSockets(set *listen.Set, store *tlsconf.Store) error {
	if store != nil {
		return nil
	}
	for _, l := range set.Listeners {
		if l.Name == ServiceSubmissions {
			return fmt.Errorf("smtpd: listening for submissions (%s) needs tls_cert and tls_key", l.Addr())
		}
	}
	if set.Conn != nil && set.Service == ServiceSubmissions {
		return errors.New("smtpd: a submissions connection needs tls_cert and tls_key")
	}
	return nil
}

// reload is SIGHUP: new tables and certificate, or the old ones and a log
// line saying why.
func reload(cfg *config.Config, srv *Server, store *tlsconf.Store, log *slog.Logger) {
	tables, err := LoadTables(cfg)
	if err != nil {
		log.Error("reload", "what", "tables", "err", err)
	} else {
		srv.SetTables(tables)
		log.Info("reload", "what", "tables", "users", len(tables.Users.Users()), "aliases", tables.Aliases.Len())
	}
	if store != nil {
		if err := store.Reload(); err != nil {
			log.Error("reload", "what", "tls", "err", err)
		} else {
			log.Info("reload", "what", "tls")
		}
	}
}

// shutdown is SIGTERM: stop accepting, let transactions finish within
// timeout, then close what is left.
func shutdown(srv *Server, done <-chan error, timeout time.Duration, log *slog.Logger) error {
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	_ = listen.Notify("STOPPING=1")
	log.Info("stop", "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("stop", "err", err)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return nil
	}
}

// dropPrivileges makes a smtpd started as root continue as user and that
// user's primary group (the spool's group), and refuses to go on as root.
func dropPrivileges(name string) error {
	if os.Geteuid() == 0 {
		uid, gid, err := privs.User(name)
		if err != nil {
			return fmt.Errorf("smtpd: refusing to run as root: %w", err)
		}
		if err := privs.DropTo(uid, gid); err != nil {
			return fmt.Errorf("smtpd: refusing to run as root: becoming %s (uid %d gid %d): %w", name, uid, gid, err)
		}
	}
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return errors.New("smtpd: refusing to serve as root")
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
			errs = append(errs, fmt.Errorf("smtpd: %w", err))
		}
	} else if len(cfg.Smtpd.ListenSubmissions) > 0 {
		errs = append(errs, errors.New("smtpd: listen_submissions needs tls_cert and tls_key"))
	}
	if _, err := spool.Open(cfg.SpoolDir); err != nil {
		errs = append(errs, fmt.Errorf("smtpd: %w", err))
	}
	return errors.Join(errs...)
}
