package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailroom/deliver"
	"mailroom/internal/tlsconf"
)

// session is one SMTP connection, ready for a MAIL command.
type session struct {
	c     *smtp.Client
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
	s.c = t.newClient(&guardConn{Conn: raw, writeTimeout: t.opts.Timeouts.DataBlock}, t.opts.Timeouts.Greeting)
	// RFC 5321 §4.5.3.2.1: the greeting may take up to 5 minutes; the
	// client's CommandTimeout covers the greeting and the EHLO.
	if err := s.c.Hello(t.opts.Hostname); err != nil {
		raw.Close()
		return nil, sessionFailure(err, relay, "greeting or EHLO")
	}
	s.c.CommandTimeout = t.opts.Timeouts.Command
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

func (t *Transport) newClient(c net.Conn, first time.Duration) *smtp.Client {
	cl := smtp.NewClient(c)
	cl.CommandTimeout = first
	cl.SubmissionTimeout = t.opts.Timeouts.DataDone
	return cl
}

// startTLS runs STARTTLS (RFC 3207) when the level and the peer allow it.
// go-smtp's client offers STARTTLS only before its own EHLO, under the
// name "localhost"; so the command is sent here on the raw connection,
// its reply read a byte at a time (nothing the peer sends early is
// buffered into the TLS session, RFC 3207 §6's injection attack), and a
// new client speaks EHLO again over TLS (RFC 3207 §4.2).
func (t *Transport) startTLS(ctx context.Context, s *session, ep endpoint) error {
	level := t.opts.TLSLevel
	if ok, _ := s.c.Extension("STARTTLS"); !ok {
		if level == TLSMay {
			return nil
		}
		return &connectError{err: fmt.Errorf("%s does not offer STARTTLS", s.relay),
			result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.7.4",
				Reason: "TLS is required, but was not offered by " + s.relay, Relay: s.relay}}
	}
	code, text, err := rawCommand(s.raw, "STARTTLS", t.opts.Timeouts.Command)
	if err != nil {
		return sessionFailure(err, s.relay, "STARTTLS")
	}
	if code != 220 {
		reply := fmt.Sprintf("%d %s", code, text)
		if level == TLSMay {
			// Still a good plaintext session (RFC 3207 §4: the client may
			// go on without TLS); nothing is pending in go-smtp's client.
			t.opts.Logger.Info("tls", "relay", s.relay, "tls", "none", "reason", "STARTTLS refused: "+reply)
			return nil
		}
		return &connectError{err: fmt.Errorf("%s refused STARTTLS: %s", s.relay, reply),
			result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.7.4", Reply: reply, Relay: s.relay}}
	}
	var verified bool
	cfg := t.tlsConfig(ep.host, &verified)
	tc := tls.Client(s.raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, t.opts.Timeouts.Command)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if level == TLSMay {
			// Postfix at level may: a failed handshake is retried in
			// plaintext on a new connection.
			return &connectError{tlsFallback: true, err: fmt.Errorf("TLS handshake with %s: %w", s.relay, err)}
		}
		return &connectError{err: fmt.Errorf("TLS handshake with %s: %w", s.relay, err),
			result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.7.5",
				Reason: "TLS handshake failed: " + err.Error(), Relay: s.relay}}
	}
	s.tls = "unverified"
	if verified {
		s.tls = "verified"
	}
	// The greeting was had before TLS; the new client is fed a stand-in.
	s.c = t.newClient(&guardConn{Conn: tc, prefix: []byte("220 TLS\r\n"), writeTimeout: t.opts.Timeouts.DataBlock},
		t.opts.Timeouts.Command)
	if err := s.c.Hello(t.opts.Hostname); err != nil {
		return sessionFailure(err, s.relay, "EHLO after STARTTLS")
	}
	t.opts.Logger.Debug("tls", "relay", s.relay, "tls", s.tls, "cipher", tlsconf.Describe(tc.ConnectionState()))
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
	var mech sasl.Client
	switch {
	case s.c.SupportsAuth("PLAIN"):
		mech = sasl.NewPlainClient("", t.opts.RelayUser, t.opts.RelayPassword)
	case s.c.SupportsAuth("LOGIN"):
		mech = sasl.NewLoginClient(t.opts.RelayUser, t.opts.RelayPassword)
	default:
		return fail("", s.relay+" offers neither AUTH PLAIN nor AUTH LOGIN")
	}
	if err := s.c.Auth(mech); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			// Postfix defers on a failed login: the password may be fixed.
			r := replyResult(se, s.relay)
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
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		r := replyResult(se, relay)
		r.Reason = step
		return &connectError{err: fmt.Errorf("%s: %s: %w", relay, step, err), result: r}
	}
	return &connectError{err: fmt.Errorf("%s: %s: %w", relay, step, err),
		result: deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.2",
			Reason: fmt.Sprintf("lost connection with %s during %s: %v", relay, step, err), Relay: relay}}
}

// close ends a session politely (QUIT, briefly bounded), then for sure.
func (s *session) close() {
	s.c.CommandTimeout = 10 * time.Second
	if err := s.c.Quit(); err != nil {
		s.c.Close()
	}
	s.raw.Close()
}

// maxRawReply bounds the STARTTLS reply read by hand.
const maxRawReply = 4096

// rawCommand sends one command on c and reads its reply a byte at a time,
// so that nothing after the reply is consumed.
func rawCommand(c net.Conn, cmd string, timeout time.Duration) (int, string, error) {
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return 0, "", err
	}
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return 0, "", err
	}
	var lines []string
	var line []byte
	b := make([]byte, 1)
	for total := 0; total < maxRawReply; total++ {
		if _, err := c.Read(b); err != nil {
			return 0, "", err
		}
		if b[0] != '\n' {
			line = append(line, b[0])
			continue
		}
		l := strings.TrimSuffix(string(line), "\r")
		line = line[:0]
		if len(l) < 3 {
			return 0, "", fmt.Errorf("malformed reply %q", l)
		}
		code, err := strconv.Atoi(l[:3])
		if err != nil || code < 100 || code > 599 {
			return 0, "", fmt.Errorf("malformed reply %q", l)
		}
		lines = append(lines, strings.TrimSpace(l[min(4, len(l)):]))
		if len(l) == 3 || l[3] == ' ' {
			return code, strings.Join(lines, " "), nil
		}
	}
	return 0, "", fmt.Errorf("reply to %s longer than %d bytes", cmd, maxRawReply)
}

// maxReplyBytes bounds what the peer may send in answer to one command
// (go-smtp bounds each line to 2000 bytes, not their number).
const maxReplyBytes = 64 << 10

// guardConn bounds reads between two writes, puts a deadline on every
// write (go-smtp's DATA writer has none), and can replay a stand-in
// greeting before the first real byte.
type guardConn struct {
	net.Conn
	prefix       []byte
	writeTimeout time.Duration
	read         int
}

func (g *guardConn) Read(p []byte) (int, error) {
	if len(g.prefix) > 0 {
		n := copy(p, g.prefix)
		g.prefix = g.prefix[n:]
		return n, nil
	}
	if g.read >= maxReplyBytes {
		return 0, fmt.Errorf("peer sent more than %d bytes in one reply", maxReplyBytes)
	}
	if len(p) > maxReplyBytes-g.read {
		p = p[:maxReplyBytes-g.read]
	}
	n, err := g.Conn.Read(p)
	g.read += n
	return n, err
}

func (g *guardConn) Write(p []byte) (int, error) {
	g.read = 0
	if g.writeTimeout > 0 {
		if err := g.Conn.SetWriteDeadline(time.Now().Add(g.writeTimeout)); err != nil {
			return 0, err
		}
	}
	return g.Conn.Write(p)
}
