package imapd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailroom/imapd/wire"
	"mailroom/internal/config"
	"mailroom/maildir"
)

// Users is the account table a login is checked against; *account.DB is
// one.
type Users interface {
	// Verify reports whether password is address's password.
	Verify(address, password string) bool
	// Mailbox returns the Maildir root of address.
	Mailbox(address string) (root string, ok bool)
}

// Defaults of the Server fields left zero. NewServer sets the fields
// [imapd] configures from mailroom.conf; these are for a Server built
// directly (tests) and for the fields the config file does not have.
const (
	// DefaultLoginTimeout bounds the not-authenticated state: a client
	// that has not logged in gets a short time to do so.
	DefaultLoginTimeout = 60 * time.Second
	// DefaultIdleTimeout is the autologout timer after login. RFC 9051
	// §5.4 asks for at least 30 minutes.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultMaxBad consecutive BAD responses end the session with BYE.
	DefaultMaxBad = 20
	// DefaultMaxAuthFailures failed logins close the connection.
	DefaultMaxAuthFailures = 5
	// DefaultAuthDelay is the wait before answering the first failed
	// login; it doubles with each further failure up to DefaultMaxAuthDelay.
	DefaultAuthDelay    = 1 * time.Second
	DefaultMaxAuthDelay = 8 * time.Second
	// DefaultAppendLimit is the largest message APPEND takes (RFC 7889).
	DefaultAppendLimit = 50 << 20
	// DefaultMaxConnectionsPerUser bounds the sessions one user may have
	// logged in at once in one imapd process. Desktop clients open up to
	// about five per account (Thunderbird's default), phones and mbsync
	// one or two each, so 20 leaves room for several devices while a
	// leaked password or a runaway client cannot take the whole
	// max_connections. A constant rather than max_connections_per_client:
	// that one counts a client address, where NAT puts many users behind
	// one address and one user's devices come from many.
	DefaultMaxConnectionsPerUser = 20
	// writeTimeout bounds how long a client may leave a response unread.
	writeTimeout = 5 * time.Minute
	// tlsHandshakeTimeout bounds the TLS handshake (imaps and STARTTLS).
	tlsHandshakeTimeout = 30 * time.Second
)

// Server serves IMAP sessions. Set the fields before the first Serve;
// they are read-only afterwards: Apply gives new sessions other settings,
// and sessions in flight keep the ones they started with. It is safe for
// concurrent use.
type Server struct {
	// Users returns the current account table; nil fails every login.
	Users func() Users
	// TLS returns the configuration for STARTTLS and imaps; nil (or a nil
	// result) means no TLS: STARTTLS is not offered.
	TLS func() *tls.Config
	// PlaintextAuthOnLoopback allows passwords without TLS from
	// 127.0.0.0/8 and ::1.
	PlaintextAuthOnLoopback bool
	LoginTimeout            time.Duration // before login; 0 = DefaultLoginTimeout
	IdleTimeout             time.Duration // after login; 0 = DefaultIdleTimeout
	MaxBad                  int           // 0 = DefaultMaxBad
	MaxAuthFailures         int           // 0 = DefaultMaxAuthFailures
	AuthDelay               time.Duration // 0 = DefaultAuthDelay; < 0 = none (tests)
	MaxAuthDelay            time.Duration // 0 = DefaultMaxAuthDelay
	AppendLimit             int64         // 0 = DefaultAppendLimit
	MaxConnectionsPerUser   int           // logged-in sessions per user; 0 = DefaultMaxConnectionsPerUser
	Logger                  *slog.Logger  // nil = discard
	// TextIndexBackground indexes a mailbox's text for SEARCH BODY and
	// TEXT in the background after SELECT and EXAMINE (textindex_bg.go);
	// off, the first such SEARCH does it. mailroom.conf turns it on.
	TextIndexBackground bool

	// DefaultQuota is the quota of a user without a quota rule of their
	// own ([deliver] quota and quota_messages, as deliver enforces it);
	// unlimited means maildirsize's definition line decides.
	DefaultQuota maildir.Quota

	initOnce sync.Once
	// shared is shared by the Server and every settings snapshot Apply
	// makes of it: sessions hold a snapshot, shutdown reaches them all,
	// and the views and per-user counts are the process's.
	*shared
}

// shared is what a Server and its snapshots share.
type shared struct {
	shutting  atomic.Bool
	done      chan struct{} // closed by Shutdown
	mu        sync.Mutex
	listeners map[net.Listener]bool
	sessions  map[*session]bool
	perUser   map[string]int // logged-in sessions by Maildir root, under mu
	wg        sync.WaitGroup
	views     *registry
	// indexSlot is held by the one background text indexer at work
	// (textindex_bg.go).
	indexSlot chan struct{}
	// current holds the settings new sessions start with; nil until the
	// first Apply, meaning the Server's own fields.
	current atomic.Pointer[Server]
}

// NewServer returns a Server configured from cfg: the common
// plaintext_auth_on_loopback and the [imapd] section. The connection
// limits of [imapd] apply to listeners (internal/daemon), not here.
func NewServer(cfg *config.Config, users func() Users, tlsConfig func() *tls.Config, log *slog.Logger) *Server {
	s := &Server{Logger: log}
	s.configure(cfg, users, tlsConfig)
	return s
}

// configure sets the fields mailroom.conf decides.
func (s *Server) configure(cfg *config.Config, users func() Users, tlsConfig func() *tls.Config) {
	s.Users = users
	s.TLS = tlsConfig
	s.PlaintextAuthOnLoopback = cfg.PlaintextAuthOnLoopback
	s.LoginTimeout = cfg.Imapd.LoginTimeout
	s.IdleTimeout = cfg.Imapd.IdleTimeout
	s.MaxBad = clampInt(cfg.Imapd.MaxErrors)
	s.MaxAuthFailures = clampInt(cfg.Imapd.MaxAuthFailures)
	s.AppendLimit = cfg.Imapd.AppendLimit
	s.TextIndexBackground = cfg.Imapd.TextIndexBackground
	s.DefaultQuota = maildir.Quota{Bytes: cfg.Deliver.Quota, Messages: cfg.Deliver.QuotaMessages}
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
		Users:                   s.Users,
		TLS:                     s.TLS,
		PlaintextAuthOnLoopback: s.PlaintextAuthOnLoopback,
		LoginTimeout:            s.LoginTimeout,
		IdleTimeout:             s.IdleTimeout,
		MaxBad:                  s.MaxBad,
		MaxAuthFailures:         s.MaxAuthFailures,
		AuthDelay:               s.AuthDelay,
		MaxAuthDelay:            s.MaxAuthDelay,
		AppendLimit:             s.AppendLimit,
		MaxConnectionsPerUser:   s.MaxConnectionsPerUser,
		Logger:                  s.Logger,
		TextIndexBackground:     s.TextIndexBackground,
		DefaultQuota:            s.DefaultQuota,
		shared:                  s.shared,
	}
}

// clampInt converts a config count to int; the config parser bounds
// counts, this only keeps a 32-bit int from wrapping.
func clampInt(n int64) int {
	return int(min(n, int64(math.MaxInt32)))
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("imapd: server closed")

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
			perUser:   map[string]int{},
			views:     newRegistry(),
			indexSlot: make(chan struct{}, 1),
		}
	})
}

// Serve accepts connections on l until Shutdown (ErrServerClosed) or an
// accept error. implicitTLS makes it an imaps listener (RFC 8314 §3.3):
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
				// EMFILE and the like: wait and retry rather than give
				// up the listener.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Logger.Warn("accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
				}
				continue
			}
			return fmt.Errorf("imapd: accept: %w", err)
		}
		backoff = 0
		go s.ServeConn(c, implicitTLS)
	}
}

// ServeConn runs one session on c and closes c when it ends. A panic in
// the session is logged and ends only that session.
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
	s.wg.Add(1) // under mu after the shutting check: Wait never races it
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		s.wg.Done()
	}()
	ss.run(implicitTLS)
}

// Shutdown stops the listeners, tells sessions waiting for a command
// "* BYE" and closes them, lets sessions busy with a command finish it,
// and waits for them until ctx ends, when the rest are closed.
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
	s.views.stop()
	return errors.Join(errs...)
}

func (s *Server) idleTimeout() time.Duration  { return orDuration(s.IdleTimeout, DefaultIdleTimeout) }
func (s *Server) loginTimeout() time.Duration { return orDuration(s.LoginTimeout, DefaultLoginTimeout) }
func (s *Server) maxBad() int                 { return orInt(s.MaxBad, DefaultMaxBad) }
func (s *Server) maxAuthFailures() int        { return orInt(s.MaxAuthFailures, DefaultMaxAuthFailures) }
func (s *Server) maxPerUser() int {
	return orInt(s.MaxConnectionsPerUser, DefaultMaxConnectionsPerUser)
}

// claimUser counts one more logged-in session of the mailbox root; false
// (and nothing counted) when the user already has the most allowed.
func (s *Server) claimUser(root string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[root] >= s.maxPerUser() {
		return false
	}
	s.perUser[root]++
	return true
}

// releaseUser undoes claimUser when the session ends.
func (s *Server) releaseUser(root string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perUser[root]--; s.perUser[root] <= 0 {
		delete(s.perUser, root)
	}
}
func (s *Server) appendLimit() int64 {
	if s.AppendLimit > 0 {
		return s.AppendLimit
	}
	return DefaultAppendLimit
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// authDelay is the wait before answering the n-th failed login (n ≥ 1).
func (s *Server) authDelay(n int) time.Duration {
	base, limit := s.AuthDelay, orDuration(s.MaxAuthDelay, DefaultMaxAuthDelay)
	switch {
	case base < 0:
		return 0
	case base == 0:
		base = DefaultAuthDelay
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

// limits are the wire limits of every session.
func (s *Server) limits() wire.Limits {
	l := wire.DefaultLimits
	l.MaxMessage = s.appendLimit()
	if l.MaxDiscard < l.MaxMessage+1<<20 {
		l.MaxDiscard = l.MaxMessage + 1<<20
	}
	return l
}

// connID returns a new connection id for the logs: random, so that ids
// from different processes (inetd, Accept=yes) never collide.
func connID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
