package imapd

import (
	"fmt"

	"mailroom/maildir"
)

// MODSEQs of a view (RFC 7162 §3.1.1) come from the engine, which keeps
// them in <maildir>/mailroom-modseq for every process (maildir/modseq.go):
// every message has one, every change to its flags, by any process, gives
// it a higher one, every expunge takes one, and HIGHESTMODSEQ never goes
// back, across processes and restarts. The engine also records the
// expunges behind QRESYNC's VANISHED (EARLIER) and the \Recent claims.
// The view copies each message's MODSEQ when it loads or sees the message
// change, under v.mu, so a session reads it with the flags it goes with.

// startModSeqLocked is called before the view loads its messages.
func (v *view) startModSeqLocked() {}

// messageModSeqLocked returns the MODSEQ of a message the view has just
// loaded or seen change.
func (v *view) messageModSeqLocked(m maildir.Message) uint64 { return m.ModSeq }

// highestModSeqLocked is HIGHESTMODSEQ (RFC 7162 §3.1.2.1): at least
// every message's MODSEQ and every expunge's.
func (v *view) highestModSeqLocked() uint64 { return v.mbox.HighestModSeq() }

// recordVanishedLocked notes an expunge the view saw; the engine has
// already given it its MODSEQ and recorded it.
func (v *view) recordVanishedLocked(uint32) {}

// vanishedSinceLocked returns the UIDs expunged with a MODSEQ above
// modseq, ascending; complete is false when the engine's record does not
// reach back that far (RFC 7162 §3.2.5.1: the caller then takes every UID
// it cannot find as vanished).
func (v *view) vanishedSinceLocked(modseq uint64) (uids []uint32, complete bool) {
	return v.mbox.VanishedSince(modseq)
}

// highestModSeq is highestModSeqLocked taking the lock.
func (v *view) highestModSeq() uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.highestModSeqLocked()
}

// claimRecentLocked claims \Recent for a read-write session (RFC 3501
// §2.3.2: one session sees a message as recent) through the engine, so
// the claim holds across processes: every UID ≥ first is the caller's.
// A failure only costs the \Recent flags: it is logged, nothing is recent.
func (v *view) claimRecentLocked() uint32 {
	first, err := v.mbox.ClaimRecent()
	if err != nil {
		v.log.Warn("claim recent", "path", v.path, "err", err)
		return ^uint32(0)
	}
	return first
}

// recentLocked is STATUS RECENT (RFC 3501 §6.3.10): the messages nobody
// has claimed as \Recent yet, counted by the engine without claiming them
// (a read-write SELECT by another session or process would get them), and
// those sel, if it has this view selected, claimed itself.
func (v *view) recentLocked(sel *selected) (int, error) {
	_, n, err := v.mbox.UnclaimedRecent()
	if err != nil {
		return 0, fmt.Errorf("status recent: %w", err)
	}
	if sel != nil && sel.view == v {
		n += len(sel.recent)
	}
	return n, nil
}

// recentMarkLocked returns the first UID that is \Recent for a session:
// claimed by a read-write one, only looked at by a read-only one (RFC
// 3501 §6.3.2: EXAMINE must not make messages lose \Recent, so it shows
// those nobody has claimed). A failure costs only the \Recent flags.
func (v *view) recentMarkLocked(readOnly bool) uint32 {
	if !readOnly {
		return v.claimRecentLocked()
	}
	first, _, err := v.mbox.UnclaimedRecent()
	if err != nil {
		v.log.Warn("recent", "path", v.path, "err", err)
		return ^uint32(0)
	}
	return first
}
