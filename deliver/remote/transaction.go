package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-smtp"

	"mailroom/deliver"
	"mailroom/spool"
)

// messageInfo is what the transport needs to know of the content.
type messageInfo struct {
	start      int64 // where the message starts: after a leading "From " line
	header8bit bool  // the header section has non-ASCII bytes (UTF-8 fields)
}

// maxHeaderScan bounds how much of a message is read to find its header
// section's end.
const maxHeaderScan = 1 << 20

// inspectMessage skips an mbox From_ line (never valid on the wire) and
// looks for 8-bit bytes in the header section.
func inspectMessage(msg *deliver.RemoteMessage) (messageInfo, error) {
	var mi messageInfo
	br := bufio.NewReader(io.NewSectionReader(msg.Data, 0, msg.Size))
	var read int64
	for first := true; read < maxHeaderScan; first = false {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil // a long line: go on with the rest of it
		}
		read += int64(len(line))
		if first && strings.HasPrefix(string(line), "From ") {
			mi.start = int64(len(line))
		} else if len(strings.TrimRight(string(line), "\r\n")) == 0 && len(line) > 0 {
			break // the end of the header section
		}
		for _, b := range line {
			if b >= 0x80 {
				mi.header8bit = true
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return mi, err
		}
	}
	return mi, nil
}

func nonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// transact runs one mail transaction for the recipients idx on s and
// records their results. It returns the recipients worth trying on the
// next server: those the session failed before the message was sent
// (connection lost, 421). s goes back to the pool, or is closed.
func (t *Transport) transact(ctx context.Context, s *session, msg *deliver.RemoteMessage, mi messageInfo, idx []int, results []deliver.RemoteResult) (retry []int) {
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	broken := false
	defer func() {
		if !stop() {
			broken = true // ctx cut the connection
		}
		if broken {
			s.c.Close()
			s.raw.Close()
			return
		}
		t.pool.put(s)
	}()
	s.uses++
	// lost marks the session dead; the recipients get a temporary result
	// and, before DATA was sent, another server's chance.
	lost := func(err error, step string, rest []int, again bool) []int {
		broken = true
		r := deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.2", Relay: s.relay,
			Reason: fmt.Sprintf("lost connection with %s while %s: %v", s.relay, step, err)}
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			r = replyResult(se, s.relay) // 421: the peer is closing
		}
		setAll(results, rest, r)
		if again {
			return rest
		}
		return nil
	}
	// refused records a reply to the whole transaction and ends it.
	refused := func(se *smtp.SMTPError, rest []int) {
		setAll(results, rest, replyResult(se, s.relay))
		if err := s.c.Reset(); err != nil {
			broken = true
		}
	}

	opts, perm := t.mailOptions(s, msg, mi, idx)
	if perm != nil {
		setAll(results, idx, *perm)
		return nil
	}
	if err := s.c.Mail(msg.Envelope.Sender, opts); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code != 421 {
			refused(se, idx)
			return nil
		}
		return lost(err, "sending MAIL FROM", idx, true)
	}
	var accepted []int
	for k, i := range idx {
		err := s.c.Rcpt(msg.Rcpts[i].Addr, rcptOptions(msg.Rcpts[i]))
		var se *smtp.SMTPError
		switch {
		case err == nil:
			accepted = append(accepted, i)
		case errors.As(err, &se) && se.Code != 421:
			results[i] = replyResult(se, s.relay)
		default:
			return lost(err, "sending RCPT TO", append(accepted, idx[k:]...), true)
		}
	}
	if len(accepted) == 0 {
		if err := s.c.Reset(); err != nil {
			broken = true
		}
		return nil
	}
	w, err := s.c.Data()
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code != 421 {
			refused(se, accepted)
			return nil
		}
		return lost(err, "sending DATA", accepted, true)
	}
	body := io.NewSectionReader(msg.Data, mi.start, msg.Size-mi.start)
	if _, err := io.Copy(w, body); err != nil {
		// The message was cut short, so the peer delivers nothing: the
		// next server may have it.
		return lost(err, "sending the message", accepted, true)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			setAll(results, accepted, replyResult(se, s.relay))
			broken = se.Code == 421
			return nil
		}
		// The reply to the final dot is lost: it may have been taken, so
		// no other server gets it now (a retry may duplicate it, never
		// lose it: RFC 5321 §4.1.1.4 "at least once").
		return lost(err, "waiting for the reply to the end of data", accepted, false)
	}
	setAll(results, accepted, sentResult(resp.StatusText, s.relay))
	return nil
}

// mailOptions decides the MAIL FROM parameters, or a permanent failure
// when the message cannot go to this peer.
func (t *Transport) mailOptions(s *session, msg *deliver.RemoteMessage, mi messageInfo, idx []int) (*smtp.MailOptions, *deliver.RemoteResult) {
	env := msg.Envelope
	// RFC 6531 §3.2: an address that is not ASCII needs SMTPUTF8 at the
	// peer. So do UTF-8 header fields of a message that came with the
	// SMTPUTF8 flag; a flagged message that is all ASCII after all is
	// sent without it (the downgrade Postfix makes too).
	need := nonASCII(env.Sender) || env.SMTPUTF8 && mi.header8bit
	for _, i := range idx {
		need = need || nonASCII(msg.Rcpts[i].Addr)
	}
	utf8ok, _ := s.c.Extension("SMTPUTF8")
	if need && !utf8ok {
		return nil, &deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.6.7", Relay: s.relay,
			Reason: "SMTPUTF8 is required, but was not offered by " + s.relay}
	}
	if max, ok := s.c.MaxMessageSize(); ok && max > 0 && msg.Size-mi.start > int64(max) {
		// RFC 1870 §6.2: the peer would refuse it; RFC 3463 5.3.4.
		return nil, &deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.3.4", Relay: s.relay,
			Reason: fmt.Sprintf("message size %d exceeds the limit of %d at %s", msg.Size-mi.start, max, s.relay)}
	}
	// go-smtp adds BODY=8BITMIME whenever the peer offers it. When it
	// does not, an 8-bit body is sent as it is (RFC 6152 §3 would have
	// it converted; see deliver(8), REMOTE DELIVERY).
	opts := &smtp.MailOptions{Size: msg.Size - mi.start, UTF8: (need || env.SMTPUTF8) && utf8ok}
	// RFC 3461 §4.3, §4.4 (go-smtp sends them only to a peer offering DSN).
	switch env.Ret {
	case spool.RetFull:
		opts.Return = smtp.DSNReturnFull
	case spool.RetHdrs:
		opts.Return = smtp.DSNReturnHeaders
	}
	if env.EnvID != "" && !nonASCII(env.EnvID) && !strings.ContainsAny(env.EnvID, "\r\n") {
		opts.EnvelopeID = env.EnvID
	}
	return opts, nil
}

// rcptOptions passes a recipient's DSN parameters on (RFC 3461 §6.2).
func rcptOptions(r spool.Recipient) *smtp.RcptOptions {
	opts := &smtp.RcptOptions{}
	switch {
	case r.Notify&spool.NotifyNever != 0:
		opts.Notify = []smtp.DSNNotify{smtp.DSNNotifyNever}
	case r.Notify != 0:
		if r.Notify&spool.NotifySuccess != 0 {
			opts.Notify = append(opts.Notify, smtp.DSNNotifySuccess)
		}
		if r.Notify&spool.NotifyFailure != 0 {
			opts.Notify = append(opts.Notify, smtp.DSNNotifyFailure)
		}
		if r.Notify&spool.NotifyDelay != 0 {
			opts.Notify = append(opts.Notify, smtp.DSNNotifyDelayed)
		}
	}
	if typ, addr, ok := strings.Cut(r.ORcpt, ";"); ok && addr != "" && !strings.ContainsAny(addr, "\r\n") {
		switch {
		case strings.EqualFold(typ, "rfc822") && !nonASCII(addr):
			opts.OriginalRecipientType, opts.OriginalRecipient = smtp.DSNAddressTypeRFC822, addr
		case strings.EqualFold(typ, "utf-8"):
			opts.OriginalRecipientType, opts.OriginalRecipient = smtp.DSNAddressTypeUTF8, addr
		}
	}
	return opts
}

// replyResult maps a reply onto a result: 2xx sent, 5xx permanent,
// anything else temporary. Status is the reply's enhanced code (RFC 2034)
// when it agrees with the reply's class, else X.0.0 of that class.
func replyResult(se *smtp.SMTPError, relay string) deliver.RemoteResult {
	class := se.Code / 100
	r := deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Relay: relay}
	switch class {
	case 2:
		r.Outcome = deliver.RemoteSent
	case 5:
		r.Outcome = deliver.RemotePermFail
	default:
		class = 4
	}
	ec := se.EnhancedCode
	text := strings.Join(strings.Fields(se.Message), " ")
	if ec[0] == se.Code/100 && ec[0] >= 2 && ec[1] >= 0 && ec[2] >= 0 {
		r.Status = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
		r.Reply = fmt.Sprintf("%d %s %s", se.Code, r.Status, text)
	} else {
		r.Status = fmt.Sprintf("%d.0.0", class)
		r.Reply = fmt.Sprintf("%d %s", se.Code, text)
	}
	r.Reply = strings.TrimSpace(r.Reply)
	return r
}

// sentResult is the result of an accepted message; text is the reply to
// the final dot, without its code ("2.0.0 Ok: queued as 4Z...").
func sentResult(text, relay string) deliver.RemoteResult {
	text = strings.Join(strings.Fields(text), " ")
	status := "2.0.0"
	if f, _, _ := strings.Cut(text, " "); len(f) >= 5 && f[0] == '2' && f[1] == '.' {
		status = f
	}
	return deliver.RemoteResult{Outcome: deliver.RemoteSent, Status: status, Reply: strings.TrimSpace("250 " + text), Relay: relay}
}
