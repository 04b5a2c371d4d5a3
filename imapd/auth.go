package imapd

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// errPlaintext refuses a password on a channel without TLS (RFC 9051
// §6.2.3, RFC 8314 §2).
func errPlaintext() error {
	return no("PRIVACYREQUIRED", "plaintext authentication disallowed on non-secure connections; use STARTTLS")
}

// cmdLogin is LOGIN user password (RFC 9051 §6.2.3).
func (ss *session) cmdLogin(c *wire.Command) error {
	if !ss.passwordAllowed() {
		return errPlaintext()
	}
	args, err := wire.ParseAStrings(c.Args, 2)
	if err != nil {
		return err
	}
	return ss.login(c.Tag, args[0], args[1], "LOGIN")
}

// cmdAuthenticate runs SASL PLAIN (RFC 4616), with an initial response
// on the command line (SASL-IR, RFC 4959) or after a "+" continuation.
func (ss *session) cmdAuthenticate(c *wire.Command) error {
	if len(c.Args) < 1 || len(c.Args) > 2 {
		return bad("AUTHENTICATE needs a mechanism")
	}
	mech, ok := c.Args[0].Atom(true)
	if !ok {
		return bad("AUTHENTICATE needs a mechanism")
	}
	if mech != "PLAIN" {
		return no("", "unsupported authentication mechanism")
	}
	if !ss.passwordAllowed() {
		return errPlaintext()
	}
	var resp string
	if len(c.Args) == 2 {
		ir, ok := c.Args[1].Atom(false)
		if !ok {
			return bad("malformed initial response")
		}
		resp = ir
	} else {
		// RFC 9051 §6.2.2: PLAIN's challenge is empty, "+ " CRLF.
		if err := ss.w.Challenge(nil); err != nil {
			return fmt.Errorf("%w: %w", errClose, err)
		}
		line, err := ss.r.ReadLine()
		if err != nil {
			if _, ok := wire.AsError(err); ok {
				return bad("SASL response too long")
			}
			return fmt.Errorf("%w: %w", errClose, err)
		}
		resp = line
	}
	if resp == "*" {
		// RFC 9051 §6.2.2: the client cancelled.
		return bad("authentication cancelled")
	}
	var data []byte
	if resp != "=" {
		b, err := base64.StdEncoding.DecodeString(resp)
		if err != nil {
			return bad("malformed SASL response")
		}
		data = b
	}
	user, password, err := parsePlain(data)
	if err != nil {
		return ss.authFailed(c.Tag, "", "PLAIN", "malformed PLAIN response")
	}
	return ss.login(c.Tag, user, password, "PLAIN")
}

var errPlainSyntax = errors.New("malformed PLAIN response")

// parsePlain splits "authzid NUL authcid NUL passwd" (RFC 4616 §2). An
// authorization identity other than the user's own is refused.
func parsePlain(b []byte) (user, password string, err error) {
	parts := bytes.Split(b, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return "", "", errPlainSyntax
	}
	if len(parts[0]) > 0 && !strings.EqualFold(string(parts[0]), string(parts[1])) {
		return "", "", errPlainSyntax
	}
	return string(parts[1]), string(parts[2]), nil
}

// login checks a password and enters the authenticated state; on the
// first login the Maildir++ default folders are made (SPECIAL-USE).
func (ss *session) login(tag, user, password, mech string) error {
	var users Users
	if ss.srv.Users != nil {
		users = ss.srv.Users()
	}
	if users == nil || !users.Verify(user, password) {
		return ss.authFailed(tag, user, mech, "bad password or unknown user")
	}
	root, ok := users.Mailbox(user)
	if !ok {
		return ss.authFailed(tag, user, mech, "no mailbox")
	}
	// Issue 7: bounded connections per user, as well as per address.
	if !ss.srv.claimUser(root) {
		ss.log.Info("auth", "user", user, "mech", mech, "result", "limit", "max", ss.srv.maxPerUser())
		return no("LIMIT", "too many connections for this user; log out elsewhere or try again later")
	}
	if err := ensureDefaultFolders(root); err != nil {
		ss.srv.releaseUser(root)
		ss.log.Error("auth", "user", user, "mech", mech, "result", "maildir", "err", err)
		return no("UNAVAILABLE", "cannot open the mailbox, try again later")
	}
	ss.user, ss.root, ss.state = user, root, stateAuth
	ss.log.Info("auth", "user", user, "mech", mech, "result", "ok", "tls", ss.tls)
	// RFC 9051 §6.2.3: the capabilities may change after login; send them.
	return okCode("CAPABILITY "+ss.capabilities(), "logged in")
}

// authFailed answers a failed login after a delay that grows with every
// failure (bounded), and closes the connection after too many. Only the
// user name is logged.
func (ss *session) authFailed(tag, user, mech, reason string) error {
	ss.authFailures++
	// client= makes the line self-contained for fail2ban (docs/logging.md).
	ss.log.Info("auth", "client", ss.remote.String(), "user", user, "mech", mech, "result", "fail", "reason", reason, "failures", ss.authFailures)
	if d := ss.srv.authDelay(ss.authFailures); d > 0 {
		if err := ss.w.Flush(); err != nil {
			return fmt.Errorf("%w: %w", errClose, err)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ss.srv.done:
			t.Stop()
		}
	}
	if ss.authFailures >= ss.srv.maxAuthFailures() {
		ss.w.Status(tag, "NO", "AUTHENTICATIONFAILED", "authentication failed")
		ss.w.Status("", "BYE", "", "too many failed logins")
		return errClose
	}
	return no("AUTHENTICATIONFAILED", "authentication failed")
}

// ensureDefaultFolders makes the Maildir and its default folders unless
// they are all there, which one read of the root directory tells (open,
// getdents, close): maildir.CreateDefaultFolders stages each folder it
// tries in tmp/ before finding it exists, some 80 system calls with five
// directory fsyncs at every login. A folder the user deleted is made
// again, as before.
func ensureDefaultFolders(root string) error {
	if defaultFoldersPresent(root) {
		return nil
	}
	return maildir.CreateDefaultFolders(root)
}

// defaultFoldersPresent reports whether root holds cur/, new/, tmp/ and
// a directory for each of maildir.DefaultFolders. Any doubt (an error, an
// entry that is not a directory) says no, and CreateDefaultFolders
// decides.
func defaultFoldersPresent(root string) bool {
	f, err := os.Open(root)
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	ents, err := f.ReadDir(-1) // unsorted, types from d_type
	if err != nil {
		return false
	}
	dirs := make(map[string]bool, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			dirs[e.Name()] = true
		}
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if !dirs[sub] {
			return false
		}
	}
	for _, name := range maildir.DefaultFolders {
		p, err := maildir.FolderPath(root, name)
		if err != nil || !dirs[filepath.Base(p)] {
			return false
		}
	}
	return true
}
