package deliver

import (
	"context"
	"io"

	"mailroom/spool"
)

// RemoteTransport is the seam through which the queue daemon hands mail
// for domains this host does not serve to an SMTP client (issue 5: MX
// lookup, STARTTLS, relay host, transport table). The daemon owns the
// queue: it chooses which recipients are due, records their outcomes,
// computes backoff and expiry and sends every DSN; a transport only tries
// once and says what happened.
type RemoteTransport interface {
	// Send tries to deliver msg to each of msg.Rcpts and returns exactly one
	// result per recipient, in the same order (a result missing is taken
	// as a temporary failure). It must return when ctx is done, with
	// temporary failures for what it did not finish: the daemon cancels
	// ctx at shutdown.
	Send(ctx context.Context, msg *RemoteMessage) []RemoteResult
}

// RemoteMessage is one message to send to some of its recipients.
type RemoteMessage struct {
	ID       spool.ID        // for msgid= in the transport's log lines
	Envelope *spool.Envelope // sender, BODY, SMTPUTF8, RET, ENVID; read-only
	// Rcpts are the recipients due now, with their DSN parameters (NOTIFY,
	// ORCPT) to pass on to a peer that offers DSN (RFC 3461 §6.2).
	Rcpts []spool.Recipient
	// Data is the message as spooled, without the trace fields local
	// delivery adds (the transport prepends none either: Received was
	// written by smtpd). Read it with ReadAt or a fresh io.NewSectionReader;
	// it is valid only during Send.
	Data io.ReaderAt
	Size int64
}

// RemoteOutcome is what happened to one recipient.
type RemoteOutcome int

const (
	RemoteSent     RemoteOutcome = iota // accepted by the next hop (250)
	RemoteTempFail                      // try again later (4xx, no answer, DNS SERVFAIL)
	RemotePermFail                      // give up and bounce (5xx, null MX)
)

// RemoteResult is the outcome for one recipient of a RemoteMessage.
type RemoteResult struct {
	Outcome RemoteOutcome
	// Status is the RFC 3463 code, "4.4.1" or "5.1.1"; "" picks 2.0.0,
	// 4.4.0 or 5.0.0 by Outcome.
	Status string
	// Reply is the peer's SMTP reply ("550 5.1.1 <bob@example.net>: no
	// such user"), "" when the failure was local (no MX, connection
	// refused); it becomes the DSN's "Diagnostic-Code: smtp; ...".
	Reply string
	// Reason describes a failure without a reply, for the log and the DSN
	// ("Diagnostic-Code: X-mailroom; ...").
	Reason string
	// Relay names the host that answered, "mx.example.net[192.0.2.1]:25",
	// for the log and the DSN's Remote-MTA field.
	Relay string
}

// outcome maps a remote result onto the daemon's outcome and diagnostic.
func (r RemoteResult) outcome() (outcome, string) {
	text := r.Reply
	if text == "" {
		text = r.Reason
	}
	status := r.Status
	switch r.Outcome {
	case RemoteSent:
		if status == "" {
			status = "2.0.0"
		}
		return outcome{code: ExitOK, status: status, text: text}, diagnostic(r.Reply, r.Reason)
	case RemotePermFail:
		if status == "" || status[0] != '5' {
			status = "5.0.0"
		}
		return outcome{code: ExitNoPerm, status: status, text: text}, diagnostic(r.Reply, r.Reason)
	}
	if status == "" || status[0] != '4' {
		status = "4.4.0"
	}
	return outcome{code: ExitTempFail, status: status, text: text}, diagnostic(r.Reply, r.Reason)
}

// diagnostic is a DSN Diagnostic-Code value (RFC 3464 §2.3.6): the SMTP
// reply when there is one, else the local reason.
func diagnostic(reply, reason string) string {
	if reply != "" {
		return "smtp; " + reply
	}
	return "X-mailroom; " + reason
}

// errNoTransport is the result for every remote recipient until a
// transport is configured: temporary, so it follows the normal backoff and
// expires into a bounce, as Postfix does with an unavailable transport.
var errNoTransport = RemoteResult{Outcome: RemoteTempFail, Status: "4.4.1", Reason: "no remote transport configured"}
