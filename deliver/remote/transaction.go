package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

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

// eightBit reports whether the message (after any From_ line) has a byte
// above 0x7f. It reads the whole message, so it is asked only when a peer
// lacks 8BITMIME.
func eightBit(msg *deliver.RemoteMessage, mi messageInfo) (bool, error) {
	if mi.header8bit {
		return true, nil
	}
	buf := make([]byte, 32<<10)
	r := io.NewSectionReader(msg.Data, mi.start, msg.Size-mi.start)
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if c >= 0x80 {
				return true, nil
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
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
//
// To a peer offering PIPELINING, MAIL, every RCPT and DATA go in one
// write and their replies are then read in order (RFC 2920 §3.1: DATA
// ends the group); to any other, one command at a time. The replies
// mean the same either way.
func (t *Transport) transact(ctx context.Context, s *session, msg *deliver.RemoteMessage, mi messageInfo, idx []int, results []deliver.RemoteResult) (retry []int) {
	stop := context.AfterFunc(ctx, func() { s.raw.Close() })
	broken := false
	defer func() {
		if !stop() {
			broken = true // ctx cut the connection
		}
		if broken {
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
		var re *replyError
		if errors.As(err, &re) {
			r = replyResult(re.reply, s.relay) // 421: the peer is closing
		}
		setAll(results, rest, r)
		if again {
			return rest
		}
		return nil
	}

	idx = refuseLineBreaks(s, msg, idx, results)
	mail, perm := t.mailCommand(s, msg, mi, idx)
	if perm != nil {
		setAll(results, idx, *perm)
		return nil
	}
	if len(idx) == 0 {
		return nil
	}
	cmds := []string{mail}
	for _, i := range idx {
		cmds = append(cmds, rcptCommand(s.c, msg.Rcpts[i]))
	}
	cmds = append(cmds, "DATA")
	dataCmd := len(cmds) - 1
	p := &pipeline{c: s.c, cmds: cmds, timeout: t.opts.Timeouts.Command, dataDone: t.opts.Timeouts.DataDone}
	if pipelining, _ := s.c.extension("PIPELINING"); pipelining {
		if err := p.sendAll(); err != nil {
			return lost(err, "sending MAIL FROM", idx, true)
		}
	}
	// abandon ends a transaction that will carry no message: the
	// replies still owed are read, then RSET.
	abandon := func(next int) {
		if err := p.drain(next); err != nil {
			broken = true
			return
		}
		if err := s.c.reset(); err != nil {
			broken = true
		}
	}

	r, err := p.reply(0)
	switch {
	case err != nil:
		return lost(err, "sending MAIL FROM", idx, true)
	case r.code == 421:
		return lost(&replyError{cmd: "MAIL", reply: r}, "sending MAIL FROM", idx, true)
	case r.code/100 != 2:
		setAll(results, idx, replyResult(r, s.relay))
		abandon(1)
		return nil
	}
	var accepted []int
	for k, i := range idx {
		r, err := p.reply(1 + k)
		switch {
		case err != nil:
			return lost(err, "sending RCPT TO", append(accepted, idx[k:]...), true)
		case r.code == 421:
			return lost(&replyError{cmd: "RCPT", reply: r}, "sending RCPT TO", append(accepted, idx[k:]...), true)
		case r.code/100 == 2:
			accepted = append(accepted, i)
		default:
			results[i] = replyResult(r, s.relay)
		}
	}
	if len(accepted) == 0 {
		// Not pipelining, DATA is not sent; pipelining, its reply (503
		// or 554, RFC 2920 §3.1) is read and ignored.
		abandon(dataCmd)
		return nil
	}
	r, err = p.reply(dataCmd)
	switch {
	case err != nil:
		return lost(err, "sending DATA", accepted, true)
	case r.code == 421:
		return lost(&replyError{cmd: "DATA", reply: r}, "sending DATA", accepted, true)
	case r.code/100 == 4 || r.code/100 == 5:
		setAll(results, accepted, replyResult(r, s.relay))
		if err := s.c.reset(); err != nil {
			broken = true
		}
		return nil
	case r.code != 354:
		// RFC 5321 §4.3.2: DATA is answered 354 or a failure; anything
		// else leaves the session's state unknown.
		return lost(fmt.Errorf("unexpected reply to DATA: %s", r), "sending DATA", accepted, true)
	}
	body := io.NewSectionReader(msg.Data, mi.start, msg.Size-mi.start)
	if err := s.c.writeData(body); err != nil {
		// The message was cut short, so the peer delivers nothing: the
		// next server may have it.
		return lost(err, "sending the message", accepted, true)
	}
	r, err = s.c.readReply(t.opts.Timeouts.DataDone)
	if err != nil {
		// The reply to the final dot is lost: it may have been taken, so
		// no other server gets it now (a retry may duplicate it, never
		// lose it: RFC 5321 §4.1.1.4 "at least once").
		return lost(err, "waiting for the reply to the end of data", accepted, false)
	}
	setAll(results, accepted, replyResult(r, s.relay))
	broken = r.code == 421
	return nil
}

// pipeline is the commands of one transaction and how many of them were
// written: all at once to a pipelining peer, else each when its reply is
// wanted.
type pipeline struct {
	c        *client
	cmds     []string
	written  int
	timeout  time.Duration // for each reply
	dataDone time.Duration // for the reply to an empty message's dot
}

func (p *pipeline) sendAll() error {
	p.written = len(p.cmds)
	return p.c.send(p.cmds...)
}

// reply reads the reply to command n, writing the command first when it
// was not written yet.
func (p *pipeline) reply(n int) (*reply, error) {
	if n >= p.written {
		p.written = n + 1
		if err := p.c.send(p.cmds[n]); err != nil {
			return nil, err
		}
	}
	return p.c.readReply(p.timeout)
}

// drain reads the replies owed for the written commands from n on. A 354
// to DATA (a peer that took DATA with no recipient, or whose RCPT
// replies the client refused) gets an empty message: RFC 2920 §3.1, the
// client "should send a single dot".
func (p *pipeline) drain(n int) error {
	for ; n < p.written; n++ {
		r, err := p.c.readReply(p.timeout)
		if err != nil {
			return err
		}
		if n == len(p.cmds)-1 && r.code == 354 {
			if err := p.c.send("."); err != nil {
				return err
			}
			if _, err := p.c.readReply(p.dataDone); err != nil {
				return err
			}
		}
	}
	return nil
}

// refuseLineBreaks fails the recipients whose address would break the
// command line, and returns the others; a sender that would, fails all.
func refuseLineBreaks(s *session, msg *deliver.RemoteMessage, idx []int, results []deliver.RemoteResult) []int {
	if strings.ContainsAny(msg.Envelope.Sender, "\r\n") {
		// RFC 3463 5.1.7: bad sender's mailbox address syntax.
		setAll(results, idx, deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.1.7", Relay: s.relay,
			Reason: "the sender address contains a line break"})
		return nil
	}
	var ok []int
	for _, i := range idx {
		if strings.ContainsAny(msg.Rcpts[i].Addr, "\r\n") {
			results[i] = deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.1.3", Relay: s.relay,
				Reason: "the recipient address contains a line break"}
			continue
		}
		ok = append(ok, i)
	}
	return ok
}

// mailCommand builds the MAIL FROM command, or a permanent failure when
// the message cannot go to this peer.
func (t *Transport) mailCommand(s *session, msg *deliver.RemoteMessage, mi messageInfo, idx []int) (string, *deliver.RemoteResult) {
	env := msg.Envelope
	// RFC 6531 §3.2: an address that is not ASCII needs SMTPUTF8 at the
	// peer. So do UTF-8 header fields of a message that came with the
	// SMTPUTF8 flag; a flagged message that is all ASCII after all is
	// sent without it (the downgrade Postfix makes too).
	need := nonASCII(env.Sender) || env.SMTPUTF8 && mi.header8bit
	for _, i := range idx {
		need = need || nonASCII(msg.Rcpts[i].Addr)
	}
	utf8ok, _ := s.c.extension("SMTPUTF8")
	if need && !utf8ok {
		return "", &deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.6.7", Relay: s.relay,
			Reason: "SMTPUTF8 is required, but was not offered by " + s.relay}
	}
	size := msg.Size - mi.start
	if max := s.c.maxSize(); max > 0 && size > max {
		// RFC 1870 §6.2: the peer would refuse it; RFC 3463 5.3.4.
		return "", &deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.3.4", Relay: s.relay,
			Reason: fmt.Sprintf("message size %d exceeds the limit of %d at %s", size, max, s.relay)}
	}
	eightOK, _ := s.c.extension("8BITMIME")
	if !eightOK {
		// RFC 6152 §3: 8-bit data must not go to a peer without 8BITMIME;
		// the message is converted or returned. mailroom returns it (5.6.3)
		// rather than rewrite MIME parts; peers without 8BITMIME are rare.
		has8bit, err := eightBit(msg, mi)
		if err != nil {
			return "", &deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.3.0", Relay: s.relay,
				Reason: fmt.Sprintf("reading the message: %v", err)}
		}
		if has8bit {
			return "", &deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.6.3", Relay: s.relay,
				Reason: "the message has 8-bit content and " + s.relay + " does not offer 8BITMIME"}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "MAIL FROM:<%s>", env.Sender)
	// BODY=8BITMIME whenever the peer offers it (RFC 6152 §2).
	if eightOK {
		b.WriteString(" BODY=8BITMIME")
	}
	if ok, _ := s.c.extension("SIZE"); ok && size > 0 {
		fmt.Fprintf(&b, " SIZE=%d", size) // RFC 1870 §6
	}
	if (need || env.SMTPUTF8) && utf8ok {
		b.WriteString(" SMTPUTF8")
	}
	// RFC 3461 §4.3, §4.4: only to a peer offering DSN.
	if ok, _ := s.c.extension("DSN"); ok {
		switch env.Ret {
		case spool.RetFull:
			b.WriteString(" RET=FULL")
		case spool.RetHdrs:
			b.WriteString(" RET=HDRS")
		}
		if env.EnvID != "" && printableASCII(env.EnvID) {
			b.WriteString(" ENVID=" + xtext(env.EnvID))
		}
	}
	return b.String(), nil
}

// rcptCommand builds a RCPT TO command with the recipient's DSN
// parameters when the peer offers DSN (RFC 3461 §4.1, §4.2, §6.2).
func rcptCommand(c *client, r spool.Recipient) string {
	cmd := "RCPT TO:<" + r.Addr + ">"
	if ok, _ := c.extension("DSN"); !ok {
		return cmd
	}
	switch {
	case r.Notify&spool.NotifyNever != 0:
		cmd += " NOTIFY=NEVER"
	case r.Notify != 0:
		var n []string
		if r.Notify&spool.NotifySuccess != 0 {
			n = append(n, "SUCCESS")
		}
		if r.Notify&spool.NotifyFailure != 0 {
			n = append(n, "FAILURE")
		}
		if r.Notify&spool.NotifyDelay != 0 {
			n = append(n, "DELAY")
		}
		cmd += " NOTIFY=" + strings.Join(n, ",")
	}
	typ, addr, ok := strings.Cut(r.ORcpt, ";")
	if !ok || addr == "" || strings.ContainsAny(addr, "\r\n") {
		return cmd
	}
	switch {
	case strings.EqualFold(typ, "rfc822") && printableASCII(addr):
		cmd += " ORCPT=RFC822;" + xtext(addr)
	case strings.EqualFold(typ, "utf-8"):
		// RFC 6533 §3: unitext to a peer offering SMTPUTF8, else the
		// non-ASCII characters escaped.
		utf8ok, _ := c.extension("SMTPUTF8")
		cmd += " ORCPT=UTF-8;" + utf8AddrText(addr, utf8ok)
	}
	return cmd
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// xtext encodes s as RFC 3461 §4 xtext: "+", "=", controls, space and
// non-ASCII bytes as "+" and two upper-case hex digits.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '!' && c <= '~' && c != '+' && c != '=' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "+%02X", c)
		}
	}
	return b.String()
}

// utf8AddrText encodes s as RFC 6533 §3 utf-8-addr-unitext (unitext,
// non-ASCII characters kept) or utf-8-addr-xtext: a character outside
// QCHAR becomes \x{HEX}.
func utf8AddrText(s string, unitext bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\':
			b.WriteRune(r)
		case r >= 0x80 && unitext:
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "\\x{%X}", r)
		}
	}
	return b.String()
}

// replyResult maps a reply onto a result: 2xx sent, 5xx permanent,
// anything else temporary. Status is the reply's enhanced code (RFC 2034;
// the reader keeps it only when its class is the reply's), else X.0.0 of
// the result's class.
func replyResult(r *reply, relay string) deliver.RemoteResult {
	class := r.code / 100
	res := deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Relay: relay, Reply: r.String()}
	switch class {
	case 2:
		res.Outcome = deliver.RemoteSent
	case 5:
		res.Outcome = deliver.RemotePermFail
	default:
		class = 4
	}
	res.Status = fmt.Sprintf("%d.0.0", class)
	if r.hasEnhanced() {
		res.Status = fmt.Sprintf("%d.%d.%d", r.enhanced[0], r.enhanced[1], r.enhanced[2])
	}
	return res
}
