package smtpd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"mailroom/internal/account"
	"mailroom/internal/alias"
	"mailroom/internal/config"
	"mailroom/internal/listen"
	"mailroom/internal/route"
	"mailroom/internal/tlsconf"
	"mailroom/spool"
)

// The services smtpd offers, named as systemd's FileDescriptorName= and
// internal/listen's Want.Name.
const (
	ServiceSMTP        = "smtp"        // MX, port 25
	ServiceSubmission  = "submission"  // STARTTLS then AUTH, port 587 (RFC 6409)
	ServiceSubmissions = "submissions" // implicit TLS then AUTH, port 465 (RFC 8314)
)

// Defaults of the Options fields.
const (
	DefaultAuthDelay       = time.Second
	DefaultShutdownTimeout = 30 * time.Second
)

// Tables are the account and alias tables, loaded together and replaced
// together on SIGHUP.
type Tables struct {
	Users   *account.DB
	Aliases *alias.Table
	router  *route.Router
}

// LoadTables reads the passwd-file and the aliases file cfg names.
func LoadTables(cfg *config.Config) (*Tables, error) {
	users, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if err != nil {
		return nil, err
	}
	aliases, err := alias.Load(cfg.AliasesFile)
	if err != nil {
		return nil, err
	}
	return &Tables{Users: users, Aliases: aliases, router: route.New(cfg, users, aliases)}, nil
}

// Server receives mail on any number of listeners and connections. It is
// safe for concurrent use. Reload gives new connections another
// configuration and certificate; a connection keeps the ones it started
// with (the tables are the exception: SetTables and Reload replace them
// for the next command of every connection).
type Server struct {
	cfg *config.Config
	tls *tlsconf.Store // nil: no STARTTLS, no submissions
	// shared is shared by the Server and every snapshot Reload makes of
	// it: connections hold a snapshot, shutdown reaches them all.
	*shared
}

// shared is what a Server and its snapshots share.
type shared struct {
	spool  *spool.Spool
	log    *slog.Logger
	tables atomic.Pointer[Tables]
	auth   *authLimiter

	authDelay time.Duration

	// current is the snapshot new connections start with.
	current atomic.Pointer[Server]

	mu        sync.Mutex
	conns     map[*connState]struct{}
	listeners []net.Listener
	draining  bool
	idle      chan struct{} // closed when draining and conns is empty
	changed   chan struct{} // closed and replaced whenever a connection ends
}

// ServerOptions are the parts of a Server that are not in the config.
type ServerOptions struct {
	Logger *slog.Logger   // nil: discard
	TLS    *tlsconf.Store // nil: no TLS (no STARTTLS, submissions refused)
	// AuthDelay is the first delay after auth_failures_before_delay
	// failures; it doubles with each further failure, up to 30 times
	// itself. Zero means DefaultAuthDelay.
	AuthDelay time.Duration
}

// NewServer returns a server storing mail into sp with the limits and
// policies of cfg and the given tables.
func NewServer(cfg *config.Config, sp *spool.Spool, tables *Tables, opts ServerOptions) *Server {
	sh := &shared{
		spool:     sp,
		log:       opts.Logger,
		auth:      newAuthLimiter(),
		authDelay: opts.AuthDelay,
		conns:     make(map[*connState]struct{}),
		changed:   make(chan struct{}),
	}
	if sh.log == nil {
		sh.log = slog.New(slog.DiscardHandler)
	}
	if sh.authDelay <= 0 {
		sh.authDelay = DefaultAuthDelay
	}
	sh.tables.Store(tables)
	s := &Server{cfg: cfg, tls: opts.TLS, shared: sh}
	sh.current.Store(s)
	return s
}

// SetTables replaces the account and alias tables for new commands.
func (s *Server) SetTables(t *Tables) { s.tables.Store(t) }

// Reload makes cfg and store (nil: no TLS) the configuration of the
// connections that start from now on, and tables those of every next
// command. The caller has checked cfg (SIGHUP: internal/daemon); the
// spool stays the one the Server was made with.
func (s *Server) Reload(cfg *config.Config, tables *Tables, store *tlsconf.Store) {
	s.tables.Store(tables)
	s.current.Store(&Server{cfg: cfg, tls: store, shared: s.shared})
}

// Serve accepts connections on every listener, with the connection limits
// of the configuration applied to all of them together, and serves each on
// its listener's service. It returns when Shutdown or Close was called (nil)
// or a listener fails (the error; the others are closed too).
func (s *Server) Serve(ls []listen.Named) error {
	for _, l := range ls {
		if err := s.checkService(l.Name); err != nil {
			return err
		}
	}
	fan := listen.Merge(ls)
	limited := listen.Limit(fan, int(s.cfg.Smtpd.MaxConnections), int(s.cfg.Smtpd.MaxConnectionsPerClient), s.rejectBusy)
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		limited.Close()
		return nil
	}
	s.listeners = append(s.listeners, limited)
	s.mu.Unlock()
	for {
		c, err := limited.Accept()
		if err != nil {
			limited.Close()
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		go s.ServeConn(listen.ServiceOf(c, ServiceSMTP), c)
	}
}

// BusyReply is the refusal of a connection over the limits.
func BusyReply(cfg *config.Config) string {
	return fmt.Sprintf("421 4.7.0 %s too many connections, try again later", cfg.Hostname)
}

// rejectBusy answers a connection over the limits (RFC 5321 §3.1: 421
// instead of the greeting). On the implicit-TLS port a plaintext reply
// would be noise to the client's TLS stack, so it just closes.
func (s *Server) rejectBusy(c net.Conn) {
	service := listen.ServiceOf(c, ServiceSMTP)
	s.log.Info("reject", "service", service, "client", c.RemoteAddr().String(), "reason", "too many connections")
	if service == ServiceSubmissions {
		return
	}
	fmt.Fprint(c, BusyReply(s.current.Load().cfg)+"\r\n")
}

func (s *Server) checkService(name string) error {
	switch name {
	case ServiceSMTP, ServiceSubmission:
		return nil
	case ServiceSubmissions:
		if s.tls == nil {
			return errors.New("service submissions needs a TLS certificate (tls_cert, tls_key)")
		}
		return nil
	}
	return fmt.Errorf("unknown service %q", name)
}

// ServeConn serves one connection on service until it ends. The caller
// gives up the connection: ServeConn closes it.
func (s *Server) ServeConn(service string, c net.Conn) {
	if err := s.current.Load().checkService(service); err != nil {
		s.log.Error("connect", "err", err)
		c.Close()
		return
	}
	cs := s.current.Load().newConnState(service, c)
	if cs == nil {
		return
	}
	defer s.forget(cs)
	defer func() {
		if r := recover(); r != nil {
			cs.logPanic(r)
			cs.close()
		}
	}()
	cs.serve()
}

// Shutdown stops accepting, closes idle connections, lets transactions in
// flight finish (closing each connection after its transaction) and waits
// for all connections to end or ctx to expire; then it closes what is left
// and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	ls := s.listeners
	s.listeners = nil
	conns := make([]*connState, 0, len(s.conns))
	for cs := range s.conns {
		conns = append(conns, cs)
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
		if len(s.conns) == 0 {
			close(s.idle)
		}
	}
	idle := s.idle
	s.mu.Unlock()
	var errs []error
	for _, l := range ls {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, cs := range conns {
		cs.drain()
	}
	select {
	case <-idle:
		return errors.Join(errs...)
	case <-ctx.Done():
		s.Close()
		return ctx.Err()
	}
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.draining = true
	ls := s.listeners
	s.listeners = nil
	conns := make([]*connState, 0, len(s.conns))
	for cs := range s.conns {
		conns = append(conns, cs)
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range ls {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for _, cs := range conns {
		cs.close()
	}
	return errors.Join(errs...)
}

// newConnState registers a new connection, or closes it and returns nil
// when the server is shutting down.
func (s *Server) newConnState(service string, c net.Conn) *connState {
	cs := &connState{
		s:       s,
		id:      newConnID(),
		service: service,
		raw:     newWatchedConn(c),
		start:   time.Now(),
	}
	cs.obs = &observer{cs: cs, prevCRLF: true}
	cs.remote = c.RemoteAddr()
	cs.ip = clientIP(cs.remote)
	cs.loopback = listen.IsLoopback(cs.remote)
	cs.log = s.log.With("conn", cs.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		c.Close()
		return nil
	}
	s.conns[cs] = struct{}{}
	return cs
}

func (s *Server) forget(cs *connState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, cs)
	close(s.changed)
	s.changed = make(chan struct{})
	if s.draining && len(s.conns) == 0 && s.idle != nil {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// newSMTPServer makes the go-smtp server of one connection. One per
// connection, not per service: go-smtp's Debug writer is per server and is
// the only place that sees the decrypted dialogue (see observer), and the
// insecure-auth switch depends on the client address.
func (s *Server) newSMTPServer(cs *connState) *smtp.Server {
	gs := smtp.NewServer(&backend{cs: cs})
	lim := s.cfg.Smtpd
	gs.Domain = s.cfg.Hostname
	gs.MaxMessageBytes = lim.MaxMessageSize
	gs.MaxRecipients = int(lim.MaxRecipients)
	gs.MaxLineLength = int(lim.MaxLineLength)
	gs.ReadTimeout = lim.CommandTimeout
	gs.WriteTimeout = lim.CommandTimeout
	// Whether AUTH is offered and accepted is the session's decision
	// (AuthMechanisms, Auth): go-smtp's own check would answer the
	// non-standard 523 and know nothing of services.
	gs.AllowInsecureAuth = true
	gs.EnableSMTPUTF8 = true
	gs.EnableDSN = true
	gs.Debug = cs.obs
	gs.ErrorLog = errorLog{cs}
	if s.tls != nil && cs.service != ServiceSubmissions {
		gs.TLSConfig = s.tls.Config()
	}
	return gs
}

// tlsConfig is the configuration of the implicit-TLS service.
func (s *Server) tlsConfig() *tls.Config { return s.tls.Config() }

// newConnID returns a connection id for logs: 12 hex digits of randomness,
// unique enough across restarts and hosts for log searches.
func newConnID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clientIP is the address's IP as text, or the whole address without one.
func clientIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// openConns returns the number of connections being served and a channel
// closed when that number next goes down.
func (s *Server) openConns() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.changed
}
