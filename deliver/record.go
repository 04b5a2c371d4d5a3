package deliver

import (
	"fmt"
	"io"
	"strings"
	"time"

	"mailroom/spool"
)

// record turns one pass's attempts into states, commits the DSN they call
// for (before any failure is recorded: spool's contract), writes the
// states or removes the finished message, and logs one delivery line per
// recipient. It returns when the message wants its next pass.
func (q *Queue) record(m *spool.Message, data *io.SectionReader, eol string, atts []rcptAttempt, now time.Time) time.Time {
	states := append([]spool.RcptState(nil), m.States...)
	prev := append([]spool.RcptState(nil), m.States...)
	var report []dsnRecipient
	for _, a := range atts {
		report = q.advance(m, &states[a.idx], a, now, report)
	}
	if len(report) > 0 {
		if err := q.sendDSN(m, data, eol, report, now); err != nil {
			// No failure may be recorded without its bounce: retry those
			// recipients soon, and the warning with them.
			q.log.Error("dsn", "msgid", m.ID, "err", err)
			for _, a := range atts {
				st := &states[a.idx]
				if st.Status == spool.StatusFailed && wantsDSN(m.Envelope, a.idx, actionFailed) {
					st.Status, st.Next = spool.StatusDeferred, now.Add(q.backoff(1))
					st.Reason = "4.3.0 bounce not yet sent: " + err.Error()
				}
				st.Warned = prev[a.idx].Warned
			}
		}
	}
	for _, a := range atts {
		q.logDelivery(m, a, states[a.idx], now)
	}
	finished := true
	for _, st := range states {
		finished = finished && st.Status.Final()
	}
	if finished {
		// No state file first: a crash before the removal is complete
		// delivers the message again (at least once), and a pass that
		// finishes a message costs no state write (spool(5)).
		return q.remove(m)
	}
	if err := q.spool.SetState(m.ID, states); err != nil {
		q.log.Error("queue", "msgid", m.ID, "err", err)
		return now.Add(q.backoff(1))
	}
	return earliestNext(states)
}

// advance sets one recipient's new state from its attempt and adds it to
// the report if the sender asked for news of it.
func (q *Queue) advance(m *spool.Message, st *spool.RcptState, a rcptAttempt, now time.Time, report []dsnRecipient) []dsnRecipient {
	st.Attempts++
	st.Last, st.Next = now, time.Time{}
	arrived := m.Envelope.Arrived
	lifetime := q.cfg().Deliver.QueueLifetime
	x := dsnRecipient{rcpt: m.Envelope.Recipients[a.idx], status: a.out.status, diag: a.diag, remoteMTA: hostOf(a.relay), last: now}
	switch {
	case !a.out.failed():
		st.Status, st.Reason = spool.StatusDelivered, ""
		x.action = actionDelivered
		if a.expanded {
			x.action = actionExpanded
		}
	case a.out.code == ExitTempFail && lifetime > 0 && now.Sub(arrived) >= lifetime:
		// Expired: the last temporary status stays in the report, as
		// Postfix reports it, with the reason the mail system gave up.
		st.Status = spool.StatusFailed
		st.Reason = fmt.Sprintf("%s message expired after %s in the queue: %s", a.out.status, lifetime, a.out.text)
		x.action = actionFailed
		x.diag = "X-mailroom; message expired after " + lifetime.String() + "; last error: " + a.out.status + " " + a.out.text
	case a.out.code == ExitTempFail:
		st.Status, st.Next = spool.StatusDeferred, now.Add(q.backoff(st.Attempts))
		st.Reason = a.out.String()
		if lifetime > 0 && st.Next.After(arrived.Add(lifetime)) {
			// The last try falls at expiry, not a backoff beyond it.
			st.Next = arrived.Add(lifetime)
		}
		warn := q.cfg().Deliver.DelayWarning
		if warn <= 0 || !st.Warned.IsZero() || now.Sub(arrived) < warn {
			return report
		}
		x.action = actionDelayed
		if lifetime > 0 {
			x.until = arrived.Add(lifetime)
		}
		if wantsDSN(m.Envelope, a.idx, actionDelayed) {
			st.Warned = now
		}
	default:
		st.Status, st.Reason = spool.StatusFailed, a.out.String()
		x.action = actionFailed
	}
	if !wantsDSN(m.Envelope, a.idx, x.action) {
		if x.action == actionFailed && m.Envelope.Sender == "" {
			// RFC 3461 §6.2 / RFC 5321 §6.1: never a DSN to the null
			// sender, so a bounce that bounces goes nowhere.
			q.log.Warn("bounce", "msgid", m.ID, "to", x.rcpt.Addr, "status", "dropped", "reason", "null sender")
		}
		return report
	}
	return append(report, x)
}

// wantsDSN applies RFC 3461 §4.1 to recipient idx: never to the null
// sender; NOTIFY=NEVER never; SUCCESS and DELAY only when asked (DELAY
// also by default); FAILURE when asked or by default.
func wantsDSN(env spool.Envelope, idx int, action string) bool {
	if env.Sender == "" {
		return false
	}
	n := env.Recipients[idx].Notify
	if n&spool.NotifyNever != 0 {
		return false
	}
	switch action {
	case actionFailed:
		return n == 0 || n&spool.NotifyFailure != 0
	case actionDelayed:
		return n == 0 || n&spool.NotifyDelay != 0
	case actionDelivered, actionExpanded:
		return n&spool.NotifySuccess != 0
	}
	return false
}

// backoff is the wait after the attempts-th failure: min_backoff doubling
// up to max_backoff.
func (q *Queue) backoff(attempts int) time.Duration {
	d, limit := q.cfg().Deliver.MinBackoff, q.cfg().Deliver.MaxBackoff
	if d <= 0 {
		d = time.Second
	}
	for i := 1; i < attempts && (limit <= 0 || d < limit); i++ {
		d *= 2
	}
	if limit > 0 && d > limit {
		d = limit
	}
	return d
}

// hostOf strips ":port" and "[ip]" from a relay for Remote-MTA.
func hostOf(relay string) string {
	for i := 0; i < len(relay); i++ {
		if relay[i] == '[' || relay[i] == ':' {
			return relay[:i]
		}
	}
	return relay
}

// sendDSN commits one report about m to its sender, from the null sender.
func (q *Queue) sendDSN(m *spool.Message, data *io.SectionReader, eol string, rcpts []dsnRecipient, now time.Time) error {
	r := &dsnReport{hostname: q.cfg().Hostname, id: m.ID, env: &m.Envelope, rcpts: rcpts, data: data, eol: eol, now: now}
	body := spool.Body7Bit
	if m.Envelope.Body != spool.Body7Bit || !isASCII(m.Envelope.Sender) {
		body = spool.Body8BitMIME
	}
	env := spool.Envelope{Origin: spool.OriginLocal, UID: q.uid, Body: body, Sender: "",
		SMTPUTF8:   m.Envelope.SMTPUTF8 && !isASCII(m.Envelope.Sender),
		Recipients: []spool.Recipient{{Addr: m.Envelope.Sender}}}
	w, err := q.spool.Create(env)
	if err != nil {
		return err
	}
	r.selfID = w.ID()
	if err := r.write(w); err != nil {
		w.Abort()
		return err
	}
	id, err := w.Commit()
	if err != nil {
		return err
	}
	q.log.Info("dsn", "msgid", m.ID, "dsn_msgid", id, "to", m.Envelope.Sender, "subject", r.subject())
	return nil
}

// remove deletes a finished message (a single unlink when it never had a
// state file, spool.RemoveMessage).
func (q *Queue) remove(m *spool.Message) time.Time {
	if err := q.spool.RemoveMessage(m); err != nil {
		q.log.Error("queue", "msgid", m.ID, "err", err)
		return q.now().Add(q.backoff(1))
	}
	q.log.Debug("removed", "msgid", m.ID)
	return time.Time{}
}

// logDelivery writes the summary line of one recipient (internal/logging's
// contract).
func (q *Queue) logDelivery(m *spool.Message, a rcptAttempt, st spool.RcptState, now time.Time) {
	r := m.Envelope.Recipients[a.idx]
	args := []any{"msgid", m.ID, "from", m.Envelope.Sender, "to", r.Addr}
	if r.ORcpt != "" {
		args = append(args, "orig_to", r.ORcpt)
	}
	status := "sent"
	switch st.Status {
	case spool.StatusDeferred:
		status = "deferred"
	case spool.StatusFailed:
		status = "bounced"
	}
	args = append(args, "status", status, "delay", now.Sub(m.Envelope.Arrived).Round(time.Millisecond).String())
	if a.mailbox != "" {
		args = append(args, "mailbox", a.mailbox)
	}
	args = append(args, "relay", q.relayOf(r.Addr, a))
	if status == "sent" {
		if a.path != "" {
			args = append(args, "path", a.path)
		}
		args = append(args, "dsn", a.out.status)
		q.log.Info("delivery", args...)
		return
	}
	args = append(args, "dsn", a.out.status, "reason", st.Reason, "attempts", st.Attempts)
	if !st.Next.IsZero() {
		args = append(args, "next", st.Next.UTC().Format(time.RFC3339))
	}
	if a.err != nil {
		args = append(args, "err", a.err)
	}
	q.log.Warn("delivery", args...)
}

// relayOf is the relay= value of a delivery line, present on every one so
// that a search for relay= finds local mail too (as Postfix writes
// relay=local): the remote server that answered, host[ip]:port; "local"
// for a recipient in a local domain (a Maildir, an alias); "none" for a
// remote recipient no server answered for (no MX, no transport).
func (q *Queue) relayOf(rcpt string, a rcptAttempt) string {
	if a.relay != "" {
		return a.relay
	}
	domain := rcpt[strings.LastIndexByte(rcpt, '@')+1:]
	if a.mailbox != "" || q.cfg().IsLocalDomain(strings.TrimSuffix(domain, ".")) {
		return "local"
	}
	return "none"
}
