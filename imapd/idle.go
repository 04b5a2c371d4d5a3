package imapd

import (
	"fmt"
	"strings"
	"time"

	"mailroom/imapd/wire"
)

// idlePoll is how often IDLE looks at the Maildir when it cannot watch
// it with inotify.
const idlePoll = time.Second

// cmdIdle is IDLE (RFC 2177, RFC 9051 §6.3.13): updates are sent as the
// view hears of them (its inotify watcher for other processes, other
// sessions directly) until the client sends DONE.
func (ss *session) cmdIdle(c *wire.Command) error {
	if err := noArgs(c); err != nil {
		return err
	}
	var wake chan struct{}
	var poll <-chan time.Time
	if ss.sel != nil {
		if err := ss.sel.view.startIdle(); err != nil {
			// No inotify instance left (fs.inotify.max_user_instances,
			// shared by every process of the user): IDLE still works,
			// by looking at the Maildir every idlePoll instead.
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
	type result struct {
		line string
		err  error
	}
	lines := make(chan result, 1)
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
