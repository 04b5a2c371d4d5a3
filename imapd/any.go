package imapd

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mailroom/imapd/wire"
	"mailroom/internal/listen"
)

// capabilities lists what the session offers now (RFC 9051 §6.1.1): the
// login-related ones depend on the state and on TLS.
func (ss *session) capabilities() string {
	caps := []string{"IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ENABLE", "ID", "IDLE"}
	if ss.state == stateNotAuth {
		if !ss.tls && ss.srv.tlsConfig() != nil {
			caps = append(caps, "STARTTLS")
		}
		if ss.passwordAllowed() {
			caps = append(caps, "AUTH=PLAIN")
		} else {
			// RFC 9051 §6.2.3: LOGIN (and PLAIN) refused until TLS.
			caps = append(caps, "LOGINDISABLED")
		}
		return strings.Join(caps, " ")
	}
	caps = append(caps, "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN",
		"LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "ESEARCH", "SEARCHRES", "CONDSTORE", "QRESYNC", "STATUS=SIZE",
		"UTF8=ACCEPT", "APPENDLIMIT="+strconv.FormatInt(ss.srv.appendLimit(), 10))
	caps = append(caps, ss.extCapabilities()...) // QUOTA, MULTIAPPEND, COMPRESS (imapd/quota.go)
	return strings.Join(caps, " ")
}

// passwordAllowed reports whether the client may send a password now:
// over TLS, or from loopback when the admin allows it.
func (ss *session) passwordAllowed() bool {
	return ss.tls || ss.srv.PlaintextAuthOnLoopback && listen.IsLoopback(ss.remote)
}

func noArgs(c *wire.Command) error {
	if len(c.Args) != 0 {
		return bad("%s takes no arguments", c.Name)
	}
	return nil
}

func (ss *session) cmdCapability(c *wire.Command) error {
	if err := noArgs(c); err != nil {
		return err
	}
	ss.untagged("CAPABILITY " + ss.capabilities())
	return nil
}

// cmdNoop is NOOP and CHECK: the pending updates go out with the tagged
// response (dispatch), after a sync of the selected mailbox.
func (ss *session) cmdNoop(c *wire.Command) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if ss.sel != nil {
		if err := ss.sel.view.sync(); err != nil {
			return err
		}
	}
	return nil
}

func (ss *session) cmdLogout(c *wire.Command) error {
	if err := noArgs(c); err != nil {
		return err
	}
	ss.w.Status("", "BYE", "", "logging out")
	ss.state = stateLogout
	return nil
}

// cmdID answers RFC 2971 ID; what the client says is logged.
func (ss *session) cmdID(c *wire.Command) error {
	fields, err := wire.ParseID(c.Args)
	if err != nil {
		return err
	}
	var attrs []any
	for i, f := range fields {
		if i == 30 {
			break
		}
		if !f.Nil && len(f.Value) <= 1024 {
			attrs = append(attrs, strings.ToLower(f.Key), f.Value)
		}
	}
	if len(attrs) > 0 {
		ss.log.Info("id", attrs...)
	}
	ss.untagged(`ID ("name" "mailroom")`)
	return nil
}

// cmdEnable turns on the extensions it knows (RFC 5161, RFC 9051 §6.3.1):
// IMAP4rev2, UTF8=ACCEPT (RFC 6855 §3), CONDSTORE and QRESYNC (RFC 7162
// §3.1, §3.2.3; QRESYNC implies CONDSTORE). Others are ignored. ENABLED
// lists what this command turned on, each once.
func (ss *session) cmdEnable(c *wire.Command) error {
	caps, err := wire.ParseEnable(c.Args)
	if err != nil {
		return err
	}
	var enabled []string
	before := ss.ext
	for _, cp := range caps {
		switch cp {
		case "CONDSTORE":
			if !before.condstore && !slices.Contains(enabled, "CONDSTORE") {
				enabled = append(enabled, "CONDSTORE")
			}
			ss.enableCondStore()
		case "QRESYNC":
			if !before.qresync && !slices.Contains(enabled, "QRESYNC") {
				enabled = append(enabled, "QRESYNC")
			}
			ss.enableQResync()
		case "IMAP4REV2":
			if !ss.rev2 {
				ss.rev2 = true
				enabled = append(enabled, "IMAP4rev2")
			}
			ss.setUTF8()
		case "UTF8=ACCEPT":
			if !ss.utf8 {
				enabled = append(enabled, "UTF8=ACCEPT")
			}
			ss.setUTF8()
		}
	}
	ss.untagged(strings.TrimSpace("ENABLED " + strings.Join(enabled, " ")))
	return nil
}

func (ss *session) setUTF8() {
	ss.utf8 = true
	ss.r.SetUTF8(true)
	ss.w.SetUTF8(true)
}

// cmdNamespace: one personal namespace with "." as delimiter (RFC 2342).
func (ss *session) cmdNamespace(c *wire.Command) error {
	if err := noArgs(c); err != nil {
		return err
	}
	ss.untagged(`NAMESPACE (("" ".")) NIL NIL`)
	return nil
}

// cmdStartTLS starts TLS (RFC 9051 §6.2.1). Whatever the client pipelined
// after the command is discarded with the old buffers (setWire), so no
// plaintext command can be injected into the TLS session.
func (ss *session) cmdStartTLS(c *wire.Command) error {
	if err := noArgs(c); err != nil {
		return err
	}
	switch {
	case ss.tls:
		return bad("TLS already active")
	case ss.srv.tlsConfig() == nil:
		return no("", "TLS not available")
	}
	ss.w.Status(c.Tag, "OK", "", "begin TLS negotiation now")
	if err := ss.w.Flush(); err != nil {
		return fmt.Errorf("%w: %w", errClose, err)
	}
	if n := ss.br.Buffered(); n > 0 {
		ss.log.Warn("starttls", "discarded_bytes", n)
	}
	if err := ss.handshake(); err != nil {
		return fmt.Errorf("%w: %w", errClose, err)
	}
	return errNoTagged
}
