package smtpd

import (
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SASL mechanisms offered (RFC 4954): PLAIN (RFC 4616) and the obsolete
// but still common LOGIN. Both carry the password, hence TLS only.
const (
	mechPlain = "PLAIN"
	mechLogin = "LOGIN"
)

var errEncryptionRequired = &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11},
	Message: "Encryption required for requested authentication mechanism"}

// authAllowed reports whether a password may cross this connection: under
// TLS, or from loopback when plaintext_auth_on_loopback is set.
func (s *session) authAllowed() bool {
	if _, ok := s.conn.TLSConnectionState(); ok {
		return true
	}
	return s.cs.loopback && s.cs.s.cfg.PlaintextAuthOnLoopback
}

// AuthMechanisms is what EHLO advertises: nothing where AUTH is not
// allowed (RFC 4954 §4: a server should not offer plaintext mechanisms
// without a security layer).
func (s *session) AuthMechanisms() []string {
	if !s.authAllowed() {
		return nil
	}
	return []string{mechPlain, mechLogin}
}

// Auth starts a SASL exchange.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.authAllowed() {
		s.cs.rejected("reject", "cmd", "AUTH", "reason", "no TLS")
		return nil, errEncryptionRequired
	}
	if s.tx != nil {
		// RFC 4954 §4: AUTH is not permitted during a mail transaction.
		return nil, &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "AUTH not permitted during a mail transaction"}
	}
	switch strings.ToUpper(mech) {
	case mechPlain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && !strings.EqualFold(identity, username) {
				// Acting for another user is not supported.
				return s.authFailed(mechPlain, username)
			}
			return s.authenticate(mechPlain, username, password)
		}), nil
	case mechLogin:
		return &loginServer{auth: func(username, password string) error {
			return s.authenticate(mechLogin, username, password)
		}}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// authenticate checks a password against the account table.
func (s *session) authenticate(mech, username, password string) error {
	users := s.cs.s.tables.Load().Users
	if !users.Verify(username, password) {
		return s.authFailed(mech, username)
	}
	u, _ := users.Lookup(username)
	s.user = u.Address
	s.cs.log.Info("auth", "user", u.Address, "mech", mech, "result", "ok")
	return nil
}

// authFailed logs a failed login (user name only, never the password or
// the SASL data) and, past auth_failures_before_delay failures on this
// connection or from this client address, waits a growing delay before
// the reply, so that guessing is slow.
func (s *session) authFailed(mech, username string) error {
	cs := s.cs
	cs.mu.Lock()
	cs.authFailures++
	conn := cs.authFailures
	cs.mu.Unlock()
	client := cs.s.auth.fail(cs.ip, time.Now())
	delay := authDelay(max(conn, client), int(cs.s.cfg.Smtpd.AuthFailuresBeforeDelay), cs.s.authDelay)
	cs.rejected("auth", "client", cs.remote.String(), "user", clean(username, 255), "mech", mech, "result", "fail", "delay", delay)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-cs.raw.done:
			t.Stop()
		}
	}
	return smtp.ErrAuthFailed
}

// authDelay is the wait before answering the n-th failure: none up to
// free failures, then unit, doubling, at most 30 units.
func authDelay(n, free int, unit time.Duration) time.Duration {
	k := n - free
	if k <= 0 {
		return 0
	}
	d := unit << min(k-1, 5)
	return min(d, 30*unit)
}

// authMemory is how long a client address's failures are remembered, and
// maxTracked bounds how many addresses are.
const (
	authMemory = 15 * time.Minute
	maxTracked = 10000
)

// authLimiter counts failed logins per client address across connections.
type authLimiter struct {
	mu sync.Mutex
	m  map[string]*ipFailures
}

type ipFailures struct {
	n    int
	last time.Time
}

func newAuthLimiter() *authLimiter { return &authLimiter{m: make(map[string]*ipFailures)} }

// fail records a failure from ip and returns its recent count.
func (a *authLimiter) fail(ip string, now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.m[ip]
	if f == nil || now.Sub(f.last) > authMemory {
		if len(a.m) >= maxTracked {
			a.prune(now)
		}
		f = &ipFailures{}
		a.m[ip] = f
	}
	f.n++
	f.last = now
	return f.n
}

// prune forgets expired addresses, or all of them if none expired, so
// that a flood of addresses cannot grow the map without bound.
func (a *authLimiter) prune(now time.Time) {
	for ip, f := range a.m {
		if now.Sub(f.last) > authMemory {
			delete(a.m, ip)
		}
	}
	if len(a.m) >= maxTracked {
		clear(a.m)
	}
}

// loginServer is the server side of SASL LOGIN (draft-murchison-sasl-login),
// which go-sasl provides only as a client: "Username:" and "Password:"
// challenges, or the user name as initial response.
type loginServer struct {
	step     int
	username string
	auth     func(username, password string) error
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 1:
		l.username, l.step = string(response), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.auth(l.username, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}
