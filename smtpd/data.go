package smtpd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"mailroom/internal/tlsconf"
	"mailroom/spool"
)

// Replies of DATA and BDAT.
var (
	errTempStore = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Error: queue file write error, try again later"}
	errBareLine  = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Message refused: bare CR or LF found; lines must end with CRLF (RFC 5321 2.3.8)"}
	errLineTooLong = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message refused: line too long"}
	errDataTimeout = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Timeout exceeded, closing connection"}
	errNoRcpt      = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
)

// errBare is the copy's own marker for a bare CR or LF.
var errBare = errors.New("bare CR or LF")

// Data receives the message (DATA, or the chunks of BDAT) into the spool.
// The 250 goes out only when Writer.Commit has made message and envelope
// durable; anything else aborts the spool entry and answers an error.
//
// SMTP smuggling: go-smtp ends DATA only at CRLF "." CRLF (its dot state
// machine leaves a line start only after CRLF), so "\n.\n", "\r\n.\n",
// "\n.\r\n" and "\r.\r" never end a message early. What such a client
// meant as the end stays in the message as a bare LF or CR, and a message
// with a bare CR or LF is refused whole (554 5.6.0) and the connection
// closed, as Postfix's smtpd_forbid_bare_newline = reject does, so a
// downstream server that would read it differently never sees it. The bare
// characters are found in what go-smtp hands us (copyMessage) and, for the
// one pattern its reader swallows, in the raw stream (observer.checkBare).
func (s *session) Data(r io.Reader) error {
	cs := s.cs
	tx := s.tx
	if tx == nil || len(tx.rcpts) == 0 {
		io.Copy(io.Discard, r)
		return errNoRcpt
	}
	if cs.raw.isClosed() {
		return errClosing
	}
	env := s.envelope(tx)
	w, err := cs.s.spool.Create(env)
	if err != nil {
		io.Copy(io.Discard, r)
		cs.log.Error("spool", "err", err)
		cs.loggedReject.Store(true)
		return errTempStore
	}
	log := cs.log.With("msgid", w.ID().String())
	committed := false
	defer func() {
		if !committed {
			if err := w.Abort(); err != nil {
				log.Error("spool", "err", err)
			}
		}
	}()
	if d := cs.s.cfg.Smtpd.DataTimeout; d > 0 {
		cs.raw.dataIdle.Store(int64(d))
		defer cs.raw.dataIdle.Store(0)
	}
	var werr error
	if _, err := io.WriteString(w, s.received(w.ID(), tx, env.Protocol, env.TLS, time.Now())); err != nil {
		werr = err
	}
	err = copyMessage(w, r, werr)
	if cs.bareData.Swap(false) && err == nil {
		err = errBare // hidden from r by go-smtp; see observer.checkBare
	}
	if err != nil {
		return s.dataFailed(log, err)
	}
	if cs.raw.isClosed() {
		// The client is gone and can never see a 250: not accepting
		// keeps the message from being delivered twice when it retries.
		return errClosing
	}
	id, err := w.Commit()
	if err != nil {
		log.Error("spool", "err", err)
		cs.loggedReject.Store(true)
		return errTempStore
	}
	committed = true
	cs.messages.Add(1)
	m := w.Size()
	log.Info("accepted", "from", tx.from, "nrcpt", len(tx.rcpts), "size", m, "proto", env.Protocol, authUserAttr(s.user))
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + id.String()}
}

// dataFailed maps a failed DATA to its reply, logging why.
func (s *session) dataFailed(log interface {
	Info(string, ...any)
	Error(string, ...any)
}, err error) error {
	cs := s.cs
	var ne net.Error
	switch {
	case errors.Is(err, errBare):
		// As Postfix's smtpd_forbid_bare_newline = reject: refuse and
		// disconnect, since the client and we disagree on line ends.
		cs.rejected("reject", "cmd", "DATA", "reason", "bare CR or LF")
		cs.closeAfter.Store(true)
		return errBareLine
	case errors.Is(err, smtp.ErrDataTooLarge):
		cs.rejected("reject", "cmd", "DATA", "reason", "message too large")
		return smtp.ErrDataTooLarge
	case errors.Is(err, smtp.ErrTooLongLine):
		cs.rejected("reject", "cmd", "DATA", "reason", "line too long")
		return errLineTooLong
	case errors.As(err, &ne) && ne.Timeout():
		cs.rejected("reject", "cmd", "DATA", "reason", "timeout")
		return errDataTimeout
	case errors.Is(err, smtp.ErrDataReset), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		// The client reset or went away; no reply will be read.
		log.Info("abort", "reason", err.Error())
		cs.loggedReject.Store(true)
		return errClosing
	case errors.Is(err, errWrite):
		log.Error("spool", "err", err)
		cs.loggedReject.Store(true)
		return errTempStore
	}
	log.Info("abort", "err", err)
	cs.loggedReject.Store(true)
	return errTempStore
}

// errWrite wraps failures of the spool writer.
var errWrite = errors.New("spool write")

// copyBuffers recycles copyMessage's buffers (one per message otherwise).
var copyBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyMessage copies the message from r to w, checking that every CR is
// followed by LF and every LF preceded by CR. On a bare one, or when w
// fails (werr, or later), it stops writing but reads r to its end, so that
// the reply comes after the whole message as the client expects (for
// BDAT, after the LAST chunk). It returns the first problem: a read error,
// errBare, or a write error wrapped in errWrite.
func copyMessage(w io.Writer, r io.Reader, werr error) error {
	if werr != nil {
		werr = fmt.Errorf("%w: %w", errWrite, werr)
	}
	var bare error
	bp := copyBuffers.Get().(*[32 << 10]byte)
	defer copyBuffers.Put(bp)
	buf := bp[:]
	prevCR := false
	for {
		n, err := r.Read(buf)
		if n > 0 && bare == nil {
			p := buf[:n]
			for _, b := range p {
				if prevCR != (b == '\n') {
					bare = errBare
					break
				}
				prevCR = b == '\r'
			}
			if bare == nil && werr == nil {
				if _, err := w.Write(p); err != nil {
					werr = fmt.Errorf("%w: %w", errWrite, err)
				}
			}
		}
		if err == io.EOF {
			if bare == nil && prevCR {
				bare = errBare // a message ending in a lone CR (BDAT)
			}
			if bare != nil {
				return bare
			}
			return werr
		}
		if err != nil {
			return err
		}
	}
}

// envelope builds the spool envelope of the transaction.
func (s *session) envelope(tx *transaction) spool.Envelope {
	cs := s.cs
	env := spool.Envelope{
		Origin:     spool.OriginSMTP,
		AuthUser:   s.user,
		ClientAddr: cs.ip,
		Helo:       s.conn.Hostname(),
		Body:       tx.body,
		SMTPUTF8:   tx.utf8,
		Ret:        tx.ret,
		EnvID:      tx.envID,
		Sender:     tx.from,
		Recipients: tx.rcpts,
	}
	state, isTLS := s.conn.TLSConnectionState()
	if isTLS {
		env.TLS = describeTLS(state)
	}
	env.Protocol = protocol(cs.esmtp.Load(), isTLS, s.user != "")
	return env
}

// protocol is the "with" keyword of the Received line (RFC 3848).
func protocol(esmtp, tls, auth bool) string {
	if !esmtp {
		return "SMTP"
	}
	p := "ESMTP"
	if tls {
		p += "S"
	}
	if auth {
		p += "A"
	}
	return p
}

// describeTLS is tlsconf.Describe, for logs and the Received line.
func describeTLS(state tls.ConnectionState) string { return tlsconf.Describe(state) }

// received is the trace header prepended to the message (RFC 5321 §4.4):
//
//	Received: from HELO ([IP])
//		by HOST (mailroom) with ESMTPSA id QUEUEID
//		(using TLS1.3 TLS_AES_128_GCM_SHA256)
//		for <RCPT>; DATE
//
// The TLS comment appears under TLS, "for" only with one recipient (more
// would disclose the others' addresses).
func (s *session) received(id spool.ID, tx *transaction, proto, tlsDesc string, now time.Time) string {
	cs := s.cs
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(clean(s.conn.Hostname(), 255))
	b.WriteString(" (")
	b.WriteString(addressLiteral(cs.ip))
	b.WriteString(")\r\n\tby ")
	b.WriteString(clean(cs.s.cfg.Hostname, 255))
	b.WriteString(" (mailroom) with ")
	b.WriteString(proto)
	b.WriteString(" id ")
	b.WriteString(id.String())
	if tlsDesc != "" {
		b.WriteString("\r\n\t(using ")
		b.WriteString(tlsDesc)
		b.WriteString(")")
	}
	// RFC 5321 §4.5.3.1.3: a path is at most 256 octets; a longer one
	// is left out rather than folded.
	if len(tx.rcpts) == 1 && len(tx.rcpts[0].Addr) <= 254 {
		b.WriteString("\r\n\tfor <")
		b.WriteString(strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || r == '>' {
				return '?'
			}
			return r
		}, tx.rcpts[0].Addr))
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(now.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// addressLiteral renders a client IP as RFC 5321 §4.1.3 writes it.
func addressLiteral(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "[" + clean(ip, 64) + "]"
	}
	a = a.Unmap()
	if a.Is6() {
		return "[IPv6:" + a.String() + "]"
	}
	return "[" + a.String() + "]"
}
