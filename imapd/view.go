package imapd

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"mailroom/maildir"
)

// registry holds one view per Maildir path for the whole process, shared
// by every session that selects the mailbox (refcounted). A view nobody
// holds lingers a while for the next session (view_linger.go).
type registry struct {
	mu      sync.Mutex
	views   map[string]*view
	linger  lingerPolicy
	idle    []*view // views with no reference, in the order they were released
	expiry  *time.Timer
	stopped bool // Shutdown: nothing lingers any more
}

func newRegistry() *registry {
	return &registry{views: map[string]*view{}, linger: defaultLinger}
}

// vmsg is one message as the view knows it.
type vmsg struct {
	uid    uint32
	flags  maildir.Flags
	kw     maildir.Keywords
	size   int64 // RFC822.SIZE (CRLF form); -1 until known
	modseq uint64
}

// eventKind is what a pending update says.
type eventKind uint8

const (
	evNew eventKind = iota + 1
	evExpunge
	evFlags
)

type event struct {
	kind eventKind
	uid  uint32
	// below is, for an expunge, a MODSEQ under the expunge's own: the
	// HIGHESTMODSEQ before the operation that removed it
	// (condstore.go's deferredExpungeModSeq).
	below uint64
}

// view is the in-memory state of one mailbox: UIDs, flags, keywords,
// sizes and a MODSEQ per message (RFC 7162, from the engine:
// condstore_view.go). Sessions that select it subscribe and get
// every change as an event, which they turn into EXISTS, EXPUNGE and
// FETCH FLAGS responses at the points the protocol allows.
type view struct {
	reg  *registry
	path string
	refs int // under reg.mu
	log  *slog.Logger

	mu    sync.Mutex
	mbox  *maildir.Mailbox
	msgs  []vmsg // ascending UID
	kwGen uint64 // bumped when a keyword is defined
	// expungeBelow is HIGHESTMODSEQ before the operation under way, for
	// the expunges it finds (event.below).
	expungeBelow uint64
	subs         map[*selected]bool
	idlers       int
	watcher      *maildir.Watcher
	cacheOnce    sync.Once
	// openedAt is when OpenMailbox synced the view, zero after any later
	// sync: a SELECT right after need not list the directories again.
	openedAt time.Time
	cache    *structCache // made on first use (structs)
	// dir is the Maildir the view was made of; idleSince is when the
	// last reference went (under reg.mu; view_linger.go).
	dir       dirIdentity
	idleSince time.Time

	// watchDirty and watchBusy coalesce the watcher's signals into one
	// sync goroutine at a time, started only when something changed.
	watchDirty atomic.Bool
	watchBusy  atomic.Bool
}

// structs returns the mailbox's structure cache, opening it on first use
// (STATUS and LIST need no cache).
func (v *view) structs() *structCache {
	v.cacheOnce.Do(func() {
		v.cache = openStructCache(v.path, v.mbox.UIDValidity(), v.log)
	})
	return v.cache
}

// open returns the shared view of the Maildir at path.
func (r *registry) open(path string, log *slog.Logger) (*view, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.views[path]; ok {
		if v.refs > 0 || r.revive(v) {
			v.refs++
			return v, nil
		}
		defer v.close() // lingered, but the Maildir was replaced since
	}
	dir, err := maildirIdentity(path)
	if err != nil {
		return nil, err
	}
	mbox, err := maildir.OpenMailbox(path)
	if err != nil {
		return nil, err
	}
	v := &view{reg: r, path: path, refs: 1, log: log, mbox: mbox, subs: map[*selected]bool{}, openedAt: time.Now(), dir: dir}
	v.msgs = make([]vmsg, 0, mbox.Len())
	v.startModSeqLocked()
	mbox.Range(func(m maildir.Message) bool {
		v.msgs = append(v.msgs, vmsg{uid: m.UID, flags: m.Name.Flags, kw: m.Name.Keywords, size: m.VSize, modseq: v.messageModSeqLocked(m)})
		return true
	})
	r.views[path] = v
	return v, nil
}

// release drops a reference; after the last one the view lingers, or is
// closed when it may not (lingerLocked).
func (r *registry) release(v *view) {
	r.mu.Lock()
	v.refs--
	var closing []*view
	if v.refs == 0 {
		closing = r.lingerLocked(v)
	}
	r.mu.Unlock()
	for _, c := range closing {
		c.close()
	}
}

// close lets go of what a view holds once no session can reach it.
func (v *view) close() {
	v.mu.Lock()
	w := v.watcher
	v.watcher = nil
	v.mu.Unlock()
	if w != nil {
		_ = w.Close()
	}
	v.cacheOnce.Do(func() {}) // no cache after this
	if v.cache != nil {
		v.cache.compactAtClose(v.holdsUID)
		v.cache.close()
	}
}

// index returns the position of uid in msgs, or -1.
func (v *view) index(uid uint32) int {
	i := sort.Search(len(v.msgs), func(i int) bool { return v.msgs[i].uid >= uid })
	if i < len(v.msgs) && v.msgs[i].uid == uid {
		return i
	}
	return -1
}

// lookup returns a copy of the message with uid.
func (v *view) lookup(uid uint32) (vmsg, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	i := v.index(uid)
	if i < 0 {
		return vmsg{}, false
	}
	return v.msgs[i], true
}

// sync brings the view up to date with the disk and tells subscribers.
func (v *view) sync() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.syncLocked()
}

// freshSyncWindow is how long after OpenMailbox's sync a SELECT takes the
// view as it is (syncedLocked); every later command syncs anyway.
const freshSyncWindow = time.Second

// syncedLocked brings the view up to date unless OpenMailbox just did.
func (v *view) syncedLocked() error {
	if !v.openedAt.IsZero() && time.Since(v.openedAt) < freshSyncWindow {
		v.openedAt = time.Time{}
		return nil
	}
	return v.syncLocked()
}

func (v *view) syncLocked() error {
	v.openedAt = time.Time{}
	kwBefore := len(v.mbox.KeywordNames())
	v.expungeBelow = v.highestModSeqLocked()
	ch, err := v.mbox.Sync()
	if err != nil {
		return fmt.Errorf("sync %s: %w", v.path, err)
	}
	if ch.Empty() {
		return nil
	}
	for _, uid := range ch.Expunged {
		v.removeLocked(uid)
	}
	for _, uid := range ch.New {
		m, ok := v.mbox.Lookup(uid)
		if !ok || v.index(uid) >= 0 {
			continue
		}
		vm := vmsg{uid: uid, flags: m.Name.Flags, kw: m.Name.Keywords, size: m.VSize, modseq: v.messageModSeqLocked(m)}
		i := sort.Search(len(v.msgs), func(i int) bool { return v.msgs[i].uid > uid })
		v.msgs = append(v.msgs, vmsg{})
		copy(v.msgs[i+1:], v.msgs[i:])
		v.msgs[i] = vm
		v.publishLocked(event{kind: evNew, uid: uid}, nil)
	}
	for _, uid := range ch.FlagsChanged {
		m, ok := v.mbox.Lookup(uid)
		i := v.index(uid)
		if !ok || i < 0 {
			continue
		}
		v.msgs[i].flags, v.msgs[i].kw, v.msgs[i].modseq = m.Name.Flags, m.Name.Keywords, v.messageModSeqLocked(m)
		v.publishLocked(event{kind: evFlags, uid: uid}, nil)
	}
	if len(v.mbox.KeywordNames()) != kwBefore {
		v.kwGen++ // another process defined keywords
	}
	return nil
}

func (v *view) removeLocked(uid uint32) {
	i := v.index(uid)
	if i < 0 {
		return
	}
	v.msgs = append(v.msgs[:i], v.msgs[i+1:]...)
	v.recordVanishedLocked(uid)
	v.publishLocked(event{kind: evExpunge, uid: uid, below: v.expungeBelow}, nil)
}

// publishLocked queues ev for every subscriber but except and wakes them.
func (v *view) publishLocked(ev event, except *selected) {
	for s := range v.subs {
		if s == except {
			continue
		}
		s.pending = append(s.pending, ev)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// storeFlags applies a flag change to uids (only messages that exist)
// and returns the UIDs whose flags changed. Other subscribers hear of it;
// the caller answers for its own session.
func (v *view) storeFlags(uids []uint32, change func(maildir.Flags, maildir.Keywords) (maildir.Flags, maildir.Keywords), from *selected) ([]uint32, error) {
	changed, _, err := v.storeFlagsIf(uids, change, from, noUnchangedSince)
	return changed, err
}

// noUnchangedSince makes storeFlagsIf unconditional.
const noUnchangedSince = ^uint64(0)

// storeFlagsIf is storeFlags with RFC 7162 §3.1.3's UNCHANGEDSINCE: a
// message whose MODSEQ is above unchangedSince is left alone and listed
// in modified. The test is the engine's (maildir.SetFlagsManyIf), made
// under the lock of its modseq log in the critical section that gives the
// change its modseq, so no change by another session or process slips in
// between the test and the rename, and MODIFIED is exact.
func (v *view) storeFlagsIf(uids []uint32, change func(maildir.Flags, maildir.Keywords) (maildir.Flags, maildir.Keywords), from *selected, unchangedSince uint64) (changed, modified []uint32, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if unchangedSince != noUnchangedSince {
		// A process that does not write the modseq log (Dovecot, a
		// mail client) is seen only by a sync: the engine's test can
		// then catch its change to a file this STORE leaves as it is.
		if err := v.syncLocked(); err != nil {
			return nil, nil, err
		}
		if storeIfHook != nil {
			storeIfHook()
		}
		changed, modified, err = v.mbox.SetFlagsManyIf(v.present(uids), unchangedSince, change)
		v.takeStoredLocked(changed, from)
		return changed, modified, err
	}
	// One batch for the whole command: the engine renames every file, then
	// flushes cur/ (and new/) once, not once per message.
	var batch []maildir.FlagChange
	for _, uid := range uids {
		i := v.index(uid)
		if i < 0 {
			continue
		}
		f, k := change(v.msgs[i].flags, v.msgs[i].kw)
		if f == v.msgs[i].flags && k == v.msgs[i].kw {
			continue
		}
		batch = append(batch, maildir.FlagChange{UID: uid, Flags: f, Keywords: k})
	}
	err = v.mbox.SetFlagsMany(batch)
	// Whatever failed, the files renamed before it have their new flags:
	// report exactly those (the engine's view says which).
	var done []uint32
	for _, c := range batch {
		m, ok := v.mbox.Lookup(c.UID)
		if ok && m.Name.Flags == c.Flags && m.Name.Keywords == c.Keywords {
			done = append(done, c.UID)
		}
	}
	return v.takeStoredLocked(done, from), nil, err
}

// storeIfHook, when set (by tests), runs before a conditional store calls
// the engine: where another process's change used to slip in.
var storeIfHook func()

// present returns the UIDs of uids the view has.
func (v *view) present(uids []uint32) []uint32 {
	out := make([]uint32, 0, len(uids))
	for _, uid := range uids {
		if v.index(uid) >= 0 {
			out = append(out, uid)
		}
	}
	return out
}

// takeStoredLocked copies the engine's flags and MODSEQ of the messages
// this session stored into the view and tells the other subscribers.
func (v *view) takeStoredLocked(uids []uint32, from *selected) []uint32 {
	for _, uid := range uids {
		m, ok := v.mbox.Lookup(uid)
		i := v.index(uid)
		if !ok || i < 0 {
			continue
		}
		v.msgs[i].flags, v.msgs[i].kw, v.msgs[i].modseq = m.Name.Flags, m.Name.Keywords, v.messageModSeqLocked(m)
		v.publishLocked(event{kind: evFlags, uid: uid}, from)
	}
	return uids
}

// expunge deletes uids; every subscriber, the caller's session included,
// gets the EXPUNGE events.
func (v *view) expunge(uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	defer v.quotaExpunge(uids)() // maildirsize "-bytes -count" (imapd/quota.go)
	v.expungeBelow = v.highestModSeqLocked()
	if err := v.mbox.Expunge(uids...); err != nil {
		return fmt.Errorf("expunge: %w", err)
	}
	for _, uid := range uids {
		v.removeLocked(uid)
	}
	return nil
}

// keywordSlots returns the slots of names, creating them when create is
// set; a name without a slot (not created) is skipped.
func (v *view) keywordSlots(names []string, create bool) (maildir.Keywords, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var k maildir.Keywords
	before := len(v.mbox.KeywordNames())
	for _, n := range names {
		slot, err := v.mbox.KeywordSlot(n, create)
		if err != nil {
			return k, err
		}
		if slot >= 0 {
			k = k.With(slot)
		}
	}
	if len(v.mbox.KeywordNames()) != before {
		v.kwGen++
	}
	return k, nil
}

// keywordNames returns the slot table and its generation.
func (v *view) keywordNames() ([]string, uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mbox.KeywordNames(), v.kwGen
}

// watchMailbox starts the watcher of a view; a variable so that a test
// can make it fail.
var watchMailbox = (*maildir.Mailbox).WatchFunc

// startIdle makes sure a watcher reports changes by other processes while
// a session idles (RFC 2177): the engine's process-wide inotify instance,
// or its polling when inotify cannot be had.
func (v *view) startIdle() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.idlers++
	if v.watcher != nil {
		return nil
	}
	w, err := watchMailbox(v.mbox, v.watch)
	if err != nil {
		v.idlers--
		return fmt.Errorf("watch %s: %w", v.path, err)
	}
	if w.Polling() {
		v.log.Warn("idle", "path", v.path, "fallback", "polling")
	}
	v.watcher = w
	return nil
}

// stopIdle ends one idler; the last one stops the watcher.
func (v *view) stopIdle() {
	v.mu.Lock()
	v.idlers--
	var w *maildir.Watcher
	if v.idlers == 0 {
		w, v.watcher = v.watcher, nil
	}
	v.mu.Unlock()
	if w != nil {
		_ = w.Close()
	}
}

// watch is the watcher's notify. It runs on the engine's goroutine shared
// by every watched Maildir, so it must not block: it starts a sync
// goroutine unless one is running, which syncs until no signal is left.
// No goroutine waits per mailbox while nothing changes.
func (v *view) watch() {
	v.watchDirty.Store(true)
	if !v.watchBusy.CompareAndSwap(false, true) {
		return // the running goroutine sees watchDirty
	}
	go func() {
		for {
			for v.watchDirty.Swap(false) {
				if err := v.sync(); err != nil {
					v.log.Error("sync", "path", v.path, "err", err)
				}
			}
			v.watchBusy.Store(false)
			// A signal between the last Swap and the Store above found
			// watchBusy set and left it to us.
			if !v.watchDirty.Load() || !v.watchBusy.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}
