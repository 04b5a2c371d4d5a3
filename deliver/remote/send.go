package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"mailroom/deliver"
)

// Send implements deliver.RemoteTransport: the recipients are grouped by
// destination, and each group is tried on its servers in order until one
// gives every recipient an answer.
func (t *Transport) Send(ctx context.Context, msg *deliver.RemoteMessage) []deliver.RemoteResult {
	results := make([]deliver.RemoteResult, len(msg.Rcpts))
	var order []string
	groups := map[string][]int{}
	dests := map[string]destination{}
	for i, r := range msg.Rcpts {
		at := strings.LastIndexByte(r.Addr, '@')
		var d destination
		err := errors.New("no domain")
		if at >= 0 {
			d, err = t.route(r.Addr[at+1:])
		}
		if err != nil {
			// RFC 3463 5.1.3: bad destination mailbox address syntax.
			results[i] = deliver.RemoteResult{Outcome: deliver.RemotePermFail, Status: "5.1.3",
				Reason: fmt.Sprintf("<%s>: %v", r.Addr, err)}
			continue
		}
		if _, ok := groups[d.key]; !ok {
			order = append(order, d.key)
			dests[d.key] = d
		}
		groups[d.key] = append(groups[d.key], i)
	}
	mi, err := inspectMessage(msg)
	if err != nil {
		for _, key := range order {
			setAll(results, groups[key], deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.3.0",
				Reason: "reading the spooled message: " + err.Error()})
		}
		return results
	}
	for _, key := range order {
		t.sendGroup(ctx, msg, mi, dests[key], groups[key], results)
	}
	return results
}

func setAll(results []deliver.RemoteResult, idx []int, r deliver.RemoteResult) {
	for _, i := range idx {
		results[i] = r
	}
}

// sendGroup delivers to one destination's recipients: it takes a slot of
// the destination's concurrency, resolves the servers, and tries cached
// sessions, then each address in order, until no recipient is left for
// the next server.
func (t *Transport) sendGroup(ctx context.Context, msg *deliver.RemoteMessage, mi messageInfo, d destination, idx []int, results []deliver.RemoteResult) {
	release, err := t.limit.acquire(ctx, d.key)
	if err != nil {
		setAll(results, idx, deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.7",
			Reason: "interrupted while waiting for a connection slot: " + err.Error()})
		return
	}
	defer release()
	servers, fail := t.resolve(ctx, d.hop, d.configured)
	if fail != nil {
		t.opts.Logger.Info("resolve", "msgid", msg.ID, "destination", d.key, "status", fail.Status, "reason", fail.Reason)
		setAll(results, idx, *fail)
		return
	}
	var eps []endpoint
	for _, s := range servers {
		for _, ip := range s.addrs {
			eps = append(eps, endpoint{host: s.name, addr: joinHostPort(ip.String(), s.port), auth: d.auth})
		}
	}
	pending := idx
	last := deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.1", Reason: "no server to try"}
	// A cached session to any of the servers first (the preferred one
	// when several are cached), then fresh connections in order.
	for _, ep := range eps {
		s := t.pool.get(ep.key(t.opts.TLSLevel))
		if s == nil {
			continue
		}
		if err := t.reset(s); err != nil {
			t.opts.Logger.Debug("reuse", "msgid", msg.ID, "relay", s.relay, "err", err)
			s.raw.Close()
			continue
		}
		t.opts.Logger.Info("connect", "msgid", msg.ID, "relay", s.relay, "tls", s.tls, "reused", true)
		pending = t.transact(ctx, s, msg, mi, pending, results)
		if len(pending) == 0 {
			return
		}
		break
	}
	for _, ep := range eps {
		if ctx.Err() != nil {
			last = deliver.RemoteResult{Outcome: deliver.RemoteTempFail, Status: "4.4.7", Reason: "interrupted: " + ctx.Err().Error()}
			break
		}
		s, err := t.connect(ctx, msg, ep)
		if err != nil {
			var ce *connectError
			if errors.As(err, &ce) && informative(ce.result) >= informative(last) {
				last = ce.result
			}
			continue
		}
		pending = t.transact(ctx, s, msg, mi, pending, results)
		if len(pending) == 0 {
			return
		}
		last = results[pending[0]]
	}
	setAll(results, pending, last)
}

// connect dials one endpoint; at level may a failed TLS handshake is
// retried at once in plaintext, as Postfix does.
func (t *Transport) connect(ctx context.Context, msg *deliver.RemoteMessage, ep endpoint) (*session, error) {
	s, err := t.dial(ctx, ep)
	var ce *connectError
	if errors.As(err, &ce) && ce.tlsFallback {
		t.opts.Logger.Warn("tls", "msgid", msg.ID, "relay", ep.relay(), "err", err, "action", "retrying without TLS")
		ep.noTLS = true
		s, err = t.dial(ctx, ep)
	}
	if err != nil {
		t.opts.Logger.Info("connect", "msgid", msg.ID, "relay", ep.relay(), "status", "failed", "err", err)
		return nil, err
	}
	t.opts.Logger.Info("connect", "msgid", msg.ID, "relay", s.relay, "tls", s.tls)
	return s, nil
}

// reset readies a cached session for a new transaction; it also shows
// the peer has not closed it meanwhile.
func (t *Transport) reset(s *session) error {
	// RFC 5321 §4.1.1.5: RSET clears the transaction, not the EHLO; the
	// extensions it listed still hold.
	return s.c.reset()
}

// informative ranks failures for the one reported when every server
// failed: a server's reply, then a named problem (TLS, AUTH, a lost
// session), then a refused connection (4.4.1): a later server's silence
// should not hide what an earlier one said.
func informative(r deliver.RemoteResult) int {
	switch {
	case r.Reply != "":
		return 2
	case r.Status != "4.4.1":
		return 1
	}
	return 0
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}
