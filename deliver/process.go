package deliver

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"mailroom/internal/route"
	"mailroom/spool"
)

// rcptAttempt is the outcome of trying one due recipient in one pass.
type rcptAttempt struct {
	idx      int     // in the envelope
	out      outcome // delivered, temporary or permanent
	diag     string  // DSN Diagnostic-Code, "" when delivered
	mailbox  string  // local: the mailboxes, comma-separated
	path     string  // local: the first file written
	relay    string  // remote: the host that answered
	expanded bool    // an alias passed it on to remote addresses too
	err      error   // the error behind out, for the log
}

// processMessage runs one pass over message id: every recipient that is
// due is tried, the outcomes are recorded (DSNs committed first), and a
// finished message removed. It returns when the message wants its next
// pass, zero if never.
func (q *Queue) processMessage(ctx context.Context, id spool.ID) time.Time {
	// One open and one read of the queue file serve the envelope, the
	// states and the content.
	m, f, err := q.spool.OpenMessage(id)
	switch {
	case errors.Is(err, spool.ErrNotFound):
		return time.Time{} // removed meanwhile: an event after the fact
	case err != nil:
		// Corrupt or unreadable: leave it for the admin, look again later.
		q.log.Error("queue", "msgid", id, "err", err)
		return q.now().Add(q.cfg().Deliver.MaxBackoff)
	}
	defer f.Close()
	if m.Finished() {
		return q.remove(m)
	}
	now := q.now()
	due := dueRecipients(m, now)
	if len(due) == 0 {
		return earliestNext(m.States)
	}
	data := io.NewSectionReader(f, 0, m.Envelope.Size)
	env, off, ierr := inspectSpooled(data)
	// Nothing at the top of a spooled message is this host's own trace
	// block: every Return-Path and Delivered-To in it came from elsewhere,
	// so deliver adds its own and counts all of theirs for loops.
	env.returnPathFirst, env.mtaDeliveredTo = false, ""
	atts := q.attempt(ctx, m, data, env, off, ierr, due)
	return q.record(m, data, env.eol, atts, now)
}

// dueRecipients are the recipients to try now: pending ones, and deferred
// ones whose next try has come.
func dueRecipients(m *spool.Message, now time.Time) []int {
	var due []int
	for i, st := range m.States {
		if st.Status == spool.StatusPending || st.Status == spool.StatusDeferred && !st.Next.After(now) {
			due = append(due, i)
		}
	}
	return due
}

// earliestNext is the first next try among deferred recipients.
func earliestNext(states []spool.RcptState) time.Time {
	var next time.Time
	for _, st := range states {
		if st.Status == spool.StatusDeferred && (next.IsZero() || st.Next.Before(next)) {
			next = st.Next
		}
	}
	return next
}

// countingReader counts what went through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// inspectReaders recycles inspectSpooled's 64 KB readers: one per message
// otherwise, allocated and cleared for a header scan.
var inspectReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, headerScanLimit) }}

// inspectSpooled inspects a spooled message as MDA mode inspects stdin
// and returns where the message starts (after a From_ line, if any).
func inspectSpooled(data *io.SectionReader) (envelope, int64, error) {
	cr := &countingReader{r: io.NewSectionReader(data, 0, data.Size())}
	br := inspectReaders.Get().(*bufio.Reader)
	br.Reset(cr)
	defer func() {
		br.Reset(nil)
		inspectReaders.Put(br)
	}()
	env, err := inspect(br)
	if env.eol == "" {
		env.eol = "\n"
	}
	return env, cr.n - int64(br.Buffered()), err
}

// attempt tries every due recipient once: local mailboxes through the MDA
// write path, aliases to remote addresses as a forwarded copy, remote
// recipients through the transport.
func (q *Queue) attempt(ctx context.Context, m *spool.Message, data *io.SectionReader, env envelope, off int64, ierr error, due []int) []rcptAttempt {
	tabs := q.tables.Load()
	overQuota := q.cfg().Deliver.OverQuota
	atts := make([]rcptAttempt, len(due))
	var remote []int // indices into atts
	for k, i := range due {
		a := &atts[k]
		a.idx = i
		rcpt := m.Envelope.Recipients[i].Addr
		if ierr != nil {
			a.out, a.err = classify(ierr, overQuota), ierr
			continue
		}
		var forwards []route.Target
		grp, o := tabs.plan(rcpt, env, m.Envelope.Sender, "", func(t route.Target) outcome {
			switch t.Kind {
			case route.Remote:
				forwards = append(forwards, t)
				return delivered
			case route.Pipe, route.File:
				return permFail(ExitNoPerm, "5.3.3", "<%s>: %s targets are not supported", rcpt, t.Kind)
			}
			return unusableTarget(rcpt, t)
		})
		if o.failed() {
			a.out = o
			continue
		}
		if len(grp.targets) == 0 && len(forwards) == 1 && sameAddress(forwards[0].Address, rcpt) {
			remote = append(remote, k) // the recipient itself is elsewhere
			continue
		}
		a.out = delivered
		if len(grp.targets) > 0 {
			g := &guard{r: io.NewSectionReader(data, off, data.Size()-off), max: q.cfg().Deliver.MaxMessageSize}
			r := writeGroup(q.d, grp, g, g, overQuota, q.log)
			a.out, a.err = r.final, r.err
			a.mailbox = strings.Join(grp.mailbox, ",")
			for j, res := range r.results {
				if a.path == "" && res.Path != "" {
					a.path = res.Path
				}
				if r.outcomes[j].failed() && a.err == nil {
					a.err = res.Err
				}
			}
		}
		if !a.out.failed() && len(forwards) > 0 {
			// An alias that also names remote addresses: those go on as a
			// new message (Postfix's alias expansion into a new queue
			// file), so this recipient is done once it is committed.
			fid, err := q.forward(m, data, env.eol, i, forwards)
			if err != nil {
				a.out, a.err = tempFail("4.3.0", "temporary local problem"), err
				continue
			}
			a.expanded = true
			q.log.Info("forward", "msgid", m.ID, "to", rcpt, "new_msgid", fid, "count", len(forwards))
		}
	}
	if len(remote) > 0 {
		q.sendRemote(ctx, m, data, atts, remote)
	}
	for k := range atts {
		if atts[k].out.failed() && atts[k].diag == "" {
			atts[k].diag = "X-mailroom; " + atts[k].out.text
		}
	}
	return atts
}

// sameAddress reports whether a route target is the recipient itself
// (route keeps a remote local part as written and may fold the domain).
func sameAddress(target, rcpt string) bool {
	return strings.EqualFold(target, strings.TrimSuffix(rcpt, "."))
}

// sendRemote hands the remote recipients to the transport, or defers them
// when there is none.
func (q *Queue) sendRemote(ctx context.Context, m *spool.Message, data *io.SectionReader, atts []rcptAttempt, remote []int) {
	msg := &RemoteMessage{ID: m.ID, Envelope: &m.Envelope, Data: data, Size: data.Size()}
	for _, k := range remote {
		msg.Rcpts = append(msg.Rcpts, m.Envelope.Recipients[atts[k].idx])
	}
	var results []RemoteResult
	if q.remote != nil {
		results = q.remote.Send(ctx, msg)
	}
	for j, k := range remote {
		res := errNoTransport
		switch {
		case j < len(results):
			res = results[j]
		case q.remote != nil:
			res = RemoteResult{Outcome: RemoteTempFail, Reason: "the transport returned no result"}
		}
		atts[k].out, atts[k].diag = res.outcome()
		atts[k].relay = res.Relay
	}
}

// forward commits a copy of the message for the remote addresses an alias
// of recipient idx names, with a Delivered-To for that recipient (so a
// loop back here is caught) and the recipient's DSN requests.
func (q *Queue) forward(m *spool.Message, data *io.SectionReader, eol string, idx int, targets []route.Target) (spool.ID, error) {
	r := m.Envelope.Recipients[idx]
	orcpt := r.ORcpt
	if orcpt == "" {
		orcpt = "rfc822;" + r.Addr
	}
	env := spool.Envelope{Origin: spool.OriginLocal, UID: q.uid, Body: m.Envelope.Body, SMTPUTF8: m.Envelope.SMTPUTF8,
		Ret: m.Envelope.Ret, EnvID: m.Envelope.EnvID, Sender: m.Envelope.Sender}
	for _, t := range targets {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: t.Address, Notify: r.Notify, ORcpt: orcpt})
	}
	w, err := q.spool.Create(env)
	if err != nil {
		return "", err
	}
	if _, err := io.WriteString(w, "Delivered-To: "+strings.ToLower(r.Addr)+eol); err != nil {
		w.Abort()
		return "", err
	}
	if _, err := io.Copy(w, io.NewSectionReader(data, 0, data.Size())); err != nil {
		w.Abort()
		return "", err
	}
	return w.Commit()
}
