package pop3d

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"mailroom/internal/listen"
)

// cmdCapa lists the capabilities (RFC 2449 §5). What it says depends on
// the state and on TLS: USER and SASL appear only where a password may be
// sent, STLS only while TLS is possible and not yet active.
func (ss *session) cmdCapa(arg string) error {
	if arg != "" {
		return ss.fail("CAPA takes no argument")
	}
	ss.reply("+OK Capability list follows")
	lines := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"}
	if ss.state == stateAuthorization {
		if ss.passwordAllowed() {
			lines = append(lines, "USER", "SASL PLAIN LOGIN")
		}
		if !ss.tls && ss.srv.tlsConfig() != nil {
			lines = append(lines, "STLS")
		}
	}
	if e := ss.srv.Expire; e != "" {
		// RFC 2449 §6.7: NEVER or a number of days.
		if strings.EqualFold(e, "never") {
			e = "NEVER"
		}
		lines = append(lines, "EXPIRE "+e)
	}
	if d := ss.srv.LoginDelay; d > 0 {
		lines = append(lines, "LOGIN-DELAY "+strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
	}
	lines = append(lines, "IMPLEMENTATION mailroom")
	for _, l := range lines {
		ss.reply("%s", l)
	}
	ss.reply(".")
	return nil
}

// passwordAllowed reports whether the client may send a password now:
// over TLS, or from loopback when the admin allows it (RFC 2595 §2.2:
// no plaintext passwords on an unprotected channel by default).
func (ss *session) passwordAllowed() bool {
	return ss.tls || ss.srv.PlaintextAuthOnLoopback && listen.IsLoopback(ss.remote)
}

const errPlaintext = "-ERR [AUTH] plaintext authentication disallowed on non-secure connections; use STLS"

func (ss *session) cmdQuit(arg string) error {
	if ss.state == stateTransaction {
		return ss.update()
	}
	ss.reply("+OK bye")
	return errClose
}

func (ss *session) cmdNoop(arg string) error {
	if arg != "" {
		return ss.fail("NOOP takes no argument")
	}
	ss.reply("+OK")
	return nil
}

// cmdStls starts TLS (RFC 2595 §4). The reader's buffer holds whatever
// the client pipelined after STLS; setWire throws it away, so no
// plaintext command can be injected into the TLS session.
func (ss *session) cmdStls(arg string) error {
	switch {
	case ss.tls:
		return ss.fail("TLS already active")
	case ss.srv.tlsConfig() == nil:
		return ss.fail("TLS not available")
	case arg != "":
		return ss.fail("STLS takes no argument")
	}
	ss.reply("+OK begin TLS negotiation")
	if err := ss.w.Flush(); err != nil {
		return err
	}
	if n := ss.r.Buffered(); n > 0 {
		ss.log.Warn("stls", "discarded_bytes", n)
	}
	// A USER given in the clear is forgotten with everything else.
	ss.user = ""
	return ss.handshake()
}

// cmdUser records the name for PASS (RFC 1939 §7). The reply does not
// say whether the user exists.
func (ss *session) cmdUser(arg string) error {
	if !ss.passwordAllowed() {
		ss.reply(errPlaintext)
		return nil
	}
	if arg == "" {
		return ss.fail("USER needs a name")
	}
	ss.user = arg
	ss.reply("+OK")
	return nil
}

// cmdPass checks the password for the last USER. RFC 1939 §7 lets the
// password contain spaces: the whole rest of the line is the argument.
func (ss *session) cmdPass(arg string) error {
	if !ss.passwordAllowed() {
		ss.reply(errPlaintext)
		return nil
	}
	if ss.user == "" {
		return ss.fail("USER first")
	}
	user := ss.user
	ss.user = ""
	return ss.login(user, arg, "USER")
}

// cmdAuth runs a SASL exchange (RFC 5034): PLAIN (RFC 4616) and LOGIN.
// Without an argument it lists the mechanisms, as clients that predate
// CAPA expect.
func (ss *session) cmdAuth(arg string) error {
	if !ss.passwordAllowed() {
		ss.reply(errPlaintext)
		return nil
	}
	mech, initial, hasInitial := strings.Cut(arg, " ")
	switch strings.ToUpper(mech) {
	case "":
		ss.reply("+OK")
		ss.reply("PLAIN")
		ss.reply("LOGIN")
		ss.reply(".")
		return nil
	case "PLAIN":
		return ss.authPlain(initial, hasInitial)
	case "LOGIN":
		return ss.authLogin(initial, hasInitial)
	}
	return ss.fail("unsupported authentication mechanism")
}

// errAuthCancelled is a client's "*" (RFC 5034 §4).
var errAuthCancelled = errors.New("cancelled")

// errAuthSyntax is a response that is not base64 or not the mechanism's
// shape.
var errAuthSyntax = errors.New("malformed response")

// saslResponse sends a challenge and reads the response, decoded.
func (ss *session) saslResponse(challenge string) ([]byte, error) {
	ss.reply("+ %s", base64.StdEncoding.EncodeToString([]byte(challenge)))
	if err := ss.w.Flush(); err != nil {
		return nil, err
	}
	line, err := readLine(ss.r, maxSASLLine)
	if err != nil {
		if errors.Is(err, errLineTooLong) {
			return nil, errAuthSyntax
		}
		return nil, err
	}
	return decodeSASL(string(line))
}

// decodeSASL decodes one client response: base64, "=" for an empty
// initial response (RFC 5034 §4), "*" to cancel.
func decodeSASL(s string) ([]byte, error) {
	switch s {
	case "*":
		return nil, errAuthCancelled
	case "=":
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errAuthSyntax
	}
	return b, nil
}

func (ss *session) authPlain(initial string, hasInitial bool) error {
	var resp []byte
	var err error
	if hasInitial {
		resp, err = decodeSASL(initial)
	} else {
		resp, err = ss.saslResponse("")
	}
	if err != nil {
		return ss.saslFailed("PLAIN", err)
	}
	user, password, err := parsePlain(resp)
	if err != nil {
		return ss.saslFailed("PLAIN", err)
	}
	return ss.login(user, password, "PLAIN")
}

// parsePlain splits a PLAIN response "authzid NUL authcid NUL passwd"
// (RFC 4616 §2). An authorization identity other than the user's own is
// refused: no one may log in as someone else.
func parsePlain(b []byte) (user, password string, err error) {
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return "", "", errAuthSyntax
	}
	if len(parts[0]) > 0 && !strings.EqualFold(string(parts[0]), string(parts[1])) {
		return "", "", errAuthSyntax
	}
	return string(parts[1]), string(parts[2]), nil
}

func (ss *session) authLogin(initial string, hasInitial bool) error {
	var user []byte
	var err error
	if hasInitial {
		user, err = decodeSASL(initial)
	} else {
		user, err = ss.saslResponse("Username:")
	}
	if err != nil {
		return ss.saslFailed("LOGIN", err)
	}
	password, err := ss.saslResponse("Password:")
	if err != nil {
		return ss.saslFailed("LOGIN", err)
	}
	if len(user) == 0 {
		return ss.saslFailed("LOGIN", errAuthSyntax)
	}
	return ss.login(string(user), string(password), "LOGIN")
}

// saslFailed answers a SASL exchange that ended before a password could
// be checked. A cancel is not a failed login; garbage counts as one.
func (ss *session) saslFailed(mech string, err error) error {
	switch {
	case errors.Is(err, errAuthCancelled):
		ss.reply("-ERR authentication cancelled")
		return nil
	case errors.Is(err, errAuthSyntax):
		return ss.authFailed("", mech, "malformed SASL response")
	}
	return err
}

// login checks a password and, when it is right, locks and opens the
// maildrop and enters the TRANSACTION state.
func (ss *session) login(user, password, mech string) error {
	users := (Users)(nil)
	if ss.srv.Users != nil {
		users = ss.srv.Users()
	}
	if users == nil || !users.Verify(user, password) {
		return ss.authFailed(user, mech, "bad password or unknown user")
	}
	root, ok := users.Mailbox(user)
	if !ok {
		return ss.authFailed(user, mech, "no mailbox")
	}
	drop, err := openMaildrop(root, ss.srv.UIDLFormat, ss.log)
	switch {
	case errors.Is(err, errLocked):
		// RFC 2449 §8.1.2; the session stays in AUTHORIZATION.
		ss.log.Info("auth", "user", user, "mech", mech, "result", "in-use")
		ss.reply("-ERR [IN-USE] mailbox is locked by another POP3 session")
		return nil
	case err != nil:
		ss.log.Error("auth", "user", user, "mech", mech, "result", "maildrop", "err", err)
		ss.reply("-ERR [SYS/TEMP] cannot open the mailbox, try again later")
		return nil
	}
	ss.drop, ss.address, ss.state = drop, user, stateTransaction
	ss.log.Info("auth", "user", user, "mech", mech, "result", "ok", "messages", len(drop.msgs), "tls", ss.tls)
	ss.reply("+OK logged in, %d messages (%d octets)", drop.count, drop.octets)
	return nil
}

// authFailed answers a failed login after a delay that grows with every
// failure (bounded), and closes the connection after too many: password
// guessing gets slow and expensive. Only the user name is logged.
func (ss *session) authFailed(user, mech, reason string) error {
	ss.authFailures++
	// client= makes the line self-contained for fail2ban (docs/logging.md).
	ss.log.Info("auth", "client", ss.remote.String(), "user", user, "mech", mech, "result", "fail", "reason", reason, "failures", ss.authFailures)
	if d := ss.srv.authDelay(ss.authFailures); d > 0 {
		if err := ss.w.Flush(); err != nil {
			return err
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ss.srv.done:
			t.Stop()
		}
	}
	if ss.authFailures >= ss.srv.maxAuthFailures() {
		ss.reply("-ERR [AUTH] authentication failed; too many failures, closing connection")
		return errClose
	}
	ss.reply("-ERR [AUTH] authentication failed")
	return nil
}
