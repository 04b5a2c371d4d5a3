package maildir

// MODSEQs (RFC 7162 CONDSTORE/QRESYNC), the expunge record behind QRESYNC's
// VANISHED, and \Recent, kept in mailroom-modseq at the Maildir's root so
// that every process sees the same numbers. Layout: modseq_format.go and
// docs/formats.md §1.12.
//
// The file is a header and an append-only log. Its state is, per UID, the
// last record naming it: 'C' (the flags and keywords as of a modseq) or
// 'X' (expunged at a modseq); and the highest 'R' (first UID not yet
// claimed as \Recent). HIGHESTMODSEQ is the largest modseq in it.
//
// Who writes: a Mailbox that changes something (SetFlags, SetFlagsMany,
// Expunge, MoveTo) appends its records itself, in one write per call. A
// Sync that finds the disk differing from the log — a UID the log does not
// know, a file whose flags differ from the log's last record for it, a UID
// the log has live whose file is gone — appends the missing records. So
// changes by processes that never write the log (deliver, Dovecot, a mail
// client renaming files) get a modseq at the next Sync of any Mailbox, and
// a change already in the log is taken from it, never bumped twice. All of
// it happens under flock(2) on the file; a Sync reads only the tail
// appended since its last read (one stat(2) when nothing changed).
//
// Modseqs are assigned as max(highest+1, now in microseconds), one per
// batch. Tying them to the clock is what makes starting over safe: a file
// that is missing, belongs to another UIDVALIDITY or is damaged is
// rewritten with a base of max(highest known+1, now), which is above every
// modseq handed out before — ours ran ahead of the clock only by the
// batches made faster than one per microsecond, and Dovecot's counters on
// the same Maildir are small — unless the clock was set back further than
// that in between. Every message gets the base as its modseq, so a client
// that cached an older HIGHESTMODSEQ sees everything as changed and
// resyncs instead of missing a change, and VanishedSince reports
// complete=false below the base.
//
// Durability: records are fdatasync'd before the lock is dropped, and a
// reader fdatasyncs what it read before acting on it (in case its writer
// died in between), so no process acts on a record a crash could take
// back. SetFlagsMany and Expunge write theirs before they fsync the
// directories, so all is durable when imapd answers OK. A crash can still
// tear an append nobody has acted on: a short fragment at the end is cut
// off (the change it described is on disk and is recorded again, with a
// new modseq, by the next Sync), while a whole record with a bad CRC may
// be damage as well as a torn append, and starts the file over, as what
// follows it cannot be trusted. \Recent claims are not fsync'd by themselves: losing
// one only shows a message as recent again.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// modseqState is a Mailbox's MODSEQ and \Recent bookkeeping.
type modseqState struct {
	file       modseqFile
	highest    uint64
	recentNext uint32
	// unapplied holds log records read (their offset consumed) that the
	// view does not reflect yet; the next full sync uses them as the log's
	// state for their UIDs. Almost always empty.
	unapplied map[uint32]modseqEnt
}

// modseqEnt is the log's last word on one UID.
type modseqEnt struct {
	modseq uint64
	kw     Keywords
	flags  Flags
	kind   byte // modseqChanged, modseqExpunged, or 0: no record
	fresh  bool // from a tail read: written by another process just now
}

// modseqKeepExpunges is how many expunge records compaction keeps at
// least, so QRESYNC clients that were connected recently still get an
// exact VANISHED (a variable for tests).
var modseqKeepExpunges = 4096

// modseqNow is the clock modseqs follow (a variable for tests).
var modseqNow = func() uint64 { return uint64(time.Now().UnixMicro()) }

// HighestModSeq returns the mailbox's HIGHESTMODSEQ (RFC 7162 §3.1.1) as
// of the last sync: at least every message's ModSeq and every expunge's
// modseq. It grows whenever anything in the mailbox changes, and never
// goes back, across processes and restarts.
func (m *Mailbox) HighestModSeq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ms.highest
}

// VanishedSince returns the UIDs expunged with a modseq above modseq, in
// ascending order. complete is false when the record does not reach back
// that far (the file was started over after modseq, or compaction dropped
// expunges above it); the caller then treats every UID it cannot find as
// vanished (RFC 7162 §3.2.5.1).
func (m *Mailbox) VanishedSince(modseq uint64) (uids []uint32, complete bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	uids, complete, err := m.vanishedLocked(modseq)
	if err != nil {
		return nil, false // nothing can be promised: the caller resyncs
	}
	return uids, complete
}

// vanishedLocked reads the expunge records of the current file.
func (m *Mailbox) vanishedLocked(modseq uint64) (uids []uint32, complete bool, err error) {
	// A private handle: reading must not disturb what the view loaded.
	mf := modseqFile{path: m.ms.file.path}
	if err := mf.lock(); err != nil {
		return nil, false, err
	}
	defer func() { err = joinErr(err, mf.unlock()) }()
	data, err := mf.readRange(0, mf.size)
	if err != nil {
		return nil, false, err
	}
	h, ok := parseModseqHeader(data)
	if !ok || h.uidValidity != m.ul.u.UIDValidity {
		return nil, false, nil
	}
	modseqScan(data[modseqHeaderSize:], func(r modseqRecord) {
		if r.kind == modseqExpunged && r.modseq > modseq {
			if _, live := m.indexLocked(r.uid); !live {
				uids = append(uids, r.uid)
			}
		}
	})
	slices.Sort(uids)
	return slices.Compact(uids), modseq >= h.base && modseq >= h.floor, nil
}

// ClaimRecent claims \Recent as Dovecot keeps it (its first_recent_uid):
// every UID ≥ first is recent for the caller. The claim reaches up to the
// view's UIDNext and is recorded in mailroom-modseq, so the next caller,
// in this process or another, gets a higher first once it has synced the
// same messages. Only a read-write SELECT should claim.
func (m *Mailbox) ClaimRecent() (first uint32, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.modseqBeginLocked(nil); err != nil {
		return 0, err
	}
	defer func() { err = m.modseqUnlock(err) }()
	first = max(m.ms.recentNext, 1)
	next := m.ul.u.NextUID
	if next <= first {
		return first, nil
	}
	rec := appendModseqRecord(nil, modseqRecord{kind: modseqRecent, uid: next})
	if err := m.ms.file.appendRecords(rec, false); err != nil {
		return 0, err
	}
	m.ms.recentNext = next
	return first, nil
}

// UnclaimedRecent returns the first UID nobody has claimed as \Recent yet
// (see ClaimRecent) as the log says now, and how many messages of the
// view have a UID ≥ first, without claiming them: STATUS RECENT (RFC 3501
// §6.3.10) and EXAMINE, which must not make messages lose \Recent
// (§6.3.2). Call Sync first to count the messages that arrived since the
// last one.
func (m *Mailbox) UnclaimedRecent() (first uint32, n int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.modseqBeginLocked(nil); err != nil {
		return 0, 0, err
	}
	defer func() { err = m.modseqUnlock(err) }()
	first = max(m.ms.recentNext, 1)
	i, _ := m.indexLocked(first)
	return first, len(m.msgs) - i, nil
}

// modseqUnlock drops the file's lock. After a failure the view and the
// log may disagree in ways this Mailbox no longer tracks (a tail read but
// not applied, a batch not written), so the next operation reads the
// whole file again and records whatever differs.
func (m *Mailbox) modseqUnlock(err error) error {
	if err != nil {
		m.ms.file.loaded = false
	}
	return joinErr(err, m.ms.file.unlock())
}

// joinErr keeps the first error and adds a later one (a failed unlock).
func joinErr(err, later error) error {
	if err == nil {
		return later
	}
	if later == nil {
		return err
	}
	return fmt.Errorf("%w (and %w)", err, later)
}

// modseqNextLocked is the modseq for the next batch of records.
func (m *Mailbox) modseqNextLocked() uint64 {
	return max(m.ms.highest+1, modseqNow())
}

// modseqSyncLocked gives the messages of a new view (msgs, from a full
// sync) their ModSeqs, appending what the log is missing. m.msgs is still
// the previous view, which the log's state was last reconciled with.
func (m *Mailbox) modseqSyncLocked(msgs []Message) (err error) {
	mf := &m.ms.file
	if err := mf.lock(); err != nil {
		return err
	}
	defer func() { err = m.modseqUnlock(err) }()
	if !mf.loaded {
		return m.modseqLoadLocked(msgs)
	}
	damaged, err := m.modseqReadTailLocked()
	if err != nil {
		return err
	}
	if damaged || mf.hdr.uidValidity != m.ul.u.UIDValidity {
		// Damage, or the uidlist was started over under us (another
		// UIDVALIDITY): the log starts over too.
		return m.modseqRestartLocked(msgs)
	}
	absent := m.modseqMergeLocked(msgs)
	if err := m.modseqSettleLocked(msgs, absent); err != nil {
		return err
	}
	return m.modseqMaybeCompactLocked(msgs)
}

// modseqMergeLocked gives each message of msgs the log's modseq if the
// log agrees with its file, else 0: the log's state is the tail records
// read since the last sync where there are any, else the previous view
// (which the log matched at the last sync). absent lists the UIDs the log
// has live that msgs lacks.
func (m *Mailbox) modseqMergeLocked(msgs []Message) (absent []uint32) {
	un := m.ms.unapplied
	m.ms.unapplied = nil
	old := m.msgs
	j := 0
	for i := range msgs {
		msg := &msgs[i]
		for j < len(old) && old[j].UID < msg.UID {
			if e, ok := un[old[j].UID]; !ok || e.kind == modseqChanged {
				absent = append(absent, old[j].UID)
			}
			j++
		}
		var e modseqEnt
		if j < len(old) && old[j].UID == msg.UID {
			o := &old[j]
			e = modseqEnt{modseq: o.ModSeq, flags: o.Name.Flags, kw: o.Name.Keywords, kind: modseqChanged}
			j++
		}
		if u, ok := un[msg.UID]; ok {
			e = u
		}
		msg.ModSeq = 0
		if e.kind == modseqChanged && (e.flags == msg.Name.Flags && e.kw == msg.Name.Keywords || e.fresh && m.modseqAdopt(msg, e)) {
			msg.ModSeq = e.modseq
		}
	}
	for ; j < len(old); j++ {
		if e, ok := un[old[j].UID]; !ok || e.kind == modseqChanged {
			absent = append(absent, old[j].UID)
		}
	}
	// A UID another process recorded that neither view has: it came and
	// went between two of our syncs.
	for uid, e := range un {
		if e.kind != modseqChanged {
			continue
		}
		_, inNew := modseqFind(msgs, uid)
		_, inOld := modseqFind(old, uid)
		if !inNew && !inOld {
			absent = append(absent, uid)
		}
	}
	slices.Sort(absent)
	return slices.Compact(absent)
}

// modseqFind is the index of uid in msgs (ascending UIDs).
func modseqFind(msgs []Message, uid uint32) (int, bool) {
	return slices.BinarySearchFunc(msgs, uid, func(msg Message, uid uint32) int {
		switch {
		case msg.UID < uid:
			return -1
		case msg.UID > uid:
			return 1
		}
		return 0
	})
}

// modseqSettleLocked appends one batch of records, at one new modseq, for
// the messages of msgs that disagree with the log (ModSeq 0, as left by
// modseqMergeLocked or modseqLoadLocked) and for the UIDs in absent. So no
// second per-message table is needed: a ModSeq holds the log's modseq once
// the log's last record for the message agrees with its file.
func (m *Mailbox) modseqSettleLocked(msgs []Message, absent []uint32) error {
	var need []int
	for i := range msgs {
		if msgs[i].ModSeq == 0 {
			need = append(need, i)
		}
	}
	if len(need) == 0 && len(absent) == 0 {
		return nil
	}
	ms := m.modseqNextLocked()
	buf := make([]byte, 0, (len(need)+len(absent))*modseqRecordSize)
	for _, i := range need {
		msgs[i].ModSeq = ms
		buf = appendModseqRecord(buf, modseqRecord{kind: modseqChanged, flags: msgs[i].Name.Flags, uid: msgs[i].UID, modseq: ms, kw: msgs[i].Name.Keywords})
	}
	for _, uid := range absent {
		buf = appendModseqRecord(buf, modseqRecord{kind: modseqExpunged, uid: uid, modseq: ms})
	}
	if err := m.ms.file.appendRecords(buf, true); err != nil {
		return err
	}
	m.ms.highest = ms
	return nil
}

// modseqAdopt handles a listing older than the log: another process
// renamed the file after our listing and recorded the new flags. If the
// file the log describes exists, the view takes it instead of recording
// the stale flags over the fresh ones.
func (m *Mailbox) modseqAdopt(msg *Message, e modseqEnt) bool {
	n := msg.Name
	n.HasInfo, n.Flags, n.Keywords = true, e.flags, e.kw
	if len(n.Other) > 0 && n.Other[0] == ':' {
		n.Other = ""
	}
	path := m.path + "/cur/" + n.String()
	if !syncExists(path) {
		return false
	}
	msg.Name, msg.Dir, msg.Path = n, "cur", path
	return true
}

// modseqReadTailLocked reads the records appended since the last read into
// m.ms.unapplied. A short fragment at the end is cut off; damaged reports
// a bad record, after which nothing in the file can be trusted.
func (m *Mailbox) modseqReadTailLocked() (damaged bool, err error) {
	mf := &m.ms.file
	if mf.size == mf.off {
		return false, nil
	}
	data, err := mf.readRange(mf.off, mf.size)
	if err != nil {
		return false, err
	}
	valid, damaged := modseqScan(data, m.modseqTakeRecord)
	if valid > 0 {
		// Its writer fdatasync'd it before unlocking, unless it died in
		// between: then this process must not act on records a crash
		// could still take back. On a clean file this costs nothing.
		if err := mf.datasync(); err != nil {
			return false, err
		}
		mf.noteTail(data[:valid])
	}
	mf.off += int64(valid)
	if damaged {
		return true, nil
	}
	if mf.off != mf.size {
		return false, mf.cutTo(mf.off)
	}
	return false, nil
}

// modseqTakeRecord notes one record read from the tail.
func (m *Mailbox) modseqTakeRecord(r modseqRecord) {
	if r.kind == modseqRecent {
		m.ms.recentNext = max(m.ms.recentNext, r.uid)
		return
	}
	m.ms.highest = max(m.ms.highest, r.modseq)
	if m.ms.unapplied == nil {
		m.ms.unapplied = map[uint32]modseqEnt{}
	}
	m.ms.unapplied[r.uid] = modseqEnt{modseq: r.modseq, kw: r.kw, flags: r.flags, kind: r.kind, fresh: true}
}

// setFlagsIfRound is what one locked pass of SetFlagsManyIf did.
type setFlagsIfRound struct {
	changed, modified, retry []uint32
	dirs                     touchedDirs
}

// setFlagsIfHook, when set (by tests), runs inside setFlagsIfLocked's
// critical section, after the check and before the renames, with the UIDs
// about to be renamed.
var setFlagsIfHook func(uids []uint32)

// setFlagsIfLocked is one pass of SetFlagsManyIf under the log's lock:
// check every UID of uids against the log, rename the files of those that
// pass and append their records at one new modseq, before the lock is
// dropped, so no other writer of the log can change a message between its
// check and its record. retry lists the UIDs to check again after a
// resync: the view's file name was stale.
func (m *Mailbox) setFlagsIfLocked(uids []uint32, unchangedSince uint64, change func(Flags, Keywords) (Flags, Keywords)) (r setFlagsIfRound, err error) {
	if _, err := m.modseqBeginLocked(nil); err != nil {
		return r, err
	}
	defer func() { err = m.modseqUnlock(err) }()
	type renameTo struct {
		i    int
		name Name
	}
	var todo []renameTo
	for _, uid := range uids {
		i, ok := m.indexLocked(uid)
		if !ok {
			continue // expunged
		}
		msg := &m.msgs[i]
		if e, seen := m.ms.unapplied[uid]; seen {
			// Another writer recorded a change the view does not
			// show (modseqBeginLocked took those that match it).
			switch {
			case e.kind == modseqExpunged:
			case e.modseq > unchangedSince:
				r.modified = append(r.modified, uid)
			default:
				r.retry = append(r.retry, uid)
			}
			continue
		}
		if msg.ModSeq > unchangedSince {
			r.modified = append(r.modified, uid)
			continue
		}
		f, k := change(msg.Name.Flags, msg.Name.Keywords)
		n := msg.Name
		if strings.HasPrefix(n.Other, ":") {
			n.Other = ""
		}
		n.HasInfo, n.Flags, n.Keywords = true, f, k
		if msg.Dir == "cur" && filepath.Base(msg.Path) == n.String() {
			continue
		}
		todo = append(todo, renameTo{i, n})
	}
	if setFlagsIfHook != nil {
		hooked := make([]uint32, len(todo))
		for j, t := range todo {
			hooked[j] = m.msgs[t.i].UID
		}
		setFlagsIfHook(hooked)
	}
	ms := m.modseqNextLocked()
	var buf []byte
	for _, t := range todo {
		msg := &m.msgs[t.i]
		dst := filepath.Join(m.path, "cur", t.name.String())
		if rerr := renameFile(msg.Path, dst); rerr != nil {
			if errors.Is(rerr, os.ErrNotExist) {
				// Renamed or removed since our last sync by a
				// process that does not write the log.
				r.retry = append(r.retry, msg.UID)
				continue
			}
			err = fmt.Errorf("maildir: set flags: %w", rerr)
			break
		}
		r.dirs.renamed(msg.Dir)
		msg.Name, msg.Dir, msg.Path, msg.ModSeq = t.name, "cur", dst, ms
		r.changed = append(r.changed, msg.UID)
		buf = appendModseqRecord(buf, modseqRecord{kind: modseqChanged, flags: t.name.Flags, uid: msg.UID, modseq: ms, kw: t.name.Keywords})
	}
	if len(r.retry) > 0 {
		m.quick.valid = false
	}
	// The records of the renames done are written even after a failure:
	// the files have their new flags.
	return r, joinErr(err, m.modseqCommitLocked(buf, ms))
}
