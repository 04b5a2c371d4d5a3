package maildir

import (
	"slices"
)

// modseqCompactMin is how many records beyond two per message the log may
// hold before a sync compacts it (a variable for tests). Two per message
// keeps an open's read within twice the minimum; a compaction costs about
// what a STORE 1:* appends.
var modseqCompactMin int64 = 8192

// modseqLoadLocked reads the whole locked file (a first open, or another
// inode than the one loaded) and settles msgs with it: one read, fixed-size
// records, nothing allocated per record. A missing, foreign or damaged
// file is started over.
func (m *Mailbox) modseqLoadLocked(msgs []Message) error {
	mf := &m.ms.file
	data, err := mf.readRange(0, mf.size)
	if err != nil {
		return err
	}
	h, ok := parseModseqHeader(data)
	if !ok || h.uidValidity != m.ul.u.UIDValidity {
		return m.modseqRestartLocked(msgs)
	}
	m.ms.unapplied = nil
	// A message's ModSeq holds the modseq of the log's last record for it
	// while that record agrees with its file, and 0 (no modseq is 0)
	// while it does not: see modseqSettleLocked.
	for i := range msgs {
		msgs[i].ModSeq = 0
	}
	highest, recent := h.high, uint32(0)
	agree := 0 // messages whose ModSeq is not 0
	var absentLive map[uint32]bool
	hint := 0
	valid, damaged := modseqScan(data[modseqHeaderSize:], func(r modseqRecord) {
		if r.kind == modseqRecent {
			recent = max(recent, r.uid)
			return
		}
		highest = max(highest, r.modseq)
		// Records of a fresh or compacted file are in UID order: try the
		// message after the last one found before searching.
		i, ok := hint, hint < len(msgs) && msgs[hint].UID == r.uid
		if !ok {
			i, ok = modseqFind(msgs, r.uid)
		}
		if ok {
			msg := &msgs[i]
			if msg.ModSeq != 0 {
				agree--
			}
			msg.ModSeq = 0
			if r.kind == modseqChanged && r.flags == msg.Name.Flags && r.kw == msg.Name.Keywords {
				msg.ModSeq = r.modseq
				agree++
			}
			hint = i + 1
			return
		}
		if absentLive == nil {
			absentLive = map[uint32]bool{}
		}
		absentLive[r.uid] = r.kind == modseqChanged
	})
	m.ms.highest = max(m.ms.highest, highest)
	if damaged {
		return m.modseqRestartLocked(msgs)
	}
	// As for a tail (modseqReadTailLocked): what is acted on must be on
	// disk, even if its writer died before its fdatasync.
	if err := mf.datasync(); err != nil {
		return err
	}
	mf.off, mf.hdr, mf.loaded = modseqHeaderSize+int64(valid), h, true
	mf.noteTail(data[:mf.off])
	if mf.off != mf.size {
		if err := mf.cutTo(mf.off); err != nil {
			return err
		}
	}
	if recent != 0 {
		m.ms.recentNext = recent
	}
	var absent []uint32
	for uid, live := range absentLive {
		if live {
			absent = append(absent, uid)
		}
	}
	slices.Sort(absent)
	if agree < len(msgs) || len(absent) > 0 { // else the usual open: nothing to record
		if err := m.modseqSettleLocked(msgs, absent); err != nil {
			return err
		}
	}
	return m.modseqMaybeCompactLocked(msgs)
}

// modseqRestartLocked starts the file over: a header with a base above
// every modseq handed out before (see the package comment in modseq.go),
// every message of msgs recorded at that base, and the \Recent claim kept
// if this Mailbox knew it, else starting at the first message in new/.
func (m *Mailbox) modseqRestartLocked(msgs []Message) error {
	base := m.modseqNextLocked()
	recent := m.ms.recentNext
	if recent == 0 {
		recent = m.ul.u.NextUID
		for i := range msgs {
			if msgs[i].Dir == "new" {
				recent = min(recent, msgs[i].UID)
			}
		}
	}
	hdr := modseqHeader{uidValidity: m.ul.u.UIDValidity, base: base, high: base}
	data := make([]byte, 0, modseqHeaderSize+(len(msgs)+1)*modseqRecordSize)
	data = appendModseqHeader(data, hdr)
	for i := range msgs {
		msgs[i].ModSeq = base
		data = appendModseqRecord(data, modseqRecord{kind: modseqChanged, flags: msgs[i].Name.Flags, uid: msgs[i].UID, modseq: base, kw: msgs[i].Name.Keywords})
	}
	data = appendModseqRecord(data, modseqRecord{kind: modseqRecent, uid: max(recent, 1)})
	if err := m.ms.file.replace(data, hdr); err != nil {
		return err
	}
	m.ms.highest, m.ms.recentNext, m.ms.unapplied = base, max(recent, 1), nil
	return nil
}

// modseqMaybeCompactLocked rewrites the log when it holds far more records
// than the mailbox has messages: the last state of each message (from
// msgs, which was just settled with the log), the newest expunges, and the
// \Recent claim. The header's floor rises to the newest expunge dropped,
// below which VanishedSince is incomplete; base and HIGHESTMODSEQ stay.
func (m *Mailbox) modseqMaybeCompactLocked(msgs []Message) error {
	mf := &m.ms.file
	if (mf.off-modseqHeaderSize)/modseqRecordSize <= 2*int64(len(msgs))+modseqCompactMin {
		return nil
	}
	old, err := mf.readRange(modseqHeaderSize, mf.off)
	if err != nil {
		return err
	}
	var xs []modseqRecord
	modseqScan(old, func(r modseqRecord) {
		if r.kind == modseqExpunged {
			xs = append(xs, r)
		}
	})
	floor := mf.hdr.floor
	if keep := max(modseqKeepExpunges, len(msgs)/4); len(xs) > keep {
		for _, x := range xs[:len(xs)-keep] {
			floor = max(floor, x.modseq)
		}
		xs = xs[len(xs)-keep:]
	}
	hdr := modseqHeader{uidValidity: mf.hdr.uidValidity, base: mf.hdr.base, floor: floor, high: max(m.ms.highest, mf.hdr.base, floor)}
	data := make([]byte, 0, modseqHeaderSize+(len(xs)+len(msgs)+1)*modseqRecordSize)
	data = appendModseqHeader(data, hdr)
	// Expunges first: a UID recorded again after its expunge (a file
	// that came back) must end with its 'C' record.
	for _, x := range xs {
		data = appendModseqRecord(data, x)
	}
	for i := range msgs {
		data = appendModseqRecord(data, modseqRecord{kind: modseqChanged, flags: msgs[i].Name.Flags, uid: msgs[i].UID, modseq: msgs[i].ModSeq, kw: msgs[i].Name.Keywords})
	}
	data = appendModseqRecord(data, modseqRecord{kind: modseqRecent, uid: max(m.ms.recentNext, 1)})
	return mf.replace(data, hdr)
}

// modseqBeginLocked locks the file and brings the current view up to date
// with what other processes appended, for an operation that is about to
// append its own records (SetFlags, Expunge, ClaimRecent) or a Sync that
// found the directories unchanged. Records that match the view only move
// ModSeqs (reported as FlagsChanged, except for the UIDs in own); any
// other record stays in unapplied and makes the next Sync list the
// directories. reloaded reports that the file had to be read whole (it
// was replaced or cut back), which recorded whatever the view and the file
// disagreed on. The caller unlocks.
func (m *Mailbox) modseqBeginLocked(own []uint32) (reloaded bool, err error) {
	mf := &m.ms.file
	if err := mf.lock(); err != nil {
		return false, err
	}
	isOwn := modseqMember(own)
	if !mf.loaded {
		before := make([]uint64, len(m.msgs))
		for i := range m.msgs {
			before[i] = m.msgs[i].ModSeq
		}
		if err := m.modseqLoadLocked(m.msgs); err != nil {
			return false, m.modseqUnlock(err)
		}
		var moved []uint32
		for i := range m.msgs {
			if m.msgs[i].ModSeq != before[i] && !isOwn(m.msgs[i].UID) {
				moved = append(moved, m.msgs[i].UID)
			}
		}
		m.modseqReportLocked(moved)
		return true, nil
	}
	damaged, err := m.modseqReadTailLocked()
	if err == nil && damaged {
		err = m.modseqRestartLocked(m.msgs)
	}
	if err != nil {
		return false, m.modseqUnlock(err)
	}
	var moved []uint32
	for uid, e := range m.ms.unapplied {
		i, ok := m.indexLocked(uid)
		if !ok || e.kind != modseqChanged || e.flags != m.msgs[i].Name.Flags || e.kw != m.msgs[i].Name.Keywords || isOwn(uid) {
			continue
		}
		if m.msgs[i].ModSeq != e.modseq {
			m.msgs[i].ModSeq = e.modseq
			moved = append(moved, uid)
		}
		delete(m.ms.unapplied, uid)
	}
	m.modseqReportLocked(moved)
	return damaged, nil
}

// modseqMember is a membership test for uids: a STORE of 1:* on a big
// mailbox must not cost a scan of its UIDs per message.
func modseqMember(uids []uint32) func(uint32) bool {
	if len(uids) <= 8 {
		return func(uid uint32) bool { return slices.Contains(uids, uid) }
	}
	sorted := slices.Clone(uids)
	slices.Sort(sorted)
	return func(uid uint32) bool {
		_, ok := slices.BinarySearch(sorted, uid)
		return ok
	}
}

// modseqReportLocked adds UIDs whose ModSeq moved to the pending changes.
func (m *Mailbox) modseqReportLocked(moved []uint32) {
	if len(moved) > 0 && m.opened {
		m.pending = syncMergeChanges(m.pending, Changes{FlagsChanged: moved})
	}
}

// modseqQuickLocked is the MODSEQ side of a Sync that found new/, cur/ and
// the uidlist unchanged: one stat(2) when the log is unchanged too. It
// reports whether the directories must be listed after all (the log holds
// a change the view does not show).
func (m *Mailbox) modseqQuickLocked() (full bool, err error) {
	changed, err := m.ms.file.changedSince()
	if err != nil || !changed {
		return false, err
	}
	if _, err := m.modseqBeginLocked(nil); err != nil {
		return false, err
	}
	defer func() { err = m.modseqUnlock(err) }()
	return len(m.ms.unapplied) > 0, nil
}

// modseqFlagsLocked records that this Mailbox changed the flags of uids
// (the view already shows the new flags): one 'C' record each, at one new
// modseq, unless another process's sync recorded the same flags first.
func (m *Mailbox) modseqFlagsLocked(uids []uint32) (err error) {
	if len(uids) == 0 {
		return nil
	}
	before := m.ms.highest
	if _, err := m.modseqBeginLocked(uids); err != nil {
		return err
	}
	defer func() { err = m.modseqUnlock(err) }()
	ms := m.modseqNextLocked()
	var buf []byte
	for _, uid := range uids {
		i, ok := m.indexLocked(uid)
		if !ok {
			continue
		}
		msg := &m.msgs[i]
		if msg.ModSeq > before {
			// modseqBeginLocked had to read the whole file (it was
			// replaced) or start it over, and recorded the view, our
			// change included.
			continue
		}
		e, seen := m.ms.unapplied[uid]
		delete(m.ms.unapplied, uid)
		if seen && e.kind == modseqChanged && e.flags == msg.Name.Flags && e.kw == msg.Name.Keywords {
			msg.ModSeq = e.modseq
			continue
		}
		msg.ModSeq = ms
		buf = appendModseqRecord(buf, modseqRecord{kind: modseqChanged, flags: msg.Name.Flags, uid: uid, modseq: ms, kw: msg.Name.Keywords})
	}
	return m.modseqCommitLocked(buf, ms)
}

// modseqExpungeLocked records that this Mailbox removed uids: one 'X'
// record each, at one new modseq, unless one is in the log already.
func (m *Mailbox) modseqExpungeLocked(uids []uint32) (err error) {
	if len(uids) == 0 {
		return nil
	}
	reloaded, err := m.modseqBeginLocked(uids)
	if err != nil {
		return err
	}
	defer func() { err = m.modseqUnlock(err) }()
	ms := m.modseqNextLocked()
	var buf []byte
	for _, uid := range uids {
		e, seen := m.ms.unapplied[uid]
		delete(m.ms.unapplied, uid)
		if seen && e.kind == modseqExpunged {
			continue
		}
		if _, inView := m.indexLocked(uid); reloaded && !inView {
			// Reading the whole file (or starting it over) recorded
			// every UID the view lacks as expunged already.
			continue
		}
		buf = appendModseqRecord(buf, modseqRecord{kind: modseqExpunged, uid: uid, modseq: ms})
	}
	return m.modseqCommitLocked(buf, ms)
}

// modseqCommitLocked appends a batch written at modseq ms, durably, and
// makes the next Sync list the directories if the log still holds records
// the view does not reflect.
func (m *Mailbox) modseqCommitLocked(buf []byte, ms uint64) error {
	if len(m.ms.unapplied) > 0 {
		m.quick.valid = false
	}
	if len(buf) == 0 {
		return nil
	}
	if err := m.ms.file.appendRecords(buf, true); err != nil {
		return err
	}
	m.ms.highest = ms
	return nil
}
