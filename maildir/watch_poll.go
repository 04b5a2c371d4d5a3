package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is how often a polling Watcher looks at its Maildir: the
// Watcher's promise is a signal within a second.
const pollInterval = time.Second

// pollRacy is how recent a modification time must be for the next poll
// to signal even when nothing seems to have changed: a change in the same
// timestamp tick as the one seen (coarse kernel clocks, a file server's
// clock) leaves the time as it was. So a change gives at most one extra
// signal, never none.
const pollRacy = time.Second

// pollStat is what a poll compares of one file or directory.
type pollStat struct {
	ino   uint64
	size  int64
	mtime int64 // nanoseconds
}

// pollSnapshot is a Maildir's state as polling sees it: new/, cur/ and
// the two metadata files (zero when missing).
type pollSnapshot struct {
	files [4]pollStat
	racy  bool
}

// takeSnapshot stats the Maildir at path; an error means new/ or cur/
// cannot be read.
func takeSnapshot(path string) (pollSnapshot, error) {
	var s pollSnapshot
	now := time.Now()
	names := [4]string{
		filepath.Join(path, "new"),
		filepath.Join(path, "cur"),
		filepath.Join(path, UidlistName),
		filepath.Join(path, KeywordsName),
	}
	for i, name := range names {
		var st unix.Stat_t
		if err := unix.Stat(name, &st); err != nil {
			if i >= 2 && errors.Is(err, fs.ErrNotExist) {
				continue // metadata files come later
			}
			return s, &os.PathError{Op: "stat", Path: name, Err: err}
		}
		if i < 2 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return s, &os.PathError{Op: "watch", Path: name, Err: unix.ENOTDIR}
		}
		mtime := st.Mtim.Nano()
		s.files[i] = pollStat{ino: st.Ino, size: st.Size, mtime: mtime}
		if mtime > now.Add(-pollRacy).UnixNano() {
			s.racy = true
		}
	}
	return s, nil
}

// addPollLocked starts w polling; the Maildir must exist.
func (n *notifier) addPollLocked(w *Watcher) error {
	snap, err := takeSnapshot(w.path)
	if err != nil {
		return fmt.Errorf("maildir: watch %s: %w", w.path, err)
	}
	n.startPollLocked(w, snap)
	return nil
}

// startPollLocked adds w to the polled Watchers and starts the poll
// goroutine if it is not running.
func (n *notifier) startPollLocked(w *Watcher, snap pollSnapshot) {
	w.polling = true
	w.snap = snap
	if n.polled == nil {
		n.polled = map[*Watcher]struct{}{}
	}
	n.polled[w] = struct{}{}
	if !n.polling {
		n.polling = true
		go n.poll()
	}
}

// poll is the one goroutine polling for every polled Watcher; it ends
// when none is left.
func (n *notifier) poll() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for range t.C {
		n.mu.Lock()
		if len(n.polled) == 0 {
			n.polling = false
			n.mu.Unlock()
			return
		}
		ws := make([]*Watcher, 0, len(n.polled))
		for w := range n.polled {
			ws = append(ws, w)
		}
		n.mu.Unlock()
		for _, w := range ws {
			n.pollOne(w)
		}
	}
}

// pollOne signals w when its Maildir changed since the last look (or may
// have: see pollRacy). A Maildir that cannot be read any more counts as
// changed, so its owner's Sync reports why.
func (n *notifier) pollOne(w *Watcher) {
	snap, err := takeSnapshot(w.path)
	if err != nil {
		snap = pollSnapshot{}
	}
	n.mu.Lock()
	_, still := n.polled[w]
	changed := still && (snap != w.snap || w.snap.racy)
	if still {
		w.snap = snap
	}
	n.mu.Unlock()
	if changed {
		w.signal()
	}
}
