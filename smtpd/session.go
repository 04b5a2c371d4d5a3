package smtpd

import (
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"mailroom/internal/route"
	"mailroom/spool"
)

// backend makes the sessions of one connection.
type backend struct{ cs *connState }

// NewSession is called by go-smtp at the first HELO/EHLO, and again at the
// first one after STARTTLS.
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	cs := b.cs
	cs.setSMTPConn(c)
	if cs.s.isDraining() {
		return nil, errShuttingDown(cs)
	}
	cs.log.Info("helo", "helo", clean(c.Hostname(), 255))
	if state, ok := c.TLSConnectionState(); ok {
		cs.mu.Lock()
		first := !cs.tlsLogged
		cs.tlsLogged = true
		cs.mu.Unlock()
		if first {
			cs.log.Info("tls", "tls", describeTLS(state))
		}
	}
	return &session{cs: cs, conn: c}, nil
}

// session is one go-smtp session: from a greeting to the end of the
// connection or to STARTTLS.
type session struct {
	cs   *connState
	conn *smtp.Conn
	user string // the authenticated account, "" if none
	tx   *transaction
}

// transaction is the envelope being built between MAIL and DATA.
type transaction struct {
	from  string
	body  spool.BodyType
	utf8  bool
	ret   spool.Ret
	envID string
	rcpts []spool.Recipient
	seen  map[string]bool
}

// Errors the session answers with.
var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errNeedUTF8     = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "Non-ASCII address requires SMTPUTF8"}
	errClosing      = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 0}, Message: "Connection closing"}
)

func errShuttingDown(cs *connState) error {
	return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: cs.s.cfg.Hostname + " Service shutting down"}
}

// Mail starts a transaction.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	cs := s.cs
	if cs.raw.isClosed() {
		return errClosing
	}
	if cs.service != ServiceSMTP && s.user == "" {
		// RFC 6409 §4.3 (and RFC 8314 for port 465): submission needs
		// an authenticated client.
		cs.rejected("reject", "cmd", "MAIL", "from", from, "reason", "not authenticated")
		return errAuthRequired
	}
	if !opts.UTF8 && !isASCII(from) {
		// RFC 6531 §3.4: a non-ASCII address without SMTPUTF8.
		cs.rejected("reject", "cmd", "MAIL", "from", from, "reason", "non-ASCII without SMTPUTF8")
		return errNeedUTF8
	}
	if s.user != "" && !s.owns(from) {
		cs.rejected("reject", "cmd", "MAIL", "from", from, "user", s.user, "reason", "sender not owned by user")
		return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: "<" + from + ">: Sender address rejected: not owned by user " + s.user}
	}
	tx := &transaction{from: from, body: spool.Body7Bit, utf8: opts.UTF8, envID: opts.EnvelopeID, seen: map[string]bool{}}
	switch opts.Body {
	case smtp.Body8BitMIME:
		tx.body = spool.Body8BitMIME
	case smtp.BodyBinaryMIME:
		tx.body = spool.BodyBinaryMIME
	}
	switch opts.Return {
	case smtp.DSNReturnFull:
		tx.ret = spool.RetFull
	case smtp.DSNReturnHeaders:
		tx.ret = spool.RetHdrs
	}
	if !cs.beginTx() {
		return errShuttingDown(cs)
	}
	s.tx = tx
	return nil
}

// owns reports whether the authenticated user may use addr as sender: it
// is the user's own address, or it routes to the user's mailbox (an alias,
// a sub-address). The null sender is nobody's: a user's mail must be
// answerable.
func (s *session) owns(addr string) bool {
	if addr == "" {
		return false
	}
	if strings.EqualFold(addr, s.user) {
		return true
	}
	tabs := s.cs.s.tables.Load()
	root, ok := tabs.Users.Mailbox(s.user)
	if !ok {
		return false
	}
	for _, t := range tabs.router.Resolve(addr).Targets {
		if t.Kind == route.Mailbox && t.Root == root {
			return true
		}
	}
	return false
}

// Rcpt checks a recipient at once (RFC 5321 §3.3: the server may reject
// it now): hosted addresses must exist, others need an authenticated
// client.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	cs := s.cs
	if cs.raw.isClosed() {
		return errClosing
	}
	tx := s.tx
	if tx == nil {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "MAIL first"}
	}
	if !tx.utf8 && !isASCII(to) {
		cs.rejected("reject", "cmd", "RCPT", "to", to, "reason", "non-ASCII without SMTPUTF8")
		return errNeedUTF8
	}
	if err := s.checkRecipient(to); err != nil {
		return err
	}
	key := strings.ToLower(to)
	if tx.seen[key] {
		// A repeated recipient gets one delivery (RFC 5321 §3.3
		// leaves duplicates to the server).
		return nil
	}
	tx.seen[key] = true
	r := spool.Recipient{Addr: to, Notify: notifyBits(opts.Notify)}
	if opts.OriginalRecipient != "" {
		// RFC 3461 §4.2: "addr-type;address", kept decoded.
		r.ORcpt = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
	}
	tx.rcpts = append(tx.rcpts, r)
	return nil
}

// checkRecipient applies the routing decision to one RCPT.
func (s *session) checkRecipient(to string) error {
	cs := s.cs
	res := cs.s.tables.Load().router.Resolve(to)
	if len(res.Steps) > 0 {
		switch res.Steps[0].Rule {
		case route.RuleInvalid:
			cs.rejected("reject", "cmd", "RCPT", "to", to, "reason", res.Steps[0].Detail)
			return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "<" + to + ">: Bad recipient address syntax"}
		case route.RuleRemote:
			if s.user == "" {
				cs.rejected("reject", "cmd", "RCPT", "to", to, "reason", "relay denied")
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "<" + to + ">: Relay access denied"}
			}
			return nil
		}
	}
	unknown := false
	reason := ""
	for _, t := range res.Targets {
		switch t.Kind {
		case route.Mailbox, route.Remote, route.Pipe, route.File:
			// Something will receive it; deliver reports on the rest.
			return nil
		case route.Unknown:
			unknown = true
		default:
			reason = t.Reason
		}
	}
	if unknown || reason == "" {
		cs.rejected("reject", "cmd", "RCPT", "to", to, "reason", "user unknown")
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected: User unknown"}
	}
	cs.rejected("reject", "cmd", "RCPT", "to", to, "reason", reason)
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "<" + to + ">: Recipient address rejected: " + clean(reason, 200)}
}

// notifyBits converts RCPT's NOTIFY= list (validated by go-smtp).
func notifyBits(ns []smtp.DSNNotify) spool.Notify {
	var n spool.Notify
	for _, v := range ns {
		switch v {
		case smtp.DSNNotifyNever:
			n |= spool.NotifyNever
		case smtp.DSNNotifySuccess:
			n |= spool.NotifySuccess
		case smtp.DSNNotifyFailure:
			n |= spool.NotifyFailure
		case smtp.DSNNotifyDelayed:
			n |= spool.NotifyDelay
		}
	}
	return n
}

// Reset ends the transaction (RSET, a new greeting, the end of DATA).
func (s *session) Reset() {
	s.tx = nil
	s.cs.endTx()
}

// Logout ends the session: at the end of the connection, or after a
// STARTTLS handshake, when the observer's view of the stream starts anew.
func (s *session) Logout() error {
	s.tx = nil
	s.cs.obs.afterTLS()
	s.cs.endTx()
	return nil
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// clean makes client-supplied text safe for a header field or a reply:
// control characters, invalid UTF-8 and the characters that would end a
// comment become '?'; the result is at most max bytes.
func clean(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		switch {
		case r == utf8.RuneError, r < 0x21, r == 0x7f, r >= 0x80 && r < 0xa0,
			r == '(', r == ')', r == '\\', r == ';':
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
