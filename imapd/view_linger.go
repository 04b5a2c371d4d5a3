package imapd

import (
	"fmt"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// A view nobody holds any more lingers for a while before it is closed:
// clients log in again soon after they log out (a phone reconnecting, a
// client opening a second connection, a POP-style check every few
// minutes), and a view kept is a SELECT that only has to stat the Maildir
// (a quick sync) instead of reading its uidlist, listing and MODSEQs
// again — what Dovecot's on-disk index gives it. A lingering view holds
// no watcher and no goroutine, only memory, so the number of lingering
// views and their messages are bounded, and the oldest go first.
//
// A lingering view is reused only for the same Maildir: the directory
// and its cur/ must be the very ones (device and inode) it was made of,
// or a folder deleted, renamed or recreated since would show its old
// contents; the next open then makes a new view.

// lingerPolicy bounds what lingers.
type lingerPolicy struct {
	d           time.Duration // how long a view lingers; 0: never
	views       int           // at most this many lingering views
	maxMessages int           // and at most this many messages in them
}

// defaultLinger keeps up to 16 views, 300,000 messages in all, for one
// minute. The biggest cost of a lingering view is its structure cache
// when a session loaded it (about 850 bytes a message).
var defaultLinger = lingerPolicy{d: time.Minute, views: 16, maxMessages: 300_000}

// dirIdentity names a Maildir on disk: its directory and its cur/.
type dirIdentity struct {
	dev, ino, curIno uint64
}

// maildirIdentity stats the Maildir at path and its cur/.
func maildirIdentity(path string) (dirIdentity, error) {
	var root, cur syscall.Stat_t
	if err := syscall.Stat(path, &root); err != nil {
		return dirIdentity{}, fmt.Errorf("mailbox %s: %w", path, err)
	}
	if err := syscall.Stat(filepath.Join(path, "cur"), &cur); err != nil {
		return dirIdentity{}, fmt.Errorf("mailbox %s: %w", path, err)
	}
	return dirIdentity{dev: uint64(root.Dev), ino: root.Ino, curIno: cur.Ino}, nil
}

// revive takes v, lingering, back for a new session if its Maildir is
// still the one it was made of; otherwise v leaves the registry and the
// caller closes it. The caller holds r.mu.
func (r *registry) revive(v *view) bool {
	r.idle = slices.DeleteFunc(r.idle, func(o *view) bool { return o == v })
	if dir, err := maildirIdentity(v.path); err == nil && dir == v.dir {
		return true
	}
	delete(r.views, v.path)
	return false
}

// lingerLocked keeps v, whose last reference just went, for the next
// session, and returns the views the caller must close: v itself when
// nothing may linger, and the oldest lingering ones past the bounds.
// The caller holds r.mu.
func (r *registry) lingerLocked(v *view) []*view {
	if r.stopped || r.linger.d <= 0 {
		delete(r.views, v.path)
		return []*view{v}
	}
	v.idleSince = time.Now()
	r.idle = append(r.idle, v)
	var out []*view
	for len(r.idle) > 0 && (len(r.idle) > r.linger.views || r.idleMessages() > r.linger.maxMessages) {
		out = append(out, r.dropOldest())
	}
	if r.expiry == nil && len(r.idle) > 0 {
		r.expiry = time.AfterFunc(r.linger.d, r.expire)
	}
	return out
}

// idleMessages counts the messages of the lingering views.
func (r *registry) idleMessages() int {
	n := 0
	for _, v := range r.idle {
		v.mu.Lock()
		n += len(v.msgs)
		v.mu.Unlock()
	}
	return n
}

// dropOldest takes the longest-lingering view out of the registry.
func (r *registry) dropOldest() *view {
	v := r.idle[0]
	r.idle = r.idle[1:]
	delete(r.views, v.path)
	return v
}

// expire closes the views that lingered their time, and waits for the
// next one to.
func (r *registry) expire() {
	closing := r.expireAt(time.Now())
	for _, v := range closing {
		v.close()
	}
}

// expireAt takes out the views idle since before now−linger and re-arms
// the timer for the oldest one left.
func (r *registry) expireAt(now time.Time) []*view {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*view
	for len(r.idle) > 0 && now.Sub(r.idle[0].idleSince) >= r.linger.d {
		out = append(out, r.dropOldest())
	}
	r.expiry = nil
	if len(r.idle) > 0 && !r.stopped {
		r.expiry = time.AfterFunc(r.idle[0].idleSince.Add(r.linger.d).Sub(now), r.expire)
	}
	return out
}

// stop closes every lingering view and lets none linger from now on
// (Shutdown, once the sessions are gone).
func (r *registry) stop() {
	r.mu.Lock()
	r.stopped = true
	if r.expiry != nil {
		r.expiry.Stop()
		r.expiry = nil
	}
	var closing []*view
	for len(r.idle) > 0 {
		closing = append(closing, r.dropOldest())
	}
	r.mu.Unlock()
	for _, v := range closing {
		v.close()
	}
}
