package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"

	"mailroom/deliver"
	"mailroom/internal/tlsconf"
)

// session is one SMTP connection, ready for a MAIL command.
type session struct {
	c     *client
	raw   net.Conn // the TCP connection, closed to cut a session short
	key   string   // the pool key
	relay string   // "host[ip]:port"
	tls   string   // "none", "verified", "unverified"
	uses  int      // transactions started on it
}

// endpoint is one address of one server, with how to talk to it.
type endpoint struct {
	host  string // for TLS verification and logs
	addr  string // "ip:port"
	auth  bool   // AUTH as relay_user (the relay host only)
	noTLS bool   // the TLS handshake failed before: plaintext (level may)
}

func (e endpoint) relay() string {
	ip, port, _ := net.SplitHostPort(e.addr)
	return e.host + "[" + ip + "]:" + port
}

func (e endpoint) key(level TLSLevel) string {
	return e.host + "|" + e.addr + "|" + string(level) + "|" + strconv.FormatBool(e.auth)
}

// connectError is why a connection could not be made ready; result says
// what the recipients get if no other server does better.
type connectError struct {
	result      deliver.RemoteResult
	tlsFallback bool // level may and the handshake failed: retry in plaintext
	err         error
}

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// dial opens and prepares a session: greeting, EHLO, STARTTLS as the TLS
// level says, AUTH for the relay host.
func (t *Transport) dial(ctx context.Context, ep endpoint) (*session, error) {
	relay := ep.relay()
	fail := func(status, format string, args ...any) *connectError {
		err := fmt.Errorf(format, args...)
		return &connectError{err: err, result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail,
			Status: status, Reason: err.Error(), Relay: relay}}
	}
	dctx, cancel := context.WithTimeout(ctx, t.opts.Timeouts.Connect)
	defer cancel()
	raw, err := t.dialTCP(dctx, ep.addr)
	if err != nil {
		return nil, fail("4.4.1", "connect to %s: %w", relay, err)
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	s := &session{raw: raw, key: ep.key(t.opts.TLSLevel), relay: relay, tls: "none"}
	s.c = newClient(raw, t.opts.Timeouts)
	// RFC 5321 §4.5.3.2.1: the greeting may take up to 5 minutes; so may
	// the EHLO.
	if err := s.c.greet(t.opts.Hostname); err != nil {
		raw.Close()
		return nil, sessionFailure(err, relay, "greeting or EHLO")
	}
	if t.opts.TLSLevel != TLSNone && !ep.noTLS {
		if err := t.startTLS(ctx, s, ep); err != nil {
			raw.Close()
			return nil, err
		}
	}
	if ep.auth {
		if err := t.auth(s); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// startTLS runs STARTTLS (RFC 3207) when the level and the peer allow it.
// Nothing the peer sent before the TLS session began is carried into it
// (RFC 3207 §6's injection attack: see client.startTLS), and EHLO is said
// again over TLS (RFC 3207 §4.2).
func (t *Transport) startTLS(ctx context.Context, s *session, ep endpoint) error {
	level := t.opts.TLSLevel
	if ok, _ := s.c.extension("STARTTLS"); !ok {
		if level == TLSMay {
			return nil
		}
		return &connectError{err: fmt.Errorf("%s does not offer STARTTLS", s.relay),
			result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.7.4",
				Reason: "TLS is required, but was not offered by " + s.relay, Relay: s.relay}}
	}
	r, err := s.c.startTLS()
	var re *replyError
	if errors.As(err, &re) {
		reply := r.String()
		if level == TLSMay {
			// Still a good plaintext session (RFC 3207 §4: the client may
			// go on without TLS).
			t.opts.Logger.Info("tls", "relay", s.relay, "tls", "none", "reason", "STARTTLS refused: "+reply)
			return nil
		}
		return &connectError{err: fmt.Errorf("%s refused STARTTLS: %s", s.relay, reply),
			result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.7.4", Reply: reply, Relay: s.relay}}
	}
	if err != nil && r == nil {
		return sessionFailure(err, s.relay, "STARTTLS")
	}
	if err == nil {
		var verified bool
		cfg := t.tlsConfig(ep.host, &verified)
		tc := tls.Client(s.raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, t.opts.Timeouts.Command)
		defer cancel()
		err = tc.HandshakeContext(hctx)
		if err == nil {
			s.tls = "unverified"
			if verified {
				s.tls = "verified"
			}
			s.c.switchTLS(tc)
		}
	}
	// A failed handshake, or plaintext bytes after the 220.
	if err != nil {
		if level == TLSMay {
			// Postfix at level may: a failed handshake is retried in
			// plaintext on a new connection.
			return &connectError{tlsFallback: true, err: fmt.Errorf("TLS handshake with %s: %w", s.relay, err)}
		}
		return &connectError{err: fmt.Errorf("TLS handshake with %s: %w", s.relay, err),
			result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.7.5",
				Reason: "TLS handshake failed: " + err.Error(), Relay: s.relay}}
	}
	if err := s.c.hello(t.opts.Hostname, t.opts.Timeouts.Command); err != nil {
		return sessionFailure(err, s.relay, "EHLO after STARTTLS")
	}
	if tc, ok := s.c.conn.(*tls.Conn); ok {
		t.opts.Logger.Debug("tls", "relay", s.relay, "tls", s.tls, "cipher", tlsconf.Describe(tc.ConnectionState()))
	}
	return nil
}

// tlsConfig verifies the peer's certificate itself so that level may can
// go on with an unverified one and still know which it got; level verify
// refuses it. The name checked is the server's (the MX host, or the
// relay), as Postfix's smtp_tls_verify_cert_match = hostname.
func (t *Transport) tlsConfig(host string, verified *bool) *tls.Config {
	cfg := &tls.Config{
		InsecureSkipVerify: true, // verified below, by VerifyConnection
		MinVersion:         tls.VersionTLS12,
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host // SNI carries names only (RFC 6066 §3)
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		err := verifyPeer(cs, t.opts.RootCAs, host)
		*verified = err == nil
		if err != nil && t.opts.TLSLevel == TLSVerify {
			return err
		}
		return nil
	}
	return cfg
}

func verifyPeer(cs tls.ConnectionState, roots *x509.CertPool, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no peer certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter})
	return err
}

// auth authenticates to the relay host, over TLS only: a password never
// crosses the network in the clear.
func (t *Transport) auth(s *session) error {
	fail := func(reply, reason string) *connectError {
		return &connectError{err: errors.New(reason + reply),
			result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.7.0", Reply: reply, Reason: reason, Relay: s.relay}}
	}
	if s.tls == "none" {
		return fail("", "refusing to send the relay password without TLS to "+s.relay)
	}
	var err error
	switch {
	case s.c.supportsAuth("PLAIN"):
		err = s.c.authPlain(t.opts.RelayUser, t.opts.RelayPassword)
	case s.c.supportsAuth("LOGIN"):
		err = s.c.authLogin(t.opts.RelayUser, t.opts.RelayPassword)
	default:
		return fail("", s.relay+" offers neither AUTH PLAIN nor AUTH LOGIN")
	}
	if err != nil {
		var re *replyError
		if errors.As(err, &re) {
			// Postfix defers on a failed login: the password may be fixed.
			r := replyResult(re.reply, s.relay)
			return &connectError{err: err, result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail,
				Status: "4" + r.Status[1:], Reply: r.Reply, Reason: "authentication failed", Relay: s.relay}}
		}
		return sessionFailure(err, s.relay, "AUTH")
	}
	return nil
}

// sessionFailure turns an error before the transaction into a connect
// error: a reply keeps its class (a 5xx greeting is permanent), anything
// else is a lost connection (4.4.2).
func sessionFailure(err error, relay, step string) *connectError {
	var re *replyError
	if errors.As(err, &re) {
		r := replyResult(re.reply, relay)
		r.Reason = step
		return &connectError{err: fmt.Errorf("%s: %s: %w", relay, step, err), result: r}
	}
	return &connectError{err: fmt.Errorf("%s: %s: %w", relay, step, err),
		result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.2",
			Reason: fmt.Sprintf("lost connection with %s during %s: %v", relay, step, err), Relay: relay}}
}

// close ends a session politely (QUIT, briefly bounded), then for sure.
func (s *session) close() {
	s.c.quit() // the connection is closed whatever QUIT got
	s.raw.Close()
}
