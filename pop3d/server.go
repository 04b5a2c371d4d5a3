package pop3d

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailroom/internal/config"
)

// Users is the account table a login is checked against; *account.DB is
// one.
type Users interface {
	// Verify reports whether password is address's password.
	Verify(address, password string) bool
	// Mailbox returns the Maildir root of address.
	Mailbox(address string) (root string, ok bool)
}

// Defaults of the Server fields that mailroom.conf does not set.
const (
	// DefaultLoginTimeout bounds the AUTHORIZATION state: an unknown
	// client gets a short time to log in, not the 10 minutes a logged-in
	// one does.
	DefaultLoginTimeout = 60 * time.Second
	// DefaultMaxAuthFailures failed logins close the connection.
	DefaultMaxAuthFailures = 5
	// DefaultAuthDelay is the delay before the reply to the first failed
	// login; it doubles with every further failure up to DefaultMaxAuthDelay.
	DefaultAuthDelay    = 1 * time.Second
	DefaultMaxAuthDelay = 8 * time.Second
	// DefaultMaxErrors -ERR replies to bad commands close the connection.
	DefaultMaxErrors = 20
	// tlsHandshakeTimeout bounds the TLS handshake (pop3s and STLS).
	tlsHandshakeTimeout = 30 * time.Second
)

// Server serves POP3 sessions. Set the fields before the first Serve; they
// are read-only afterwards: Apply gives new sessions other settings, and
// sessions in flight keep the ones they started with. It is safe for
// concurrent use.
type Server struct {
	Hostname string // in the greeting
	// Users returns the current account table; nil fails every login.
	Users func() Users
	// TLS returns the configuration for STLS and pop3s; nil (or a nil
	// result) means no TLS: STLS is not offered.
	TLS func() *tls.Config
	// PlaintextAuthOnLoopback allows passwords without TLS from
	// 127.0.0.0/8 and ::1.
	PlaintextAuthOnLoopback bool
	UIDLFormat              string        // "maildir" (default) or "dovecot"
	IdleTimeout             time.Duration // after login; 0 = 10 minutes (RFC 1939 §3)
	LoginTimeout            time.Duration // before login; 0 = DefaultLoginTimeout
	Expire                  string        // CAPA EXPIRE: "never" or days; "" = not advertised
	LoginDelay              time.Duration // CAPA LOGIN-DELAY; 0 = not advertised
	MaxAuthFailures         int           // 0 = DefaultMaxAuthFailures
	AuthDelay               time.Duration // 0 = DefaultAuthDelay; < 0 = no delay (tests)
	MaxAuthDelay            time.Duration // 0 = DefaultMaxAuthDelay
	MaxErrors               int           // 0 = DefaultMaxErrors
	Logger                  *slog.Logger  // nil = discard

	initOnce sync.Once
	// shared is shared by the Server and every settings snapshot Apply
	// makes of it: sessions hold a snapshot, shutdown reaches them all.
	*shared
}

// shared is what a Server and its snapshots share.
type shared struct {
	shutting  atomic.Bool
	done      chan struct{} // closed by Shutdown
	mu        sync.Mutex
	listeners map[net.Listener]bool
	sessions  map[*session]bool
	wg        sync.WaitGroup
	// current holds the settings new sessions start with; nil until the
	// first Apply, meaning the Server's own fields.
	current atomic.Pointer[Server]
}

// NewServer returns a Server configured from cfg's common and [pop3d]
// keys.
func NewServer(cfg *config.Config, users func() Users, tlsConfig func() *tls.Config, log *slog.Logger) *Server {
	s := &Server{Logger: log}
	s.configure(cfg, users, tlsConfig)
	return s
}

// configure sets the fields mailroom.conf decides.
func (s *Server) configure(cfg *config.Config, users func() Users, tlsConfig func() *tls.Config) {
	s.Hostname = cfg.Hostname
	s.Users = users
	s.TLS = tlsConfig
	s.PlaintextAuthOnLoopback = cfg.PlaintextAuthOnLoopback
	s.UIDLFormat = cfg.Pop3d.UIDLFormat
	s.IdleTimeout = cfg.Pop3d.IdleTimeout
	s.Expire = cfg.Pop3d.Expire
	s.LoginDelay = cfg.Pop3d.LoginDelay
}

// Apply makes cfg's settings, users and tlsConfig those of the sessions
// that start from now on (SIGHUP); sessions in flight keep theirs. The
// fields mailroom.conf does not set stay as they are.
func (s *Server) Apply(cfg *config.Config, users func() Users, tlsConfig func() *tls.Config) {
	s.init()
	next := s.snapshot().clone()
	next.configure(cfg, users, tlsConfig)
	s.current.Store(next)
}

// snapshot is the settings a session starting now gets.
func (s *Server) snapshot() *Server {
	if cur := s.current.Load(); cur != nil {
		return cur
	}
	return s
}

// clone copies the settings (field by field: a Server holds a sync.Once)
// and shares the state.
func (s *Server) clone() *Server {
	return &Server{
		Hostname:                s.Hostname,
		Users:                   s.Users,
		TLS:                     s.TLS,
		PlaintextAuthOnLoopback: s.PlaintextAuthOnLoopback,
		UIDLFormat:              s.UIDLFormat,
		IdleTimeout:             s.IdleTimeout,
		LoginTimeout:            s.LoginTimeout,
		Expire:                  s.Expire,
		LoginDelay:              s.LoginDelay,
		MaxAuthFailures:         s.MaxAuthFailures,
		AuthDelay:               s.AuthDelay,
		MaxAuthDelay:            s.MaxAuthDelay,
		MaxErrors:               s.MaxErrors,
		Logger:                  s.Logger,
		shared:                  s.shared,
	}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("pop3d: server closed")

func (s *Server) init() {
	s.initOnce.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		if s.shared != nil {
			return // a snapshot: the state is its Server's
		}
		s.shared = &shared{
			done:      make(chan struct{}),
			listeners: map[net.Listener]bool{},
			sessions:  map[*session]bool{},
		}
	})
}

// Serve accepts connections on l until Shutdown (ErrServerClosed) or an
// accept error. implicitTLS makes it a pop3s listener (RFC 8314 §3.3):
// the TLS handshake comes before the greeting.
func (s *Server) Serve(l net.Listener, implicitTLS bool) error {
	s.init()
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.shutting.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Temporary (EMFILE and the like): wait and retry, as
				// net/http does, rather than give up the listener.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Logger.Warn("accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
				}
				continue
			}
			return fmt.Errorf("pop3d: accept: %w", err)
		}
		backoff = 0
		go s.ServeConn(c, implicitTLS)
	}
}

// ServeConn runs one session on c and closes c when it ends.
func (s *Server) ServeConn(c net.Conn, implicitTLS bool) {
	s.init()
	ss := newSession(s.snapshot(), c)
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.sessions[ss] = true
	// Added under mu after the shutting check, so Shutdown's Wait never
	// races an Add from zero.
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		s.wg.Done()
	}()
	ss.run(implicitTLS)
}

// Shutdown stops the listeners, lets every session finish the command it
// is executing (sessions waiting for a command are told the server is
// going away and closed; nothing is expunged), and waits for them until
// ctx ends, when the remaining connections are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.shutting.Swap(true) {
		close(s.done)
	}
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for ss := range s.sessions {
		ss.interrupt()
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		s.mu.Lock()
		for ss := range s.sessions {
			_ = ss.conn.Close()
		}
		s.mu.Unlock()
		<-finished
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return 10 * time.Minute
}

func (s *Server) loginTimeout() time.Duration {
	if s.LoginTimeout > 0 {
		return s.LoginTimeout
	}
	return DefaultLoginTimeout
}

func (s *Server) maxAuthFailures() int {
	if s.MaxAuthFailures > 0 {
		return s.MaxAuthFailures
	}
	return DefaultMaxAuthFailures
}

func (s *Server) maxErrors() int {
	if s.MaxErrors > 0 {
		return s.MaxErrors
	}
	return DefaultMaxErrors
}

// authDelay is the wait before answering the n-th failed login (n ≥ 1).
func (s *Server) authDelay(n int) time.Duration {
	base, limit := s.AuthDelay, s.MaxAuthDelay
	switch {
	case base < 0:
		return 0
	case base == 0:
		base = DefaultAuthDelay
	}
	if limit <= 0 {
		limit = DefaultMaxAuthDelay
	}
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func (s *Server) tlsConfig() *tls.Config {
	if s.TLS == nil {
		return nil
	}
	return s.TLS()
}

// connID returns a new connection id for the logs: random, so that ids
// from different processes (inetd, Accept=yes) never collide.
func connID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
