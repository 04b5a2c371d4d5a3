package imapd

import (
	"fmt"
	"strings"
	"time"

	"mailroom/imapd/wire"
)

// idlePoll is how often IDLE syncs the Maildir itself when the view
// cannot start a watcher at all (the engine's own watcher already polls
// when inotify is exhausted; this covers any other failure).
const idlePoll = time.Second

// cmdIdle is IDLE (RFC 2177, RFC 9051 §6.3.13): updates are sent as the
// view hears of them (its watcher for other processes, other sessions
// directly) until the client sends DONE.
//
// Memory: a server may hold thousands of idling sessions, so an idling
// one keeps little. It holds no write buffer (taken from the pool for
// each update, released after the flush), a small read buffer, two
// goroutines (this one, parked in select, and the reader waiting for
// DONE), and nothing per mailbox: the view's watcher is called from the
// engine's one inotify goroutine and starts a sync goroutine only when
// something changed.
func (ss *session) cmdIdle(c *wire.Command) error {
	if err := noArgs(c); err != nil {
		return err
	}
	var wake chan struct{}
	var poll <-chan time.Time
	if ss.sel != nil {
		if err := ss.sel.view.startIdle(); err != nil {
			// The engine polls by itself when no inotify instance is
			// left, so this is another failure: IDLE still works, by
			// syncing every idlePoll.
			ss.log.Warn("idle", "fallback", "polling", "err", err)
			t := time.NewTicker(idlePoll)
			defer t.Stop()
			poll = t.C
		} else {
			defer ss.sel.view.stopIdle()
		}
		// Changes made between the watcher starting and now.
		if err := ss.sel.view.sync(); err != nil {
			return err
		}
		wake = ss.sel.wake
	}
	if err := ss.w.Continue("idling"); err != nil {
		return fmt.Errorf("%w: %w", errClose, err)
	}
	// An idling session holds no write buffer (most of its memory
	// otherwise): it takes one from the pool for each update.
	ss.w.Release()
	type result struct {
		line string
		err  error
	}
	lines := make(chan result, 1)
	ss.midCommand = false // waiting for DONE: a shutdown ends it with BYE
	go func() {
		l, err := ss.r.ReadLine()
		lines <- result{l, err}
	}()
	pending := true
	defer func() {
		if pending {
			// Unblock the reader and wait for it, so nothing else
			// touches the Reader concurrently.
			_ = ss.conn.SetReadDeadline(time.Now())
			<-lines
		}
	}()
	for {
		select {
		case <-poll:
			// sync wakes this session (wake) when it finds a change.
			if err := ss.sel.view.sync(); err != nil {
				ss.log.Error("sync", "err", err)
			}
		case <-wake:
			ss.sendUpdates(true)
			if err := ss.w.Flush(); err != nil {
				return fmt.Errorf("%w: %w", errClose, err)
			}
			ss.w.Release()
		case res := <-lines:
			pending = false
			if res.err != nil {
				if _, ok := wire.AsError(res.err); ok {
					return bad("line too long")
				}
				return fmt.Errorf("%w: %w", errClose, ss.readFailed(res.err))
			}
			if !strings.EqualFold(res.line, "DONE") {
				return bad("expected DONE")
			}
			return nil
		}
	}
}
