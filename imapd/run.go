package imapd

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
	ServiceIMAP  = "imap"  // STARTTLS (port 143)
	ServiceIMAPS = "imaps" // implicit TLS (port 993)
)

// ShutdownTimeout bounds how long SIGTERM waits for sessions to finish
// the command in flight.
const ShutdownTimeout = 30 * time.Second

// Options are imapd's command-line settings beyond the config file.
type Options struct {
	// Listen replaces the default addresses: "ADDR" is for imap,
	// "imap=ADDR" and "imaps=ADDR" name the service. When set, services it
	// does not name are not served.
	Listen  []string
	Inetd   bool   // the connection is on fd 0
	Service string // with Inetd or systemd Accept=yes: imap or imaps
	Stderr  io.Writer
}

// Run is the imapd program: it opens the listeners (systemd, inetd or
// standalone), drops root privileges to the owner of mail_root, serves
// until ctx ends (SIGTERM), then finishes the sessions in flight. SIGHUP
// reloads the passwd file and the TLS certificate.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	log, err := logging.New(cfg.LogFormat, cfg.LogLevel, opts.Stderr, "imapd")
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
		opts.Service = ServiceIMAP
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
			served <- srv.Serve(l.Listener, l.Name == ServiceIMAPS)
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

// Wants turns the config's addresses (listen_imap, listen_imaps) and
// --listen into what listen.Open binds.
func Wants(cfg *config.Config, flags []string) ([]listen.Want, error) {
	return listen.FromFlags([]listen.Want{
		{Name: ServiceIMAP, Addrs: cfg.Imapd.ListenIMAP},
		{Name: ServiceIMAPS, Addrs: cfg.Imapd.ListenIMAPS},
	}, flags)
}

// serving wraps the sockets of set with the connection limits of
// [imapd] (max_connections, max_connections_per_client).
func serving(set *listen.Set, cfg *config.Config, haveTLS bool) ([]listen.Named, error) {
	var out []listen.Named
	add := func(name string, l net.Listener) error {
		if name == ServiceIMAPS && !haveTLS {
			return errors.New("imaps needs tls_cert and tls_key (or an empty listen_imaps)")
		}
		var reject func(net.Conn)
		if name == ServiceIMAP {
			// RFC 9051 §7.1.5: BYE as the greeting refuses the session.
			reject = func(c net.Conn) { _, _ = io.WriteString(c, "* BYE [UNAVAILABLE] too many connections\r\n") }
		}
		l = listen.Limit(l, int(cfg.Imapd.MaxConnections), int(cfg.Imapd.MaxConnectionsPerClient), reject)
		out = append(out, listen.Named{Name: name, Listener: l})
		return nil
	}
	if set.Conn != nil {
		service := set.Service
		if service == "" {
			service = ServiceIMAP
		}
		return out, add(service, listen.Single(set.Conn))
	}
	for _, l := range set.Listeners {
		if err := add(l.Name, l.Listener); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no listener: set listen_imap or listen_imaps, or use --listen")
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
