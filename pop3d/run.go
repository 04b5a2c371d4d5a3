package pop3d

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mailroom/internal/account"
	"mailroom/internal/config"
	"mailroom/internal/listen"
	"mailroom/internal/logging"
	"mailroom/internal/privs"
	"mailroom/internal/tlsconf"
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

// Options are pop3d's command-line settings beyond the config file.
type Options struct {
	// Listen replaces the configured addresses: "ADDR" is for pop3,
	// "pop3=ADDR" and "pop3s=ADDR" name the service. When set, services it
	// does not name are not served.
	Listen  []string
	Inetd   bool   // the connection is on fd 0
	Service string // with Inetd or systemd Accept=yes: pop3 or pop3s
	Stderr  io.Writer
}

// Run is the pop3d program: it opens the listeners (systemd, inetd or
// standalone), drops root privileges to the owner of mail_root, serves
// until ctx ends (SIGTERM), then finishes the sessions in flight. SIGHUP
// reloads the passwd file and the TLS certificate.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	log, err := logging.New(cfg.LogFormat, cfg.LogLevel, opts.Stderr, "pop3d")
	if err != nil {
		return err
	}
	wants, err := Wants(cfg, opts.Listen)
	if err != nil {
		return err
	}
	var users atomic.Pointer[account.DB]
	db, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if err != nil {
		return err
	}
	users.Store(db)
	var store *tlsconf.Store
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if store, err = tlsconf.Load(cfg.TLSCert, cfg.TLSKey); err != nil {
			return err
		}
	}
	if opts.Service == "" {
		// A single connection (inetd, Accept=yes) is pop3 unless told.
		opts.Service = ServicePOP3
	}
	set, err := listen.Open(listen.Options{Wants: wants, Inetd: opts.Inetd, Service: opts.Service})
	if err != nil {
		return err
	}
	defer set.Close()
	if err := privs.DropToMail(cfg.MailRoot, cfg.Smtpd.User); err != nil {
		return err
	}
	var tlsFunc func() *tls.Config
	if store != nil {
		tlsFunc = store.Config
	}
	srv := NewServer(cfg, func() Users { return users.Load() }, tlsFunc, log)

	listeners, err := serving(set, cfg, store != nil)
	if err != nil {
		return err
	}
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	defer signal.Stop(reload)

	var wg sync.WaitGroup
	served := make(chan error, len(listeners))
	for _, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			served <- srv.Serve(l.Listener, l.Name == ServicePOP3S)
		}()
	}
	running := len(listeners)
	log.Info("start", "mode", set.Mode.String(), "listeners", len(listeners))
	if err := listen.Notify("READY=1"); err != nil {
		log.Warn("notify", "err", err)
	}
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-reload:
			reloadTables(log, cfg, &users, store)
		case err := <-served:
			// A single connection (inetd, Accept=yes) ends with its
			// listener; a real listener failing is fatal.
			running--
			if err != nil && !errors.Is(err, ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				serveErr = err
				break loop
			}
			if running == 0 {
				break loop
			}
		}
	}
	_ = listen.Notify("STOPPING=1")
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	wg.Wait()
	log.Info("stop")
	return errors.Join(serveErr, err)
}

// Wants turns the config's addresses and --listen into what listen.Open
// binds.
func Wants(cfg *config.Config, flags []string) ([]listen.Want, error) {
	return listen.FromFlags([]listen.Want{
		{Name: ServicePOP3, Addrs: cfg.Pop3d.ListenPOP3},
		{Name: ServicePOP3S, Addrs: cfg.Pop3d.ListenPOP3S},
	}, flags)
}

// serving wraps the sockets of set with the connection limits.
func serving(set *listen.Set, cfg *config.Config, haveTLS bool) ([]listen.Named, error) {
	var out []listen.Named
	add := func(name string, l net.Listener) error {
		if name == ServicePOP3S && !haveTLS {
			return errors.New("pop3s needs tls_cert and tls_key")
		}
		var reject func(net.Conn)
		if name == ServicePOP3 {
			// RFC 2449 §8.1.2 SYS/TEMP: try again later. (On pop3s the
			// client expects a TLS handshake; it is just closed.)
			reject = func(c net.Conn) { _, _ = io.WriteString(c, "-ERR [SYS/TEMP] too many connections\r\n") }
		}
		l = listen.Limit(l, int(cfg.Pop3d.MaxConnections), int(cfg.Pop3d.MaxConnectionsPerClient), reject)
		out = append(out, listen.Named{Name: name, Listener: l})
		return nil
	}
	if set.Conn != nil {
		service := set.Service
		if service == "" {
			service = ServicePOP3
		}
		return out, add(service, listen.Single(set.Conn))
	}
	for _, l := range set.Listeners {
		if err := add(l.Name, l.Listener); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no listener: set listen_pop3 or listen_pop3s, or use --listen")
	}
	return out, nil
}

// reloadTables is SIGHUP: the passwd file and the certificate are read
// again; on error the old ones stay.
func reloadTables(log *slog.Logger, cfg *config.Config, users *atomic.Pointer[account.DB], store *tlsconf.Store) {
	_ = listen.Notify("RELOADING=1")
	defer func() { _ = listen.Notify("READY=1") }()
	if db, err := account.Load(cfg.PasswdFile, cfg.MailRoot); err != nil {
		log.Error("reload", "file", cfg.PasswdFile, "err", err)
	} else {
		users.Store(db)
		log.Info("reload", "file", cfg.PasswdFile, "users", len(db.Users()))
	}
	if store != nil {
		if err := store.Reload(); err != nil {
			log.Error("reload", "file", cfg.TLSCert, "err", err)
		} else {
			log.Info("reload", "file", cfg.TLSCert)
		}
	}
}

// ErrRoot is returned by Run when it would have to serve as root.
var ErrRoot = privs.ErrRoot
