package sendmail

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"mailroom/spool"
)

// submit is -bm: one message from stdin into maildrop/.
func (r *run) submit() int {
	id, err := r.identity()
	if err != nil {
		return r.fail(ExitTempFail, "4.3.0 %v", err)
	}
	sp, err := spool.Open(r.cfg.SpoolDir)
	if err != nil {
		return r.fail(ExitTempFail, "4.3.0 cannot open the spool: %v", err)
	}
	sender, warning := r.chooseSender(id, r.opt.Sender, r.opt.SenderSet)
	if warning != "" {
		fmt.Fprintf(r.sys.Stderr, "%s: warning: %s\n", r.prog, warning)
	}

	src := newStdinSource(r.sys.Stdin, r.opt.IgnoreDots)
	msg, err := readHeader(src)
	if err != nil {
		return r.failData(err)
	}
	rcpts := r.opt.Recipients
	if r.opt.Extract {
		// -t adds the header's recipients to the arguments' (Postfix ≥ 2.1,
		// msmtp, OpenSMTPD; ecosystem §8.1).
		hdr, err := msg.headerRecipients()
		if err != nil {
			return r.fail(ExitDataErr, "%v", err)
		}
		rcpts = append(slices.Clone(rcpts), hdr...)
	}
	rcpts = r.qualifyAll(rcpts)
	if len(rcpts) == 0 {
		// Postfix's wording; EX_USAGE as msmtp and Postfix's own code.
		return r.fail(ExitUsage, "no recipient addresses found in message header")
	}
	// Bcc is removed from every command-line submission, -t or not: an old
	// mutt ($write_bcc) relies on the MTA for it, and no recipient should
	// see it (as dma does).
	msg.removeBcc()

	env := r.envelope(sender, rcpts, r.opt.Notify)
	env.Ret, env.EnvID = r.opt.Ret, r.opt.EnvID
	if r.opt.Body != "" {
		env.Body = r.opt.Body
	} else {
		// Nothing declared: the body may hold 8-bit text (cron output in
		// the user's locale). Declaring 8bitmime is the safe claim; a
		// 7-bit message is also valid 8bitmime (RFC 6152).
		env.Body = spool.Body8BitMIME
	}
	qid, err := r.drop(sp, env, msg, src, id)
	if err != nil {
		return r.failData(err)
	}
	if r.opt.Verbose > 0 {
		fmt.Fprintf(r.sys.Stderr, "%s: queued as %s\n", r.prog, qid)
	}
	return ExitOK
}

// failData maps a submission error to its exit status and line.
func (r *run) failData(err error) int {
	var in *inputError
	switch {
	case errors.Is(err, errTooBig), errors.Is(err, errHeaderTooBig):
		return r.fail(ExitDataErr, "%v", err)
	case errors.As(err, &in):
		return r.fail(ExitTempFail, "4.3.0 %v", err)
	}
	return r.fail(ExitTempFail, "4.3.0 message not queued: %v", err)
}

// qualifyAll qualifies bare names and drops repeats (case-insensitively
// in the domain and, pragmatically, in the local part too: two spellings
// of one mailbox would deliver twice).
func (r *run) qualifyAll(addrs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range addrs {
		q := qualify(a, r.origin)
		if key := strings.ToLower(q); !seen[key] {
			seen[key] = true
			out = append(out, q)
		}
	}
	return out
}

// envelope builds a local envelope; SMTPUTF8 is set when an address needs
// it (RFC 6531).
func (r *run) envelope(sender string, rcpts []string, notify spool.Notify) spool.Envelope {
	env := spool.Envelope{Origin: spool.OriginLocal, Sender: sender, Body: spool.Body7Bit}
	env.SMTPUTF8 = !isASCII(sender)
	for _, a := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: a, Notify: notify})
		env.SMTPUTF8 = env.SMTPUTF8 || !isASCII(a)
	}
	return env
}

// drop writes one message into maildrop/: header fields, the missing
// ones, the body from src; Commit last. On any error nothing is left.
func (r *run) drop(sp *spool.Spool, env spool.Envelope, msg *message, src lineSource, id identity) (spool.ID, error) {
	dw, err := sp.Drop(env)
	if err != nil {
		return "", err
	}
	from := env.Sender
	if from == "" {
		from = r.ownAddress(id)
	}
	added := msg.missingFields(additions{
		From:      formatMailbox(r.fullName(id), from),
		Hostname:  r.cfg.Hostname,
		Now:       r.sys.Now(),
		MessageID: string(dw.ID()),
	})
	w := &limitWriter{w: dw, max: r.cfg.Smtpd.MaxMessageSize}
	if err := msg.writeMessage(w, added, src); err != nil {
		return "", errors.Join(err, dw.Abort())
	}
	qid, err := dw.Commit()
	if err != nil {
		return "", err
	}
	return qid, nil
}
