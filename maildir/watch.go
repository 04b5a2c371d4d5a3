package maildir

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
)

// Watcher signals changes to a Maildir: files arriving in, leaving or being
// renamed within new/ and cur/, and dovecot-uidlist or dovecot-keywords
// being replaced or appended to. It only says "something changed"; the
// receiver calls Mailbox.Sync to learn what. IMAP IDLE (RFC 2177) is its
// intended user, so a change by any process (deliver, pop3d, another
// imapd) is signalled within a second.
//
// Every Watcher of a process shares one inotify instance and one goroutine
// that reads it and dispatches its events: the kernel bounds instances per
// user (fs.inotify.max_user_instances, 128 by default), not watches, so a
// server with a thousand idling sessions needs one instance, not a
// thousand. Watchers of the same Maildir share its watch descriptors,
// which are removed when the last of them stops; the instance is closed
// when no Watcher is left. A lost-events overflow (IN_Q_OVERFLOW) wakes
// every Watcher. When no inotify instance can be had (the limit is
// reached by other processes of the user, or watches are exhausted), the
// Watcher polls the modification times of new/, cur/ and the metadata
// files every second instead of failing: one goroutine polls for all such
// Watchers.
type Watcher struct {
	// C receives a value after changes. Bursts are coalesced: at most one
	// signal is pending. C is closed when the watcher stops. It is nil for
	// a Watcher made by WatchFunc.
	C <-chan struct{}

	path   string
	c      chan struct{}
	notify func()

	// mu orders signals against Close: no signal is sent or notify
	// called once Close has begun.
	mu     sync.Mutex
	closed bool

	// Under the notifier's lock: the watch descriptors (root, new/,
	// cur/) while on inotify, or the poll state while polling.
	wds     [3]int32
	polling bool
	snap    pollSnapshot
}

// watchRoot, watchNew and watchCur index Watcher.wds.
const (
	watchRoot = iota
	watchNew
	watchCur
)

// Watch starts watching the Maildir at path; changes are signalled on C.
func Watch(path string) (*Watcher, error) {
	c := make(chan struct{}, 1)
	w := &Watcher{C: c, path: path, c: c}
	w.notify = func() {
		select {
		case c <- struct{}{}:
		default: // a signal is already pending
		}
	}
	if err := watchers.add(w); err != nil {
		return nil, err
	}
	return w, nil
}

// WatchFunc starts watching the Maildir at path; notify is called after
// changes, from the goroutine shared by all Watchers, so it must return
// quickly and must not call the Watcher's Close. It is not called once
// Close has returned. Several changes may give one call.
func WatchFunc(path string, notify func()) (*Watcher, error) {
	if notify == nil {
		return nil, errors.New("maildir: WatchFunc: nil notify")
	}
	w := &Watcher{path: path, notify: notify}
	if err := watchers.add(w); err != nil {
		return nil, err
	}
	return w, nil
}

// Watch starts a Watcher on the mailbox's Maildir.
func (m *Mailbox) Watch() (*Watcher, error) { return Watch(m.path) }

// WatchFunc starts a Watcher on the mailbox's Maildir that calls notify
// (see the package function WatchFunc).
func (m *Mailbox) WatchFunc(notify func()) (*Watcher, error) { return WatchFunc(m.path, notify) }

// Polling reports whether the Watcher polls the Maildir because inotify
// could not be had when it started.
func (w *Watcher) Polling() bool {
	watchers.mu.Lock()
	defer watchers.mu.Unlock()
	return w.polling
}

// signal tells the Watcher's owner that something changed, unless the
// Watcher is stopping.
func (w *Watcher) signal() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.notify()
	}
}

// Close stops the watcher; once it returns no more signals come, and C is
// closed.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	if w.c != nil {
		close(w.c)
	}
	w.mu.Unlock()
	if err := watchers.remove(w); err != nil {
		return fmt.Errorf("maildir: watch close: %w", err)
	}
	return nil
}

// watchPaths are the directories a Watcher looks at, in wds order.
func (w *Watcher) watchPaths() [3]string {
	return [3]string{w.path, filepath.Join(w.path, "new"), filepath.Join(w.path, "cur")}
}
