package imapd

import (
	"sort"
	"strconv"
	"strings"

	"mailroom/imapd/wire"
)

// CONDSTORE and QRESYNC (RFC 7162). A session becomes CONDSTORE-aware
// with ENABLE CONDSTORE or QRESYNC, or with the first "CONDSTORE enabling
// command" (§3.1): SELECT/EXAMINE (CONDSTORE), FETCH MODSEQ or
// CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ, STATUS
// HIGHESTMODSEQ. From then on every FETCH response that carries FLAGS
// carries MODSEQ too. QRESYNC is turned on only by ENABLE QRESYNC
// (§3.2.3) and makes expunges VANISHED responses (§3.2.10).

// modseqExt is what a session enabled; it outlasts every SELECT.
type modseqExt struct {
	condstore, qresync bool
}

func (ss *session) condstore() bool { return ss.ext.condstore }
func (ss *session) qresync() bool   { return ss.ext.qresync }

// enableCondStore makes the session CONDSTORE-aware. RFC 7162 §3.1: the
// first CONDSTORE enabling command issued while a mailbox is selected
// gets the mailbox's HIGHESTMODSEQ, as SELECT would have sent it.
func (ss *session) enableCondStore() {
	if ss.ext.condstore {
		return
	}
	ss.ext.condstore = true
	if ss.sel != nil {
		ss.untagged("OK [HIGHESTMODSEQ " + strconv.FormatUint(ss.sel.view.highestModSeq(), 10) + "] highest")
	}
}

// enableQResync is ENABLE QRESYNC, which implies CONDSTORE (§3.2.3).
func (ss *session) enableQResync() {
	ss.enableCondStore()
	ss.ext.qresync = true
}

// uidRange is an inclusive range of UIDs, lo ≤ hi.
type uidRange struct{ lo, hi uint32 }

// rangesOfSet turns a UID set into ascending, disjoint ranges, "*"
// meaning max and nothing above max kept.
func rangesOfSet(set wire.SeqSet, maxUID uint32) []uidRange {
	if maxUID == 0 {
		return nil
	}
	var rs []uidRange
	for _, r := range set.Ranges {
		lo, hi := r.Bounds(maxUID)
		if lo > maxUID {
			continue
		}
		rs = append(rs, uidRange{lo, min(hi, maxUID)})
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].lo < rs[j].lo })
	var out []uidRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint64(r.lo) <= uint64(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// uidRangesIn is a list of ascending, disjoint ranges.
type uidRangesIn []uidRange

// contains reports whether uid is in one of the ranges.
func (rs uidRangesIn) contains(uid uint32) bool {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].hi >= uid })
	return i < len(rs) && rs[i].lo <= uid
}

// missingFrom returns the parts of rs that hold none of present
// (ascending), without listing UIDs one by one: "1:4294967295" costs no
// more than "1:10".
func missingFrom(rs []uidRange, present []uint32) []uidRange {
	var out []uidRange
	for _, r := range rs {
		next := uint64(r.lo)
		i := sort.Search(len(present), func(i int) bool { return present[i] >= r.lo })
		for ; i < len(present) && present[i] <= r.hi; i++ {
			if uint64(present[i]) > next {
				out = append(out, uidRange{uint32(next), present[i] - 1})
			}
			next = uint64(present[i]) + 1
		}
		if next <= uint64(r.hi) {
			out = append(out, uidRange{uint32(next), r.hi})
		}
	}
	return out
}

// formatRanges writes ranges as a sequence-set ("1:3,7").
func formatRanges(rs []uidRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(r.lo), 10))
		if r.hi > r.lo {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(r.hi), 10))
		}
	}
	return b.String()
}

// rangesOf turns ascending UIDs into ranges.
func rangesOf(uids []uint32) []uidRange {
	var out []uidRange
	for _, u := range uids {
		if n := len(out); n > 0 && uint64(u) == uint64(out[n-1].hi)+1 {
			out[n-1].hi = u
			continue
		}
		out = append(out, uidRange{u, u})
	}
	return out
}

// vanishedEarlierLocked returns what "VANISHED (EARLIER)" lists for a
// client that knew the UIDs in known at modseq (RFC 7162 §3.2.5.1,
// §3.2.6): the UIDs expunged since, or, when the view's record does not
// reach back that far, every known UID the mailbox lacks, above the
// highest UID that seq-match-data shows unchanged (§3.2.5.2).
func (ss *session) vanishedEarlierLocked(known []uidRange, modseq uint64, match *wire.SeqMatch) []uidRange {
	v := ss.sel.view
	gone, complete := v.vanishedSinceLocked(modseq)
	if complete {
		var in []uint32
		for _, u := range gone {
			if uidRangesIn(known).contains(u) && ss.sel.msn(u) == 0 {
				in = append(in, u)
			}
		}
		return rangesOf(in)
	}
	if floor := ss.seqMatchFloor(match); floor > 0 {
		var above []uidRange
		for _, r := range known {
			if r.hi > floor {
				above = append(above, uidRange{max(r.lo, floor+1), r.hi})
			}
		}
		known = above
	}
	return missingFrom(known, ss.sel.uids)
}

// maxSeqMatchPairs bounds the pairs of seq-match-data looked at.
const maxSeqMatchPairs = 1 << 20

// seqMatchFloor returns the highest UID of seq-match-data whose sequence
// number is still the one the client knew, checking the pairs in order
// and stopping at the first that differs (RFC 7162 §3.2.5.2): no message
// at or below it has been expunged, since that would have moved it.
func (ss *session) seqMatchFloor(m *wire.SeqMatch) uint32 {
	if m == nil {
		return 0
	}
	seqs, uids := setWalker{set: m.Seqs}, setWalker{set: m.UIDs}
	var floor uint32
	for range maxSeqMatchPairs {
		s, ok1 := seqs.next()
		u, ok2 := uids.next()
		if !ok1 || !ok2 || s == 0 || int(s) > len(ss.sel.uids) || ss.sel.uids[s-1] != u {
			break
		}
		floor = max(floor, u)
	}
	return floor
}

// setWalker lists the numbers of a set without "*" in the client's
// order.
type setWalker struct {
	set    wire.SeqSet
	i      int
	next64 uint64 // next number of set.Ranges[i]; 0 before it starts
}

func (w *setWalker) next() (uint32, bool) {
	for w.i < len(w.set.Ranges) {
		r := w.set.Ranges[w.i]
		lo, hi := min(r.Start, r.Stop), max(r.Start, r.Stop)
		if w.next64 == 0 {
			w.next64 = uint64(lo)
		}
		if w.next64 <= uint64(hi) {
			n := uint32(w.next64)
			w.next64++
			return n, true
		}
		w.i, w.next64 = w.i+1, 0
	}
	return 0, false
}

// writeVanished writes "* VANISHED [(EARLIER) ]uids", in lines of at
// most about maxVanishedLine octets: RFC 7162 §4 asks clients to take
// lines of 8192 octets, so a long set goes as several responses.
func (ss *session) writeVanished(earlier bool, uids []uidRange) {
	prefix := "VANISHED "
	if earlier {
		prefix += "(EARLIER) "
	}
	for len(uids) > 0 {
		n, size := 0, len(prefix)
		for n < len(uids) && (n == 0 || size < maxVanishedLine) {
			size += len(formatRanges(uids[n:n+1])) + 1
			n++
		}
		ss.untagged(prefix + formatRanges(uids[:n]))
		uids = uids[n:]
	}
}

// maxVanishedLine is where a VANISHED response is cut (a variable for
// tests).
var maxVanishedLine = 4000

// writeFlagsFetchLocked writes "* msn FETCH (UID uid FLAGS (...)[
// MODSEQ (n)])", the unsolicited form and QRESYNC's; v.mu is held.
func (ss *session) writeFlagsFetchLocked(msn int, m *vmsg, modseq bool) {
	v := ss.sel.view
	var names [8]string
	ss.w.Untagged()
	ss.w.Number(uint64(msn))
	ss.w.Raw(" FETCH (UID ")
	ss.w.Number(uint64(m.uid))
	ss.w.Raw(" FLAGS ")
	ss.w.Flags(ss.appendFlagNames(names[:0], v, m))
	if modseq {
		ss.w.Raw(" MODSEQ (")
		ss.w.Number(m.modseq)
		ss.w.Raw(")")
	}
	ss.w.Raw(")")
	ss.w.CRLF()
}

// selectQResync answers SELECT/EXAMINE (QRESYNC ...) after the usual
// responses (RFC 7162 §3.2.5): VANISHED (EARLIER) for the known UIDs
// expunged since the client's MODSEQ, then FETCH (UID FLAGS MODSEQ) for
// the messages changed since. With another UIDVALIDITY the client's
// cache is void and nothing is sent.
func (ss *session) selectQResync(q *wire.QResync) {
	v := ss.sel.view
	v.mu.Lock()
	defer v.mu.Unlock()
	if q.UIDValidity != v.mbox.UIDValidity() {
		return
	}
	maxUID := v.mbox.UIDNext() - 1
	known := []uidRange{{1, maxUID}}
	if q.HasKnownUIDs {
		known = rangesOfSet(q.KnownUIDs, maxUID)
	} else if maxUID == 0 {
		known = nil
	}
	ss.writeVanished(true, ss.vanishedEarlierLocked(known, q.ModSeq, q.SeqMatch))
	for i, uid := range ss.sel.uids {
		j := v.index(uid)
		if j < 0 || v.msgs[j].modseq <= q.ModSeq {
			continue
		}
		// §3.2.5: with known UIDs, only changes to those.
		if q.HasKnownUIDs && !uidRangesIn(known).contains(uid) {
			continue
		}
		ss.writeFlagsFetchLocked(i+1, &v.msgs[j], true)
	}
}

// fetchModSeqAttrs checks FETCH's CHANGEDSINCE and VANISHED modifiers
// (RFC 7162 §3.1.4.1, §3.2.6) and adds MODSEQ where it is due: with
// CHANGEDSINCE, and with FLAGS once the session is CONDSTORE-aware.
func (ss *session) fetchModSeqAttrs(c *wire.Command, fc *wire.FetchCommand, attrs []wire.FetchAttr) ([]wire.FetchAttr, error) {
	if fc.Vanished {
		switch {
		case !c.UID:
			return nil, bad("VANISHED needs UID FETCH")
		case !fc.HasChangedSince:
			return nil, bad("VANISHED needs CHANGEDSINCE")
		case !ss.qresync():
			return nil, bad("QRESYNC is not enabled")
		}
	}
	if fc.HasChangedSince || hasAttr(attrs, "MODSEQ") {
		ss.enableCondStore()
	}
	ex := ss.ext
	if !ex.condstore {
		return attrs, nil
	}
	// MODSEQ with CHANGEDSINCE (§3.1.4.1), with UID FETCH after QRESYNC
	// (§3.2.3), with an explicit UID (RFC 5162 erratum 1807, folded into
	// §3.1), and with FLAGS, so a cached flag always comes with its MODSEQ.
	if !hasAttr(attrs, "MODSEQ") && (fc.HasChangedSince || ex.qresync && c.UID || hasAttr(attrs, "UID") || hasAttr(attrs, "FLAGS")) {
		attrs = append(attrs, wire.FetchAttr{Name: "MODSEQ"})
	}
	// §3.1: a FETCH response with MODSEQ also names the UID.
	if hasAttr(attrs, "MODSEQ") && !hasAttr(attrs, "UID") {
		attrs = append([]wire.FetchAttr{{Name: "UID"}}, attrs...)
	}
	return attrs, nil
}

// fetchChangedSince keeps the messages whose MODSEQ is above
// CHANGEDSINCE; with VANISHED it first sends VANISHED (EARLIER) for the
// UIDs of the set expunged since (RFC 7162 §3.2.6).
//
// It syncs first: the question is what changed until now, other
// processes' changes included.
func (ss *session) fetchChangedSince(fc *wire.FetchCommand, refs []msgRef) ([]msgRef, error) {
	if !fc.HasChangedSince {
		return refs, nil
	}
	v := ss.sel.view
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.syncLocked(); err != nil {
		return nil, err
	}
	if fc.Vanished {
		known := rangesOfSet(fc.Seq, v.mbox.UIDNext()-1)
		ss.writeVanished(true, ss.vanishedEarlierLocked(known, fc.ChangedSince, nil))
	}
	out := refs[:0]
	for _, r := range refs {
		if i := v.index(r.uid); i >= 0 && v.msgs[i].modseq > fc.ChangedSince {
			out = append(out, r)
		}
	}
	return out, nil
}

// writeModSeq writes a FETCH response's "MODSEQ (n)" (RFC 7162 §3.1.4).
func (ss *session) writeModSeq(m *vmsg) {
	ss.w.Raw("MODSEQ (")
	ss.w.Number(m.modseq)
	ss.w.Raw(")")
}

// hasModSeqKey reports whether a search program uses MODSEQ.
func hasModSeqKey(k wire.SearchKey) bool {
	if k.Op == "MODSEQ" {
		return true
	}
	for _, sub := range k.Keys {
		if hasModSeqKey(sub) {
			return true
		}
	}
	return false
}

// searchModSeq is the highest MODSEQ of the messages hits names
// (sequence numbers, or UIDs when uid is set): RFC 7162 §3.1.5's
// "(MODSEQ n)" of a SEARCH with a MODSEQ key.
func (ss *session) searchModSeq(uid bool, hits []uint32) uint64 {
	v := ss.sel.view
	v.mu.Lock()
	defer v.mu.Unlock()
	var highest uint64
	for _, h := range hits {
		u := h
		if !uid {
			if int(h) > len(ss.sel.uids) || h == 0 {
				continue
			}
			u = ss.sel.uids[h-1]
		}
		if i := v.index(u); i >= 0 {
			highest = max(highest, v.msgs[i].modseq)
		}
	}
	return highest
}

// expungedOK is the tagged OK of a command that expunged: with QRESYNC it
// carries the mailbox's HIGHESTMODSEQ, which the VANISHED responses moved
// without a FETCH to tell it (RFC 7162 §3.2.10).
func (ss *session) expungedOK(name string) error {
	if !ss.qresync() {
		return nil
	}
	return okCode("HIGHESTMODSEQ "+strconv.FormatUint(ss.sel.view.highestModSeq(), 10), name+" completed")
}

// capHighestModSeqLocked: RFC 7162 §3.2, an expunge held back (during
// FETCH, STORE or SEARCH) must not be lost to a client that saw higher
// MODSEQs meanwhile and resyncs from the highest it saw: the server then
// sends a HIGHESTMODSEQ below the expunge's MODSEQ. v.mu is held.
func (ss *session) capHighestModSeqLocked() {
	var below uint64
	for _, ev := range ss.sel.pending {
		if ev.kind == evExpunge && ev.below > 0 && (below == 0 || ev.below < below) {
			below = ev.below
		}
	}
	if below > 0 {
		ss.untagged("OK [HIGHESTMODSEQ " + strconv.FormatUint(below, 10) + "] expunges pending")
	}
}

// implicitSeenAttrs adds UID and MODSEQ to a FETCH response whose \Seen
// the FETCH itself set, once the session is CONDSTORE-aware (RFC 7162
// §3.1: every untagged FETCH a flag change causes carries both).
func (ss *session) implicitSeenAttrs(attrs []wire.FetchAttr) []wire.FetchAttr {
	if !ss.condstore() {
		return attrs
	}
	if !hasAttr(attrs, "UID") {
		attrs = append(attrs, wire.FetchAttr{Name: "UID"})
	}
	if !hasAttr(attrs, "MODSEQ") {
		attrs = append(attrs, wire.FetchAttr{Name: "MODSEQ"})
	}
	return attrs
}
