package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/listen"
	"mailroom/internal/logging"
	"mailroom/internal/tlsconf"
)

// Options are how the program was started, beyond its configuration.
type Options struct {
	// ConfigPath is the file SIGHUP reads again; "" reloads the tables
	// and the certificate of the configuration Run was given.
	ConfigPath string
	Listen     []string // --listen flags
	Inetd      bool     // --inetd: the one connection is on fd 0
	Service    string   // --service: of an inetd or Accept=yes connection
	// Logger; nil builds one from log_format and log_level on Stderr.
	Logger *slog.Logger
	Stderr io.Writer // nil: os.Stderr
	// ShutdownTimeout, when set, replaces the Spec's.
	ShutdownTimeout time.Duration
	// Ready, if set, is called once the sockets are open and privileges
	// dropped, just before serving (tests learn the addresses from it).
	Ready func(*listen.Set)
}

// daemon is one running program.
type daemon struct {
	spec  *Spec
	opts  Options
	log   *slog.Logger
	srv   Server
	fixed []Fixed
	cfg   atomic.Pointer[config.Config] // in force; replaced by reload
	// implicitTLS: a listener needs a certificate, so a reload may not
	// take it away.
	implicitTLS bool
}

// Run is the program: it opens the sockets (systemd, inetd, or the
// configured and --listen addresses), loads the certificate, starts the
// server, drops privileges and serves until ctx ends (SIGTERM, SIGINT) or
// the single connection of inetd or Accept=yes is over. SIGHUP reloads
// (see the package documentation). At the end it stops accepting at once,
// gives sessions in flight the shutdown timeout to finish and returns nil;
// an error means the program could not start or a listener failed.
func Run(ctx context.Context, spec *Spec, cfg *config.Config, opts Options) error {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	log := opts.Logger
	if log == nil {
		var err error
		if log, err = logging.New(cfg.LogFormat, cfg.LogLevel, opts.Stderr, spec.Name); err != nil {
			return err
		}
	}
	d := &daemon{spec: spec, opts: opts, log: log, fixed: fixedKeys(spec)}
	if err := applyListen(spec, cfg, opts.Listen); err != nil {
		return err
	}
	service, err := d.singleService()
	if err != nil {
		return err
	}
	store, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	set, err := listen.Open(listen.Options{Wants: wants(spec, cfg), Inetd: opts.Inetd, Service: service})
	if err != nil {
		return err
	}
	defer set.Close()
	named, err := d.listeners(set, store != nil)
	if err != nil {
		return err
	}
	if d.srv, err = spec.Start(cfg, store, log); err != nil {
		return err
	}
	if err := spec.DropPrivileges(cfg); err != nil {
		return err
	}
	d.cfg.Store(cfg)
	// SIGHUP is caught from here on: before Ready, so that whoever
	// learns of the daemon from it may signal it at once.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if opts.Ready != nil {
		opts.Ready(set)
	}
	log.Info("start", "mode", set.Mode.String(), "listeners", len(named), "uid", os.Geteuid())
	return d.serve(ctx, named, hup)
}

// singleService is the service of a single connection: --service, else
// the Spec's SingleService (which may be "").
func (d *daemon) singleService() (string, error) {
	name := d.opts.Service
	if name == "" {
		return d.spec.SingleService, nil
	}
	if d.spec.service(name) == nil {
		return "", fmt.Errorf("--service %s: want %s", name, d.spec.serviceNames())
	}
	return name, nil
}

// listeners are the sockets of set as named listeners, the one connection
// of inetd or Accept=yes as a listener that hands it out once. An
// implicit-TLS service without a certificate is refused.
func (d *daemon) listeners(set *listen.Set, haveTLS bool) ([]listen.Named, error) {
	named := set.Listeners
	if set.Conn != nil {
		service := set.Service
		if service == "" {
			service = d.spec.Services[0].Name
		}
		named = []listen.Named{{Name: service, Listener: listen.Single(set.Conn)}}
	}
	if len(named) == 0 {
		var keys []string
		for _, sv := range d.spec.Services {
			keys = append(keys, "listen_"+sv.Name)
		}
		return nil, fmt.Errorf("no listener: set %v in [%s], or use --listen", keys, d.spec.Name)
	}
	for _, l := range named {
		sv := d.spec.service(l.Name)
		if sv == nil {
			return nil, fmt.Errorf("unknown service %q (want %s)", l.Name, d.spec.serviceNames())
		}
		if sv.ImplicitTLS {
			d.implicitTLS = true
			if !haveTLS {
				return nil, fmt.Errorf("%s (%s) needs tls_cert and tls_key", l.Name, l.Addr())
			}
		}
	}
	return named, nil
}

// serve accepts and dispatches until ctx ends or the listeners are done,
// handling SIGHUP meanwhile, then stops.
func (d *daemon) serve(ctx context.Context, named []listen.Named, hup <-chan os.Signal) error {
	total, perClient := d.spec.Limits(d.cfg.Load())
	accepting := listen.Limit(listen.Merge(named), int(total), int(perClient), d.reject)
	accepted := make(chan error, 1)
	go func() { accepted <- d.accept(accepting) }()
	d.notify("READY=1")
	for {
		select {
		case <-hup:
			d.reload()
		case err := <-accepted:
			return d.stop(err)
		case <-ctx.Done():
			// Stop accepting at once: a client connecting now is refused
			// by the kernel rather than greeted and cut.
			if err := accepting.Close(); err != nil {
				d.log.Warn("stop", "err", err)
			}
			return d.stop(<-accepted)
		}
	}
}

// accept hands every connection to the server; nil once the listeners
// are closed (or the single connection is over).
func (d *daemon) accept(l net.Listener) error {
	def := d.spec.Services[0].Name
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			_ = l.Close()
			return fmt.Errorf("accept: %w", err)
		}
		go d.srv.ServeConn(c, listen.ServiceOf(c, def))
	}
}

// reject answers a connection over the limits with the service's refusal.
func (d *daemon) reject(c net.Conn) {
	service := listen.ServiceOf(c, d.spec.Services[0].Name)
	d.log.Info("reject", "service", service, "client", c.RemoteAddr().String(), "reason", "too many connections")
	sv := d.spec.service(service)
	if sv == nil || sv.Reject == nil || sv.ImplicitTLS {
		return
	}
	_, _ = io.WriteString(c, sv.Reject(d.cfg.Load())+"\r\n")
}

// stop lets the sessions in flight finish within the shutdown timeout.
// serveErr is a listener's failure (nil after a stop on request).
func (d *daemon) stop(serveErr error) error {
	timeout := d.opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = d.spec.ShutdownTimeout
	}
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	d.notify("STOPPING=1")
	d.log.Info("stop", "timeout", timeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := d.srv.Shutdown(ctx); err != nil {
		// Sessions still busy at the bound were cut: what they had not
		// acknowledged is the client's to retry.
		d.log.Warn("stop", "err", err)
	}
	if serveErr != nil {
		d.log.Error("stop", "err", serveErr)
	}
	return serveErr
}

func (d *daemon) notify(state string) {
	if err := listen.Notify(state); err != nil {
		d.log.Warn("notify", "err", err)
	}
}

// loadTLS loads the certificate cfg names; nil when it names none.
func loadTLS(cfg *config.Config) (*tlsconf.Store, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		return nil, nil
	}
	return tlsconf.Load(cfg.TLSCert, cfg.TLSKey)
}
