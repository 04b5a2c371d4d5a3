package maildir

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// listingOpened is what listingOpen reads from a usable listing cache: the
// messages OpenMailbox's first sync would build, without listing new/ and
// cur/ and matching every file name to the uidlist (at 100,000 messages
// about half of a warm IMAP SELECT's time, all of it in OpenMailbox).
type listingOpened struct {
	UIDValidity, UIDNext uint32
	// Msgs are in UID order, as syncView makes them; ModSeq is left to
	// the caller (mailroom-modseq).
	Msgs []Message
	// Dirs are new/ and cur/ as the cache recorded them: unchanged since,
	// so a quick sync may start from them.
	Dirs [2]syncStamp
}

// listingOpen reads the Maildir's listing cache (ListingName) when it is
// usable now: intact, and new/, cur/ and the uidlist exactly as it
// recorded them (readListing's checks, those Snapshot relies on). It
// returns nil, nil when the cache is missing, damaged or stale: the caller
// then lists the directories as before.
//
// The hook OpenMailbox needs (mailbox.go/sync.go, the engine's owners): on
// the first sync, under the uidlist lock and after reading the uidlist,
// call listingOpen; when it answers, take Msgs as the view (then
// modseqSyncLocked and reindexLocked as after syncView) and Dirs for the
// quick-sync stamps of new/ and cur/; otherwise scan as now, with
// writeListing in the scan's done callback (as Snapshot does) so the next
// open finds a cache. The uidlist must still be the one the cache's U line
// names, which listingCurrent checked.
func listingOpen(path string) (*listingOpened, error) {
	l, f, err := readListing(path)
	if err != nil || l == nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	root, sep := messagePathRoot(path)
	out := &listingOpened{UIDValidity: l.UIDValidity, UIDNext: l.UIDNext, Dirs: l.dirs, Msgs: make([]Message, 0, l.count)}
	_, err = listingWalk(f, func(e listingEntry) error {
		dir := syncCur
		if e.inNew {
			dir = syncNew
		}
		// e.name is valid only during the call: the path is the copy.
		p := root + sep + syncDirNames[dir] + "/" + e.name
		name := p[len(p)-len(e.name):]
		n, err := ParseName(name)
		if err != nil {
			return fmt.Errorf("%w: %w", errListing, err)
		}
		size, vsize := e.sizes()
		out.Msgs = append(out.Msgs, Message{UID: e.uid, Name: n, Dir: syncDirNames[dir], Path: p, Size: size, VSize: vsize})
		return nil
	})
	if err != nil {
		if errors.Is(err, errListing) {
			return nil, nil // changed under us: list instead
		}
		return nil, err
	}
	return out, nil
}

// openFromListingLocked is the first sync of OpenMailbox when the listing
// cache is usable: under dovecot-uidlist.lock, the uidlist and keywords
// are read as a scan reads them, and the messages come from the cache
// instead of listing new/ and cur/ and matching every name to the
// uidlist. It reports false, having changed nothing but the cached
// uidlist and keywords, when the cache cannot be used; the caller then
// scans. before are the stamps syncLocked took at its start.
func (m *Mailbox) openFromListingLocked(before [4]syncStamp) (bool, error) {
	lk, err := uidlistLockAcquire(m.path, m.lockOpt)
	if err != nil {
		return false, err
	}
	lo, err := m.listingUnderLock()
	if rerr := lk.release(); err == nil && rerr != nil {
		err = rerr
	}
	if err != nil || lo == nil {
		return false, err
	}
	msgs := lo.Msgs
	if err := m.modseqSyncLocked(msgs); err != nil {
		return false, err
	}
	m.msgs = msgs
	m.reindexLocked()
	m.quick = syncQuickState{valid: true, stamp: before, listedAt: time.Now()}
	return true, nil
}

// listingUnderLock reads the uidlist, the keywords and a usable listing
// cache of the same UIDVALIDITY; the caller holds the uidlist lock.
func (m *Mailbox) listingUnderLock() (*listingOpened, error) {
	if err := m.ul.refresh(); err != nil {
		return nil, err
	}
	if m.ul.u == nil {
		return nil, nil // a new uidlist is made by a scan
	}
	if err := m.kw.refresh(); err != nil {
		return nil, err
	}
	lo, err := listingOpen(m.path)
	if err != nil || lo == nil {
		return nil, err
	}
	if lo.UIDValidity != m.ul.u.UIDValidity || lo.UIDNext > m.ul.u.NextUID {
		return nil, nil
	}
	return lo, nil
}
