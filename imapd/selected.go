package imapd

import (
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// selected is a session's own side of a selected mailbox: its message
// sequence numbers (uids[msn-1]), the updates it has not told the client
// yet, and the \Recent messages it claimed.
type selected struct {
	view     *view
	name     string // as the client named it
	readOnly bool
	uids     []uint32
	pending  []event // under view.mu
	recent   map[uint32]bool
	kwGen    uint64 // keyword generation the client was told of
	wake     chan struct{}
	// saved is SEARCHRES's "$" (searchres.go): UIDs, ascending, empty
	// until a SEARCH ... SAVE in this selected state.
	saved []uint32
}

// cmdSelect is SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3; RFC 3501
// §6.3.1 for IMAP4rev1 clients).
func (ss *session) cmdSelect(c *wire.Command) error {
	sc, err := wire.ParseSelect(c.Args)
	if err != nil {
		return err
	}
	if sc.QResync != nil && !ss.qresync() {
		// RFC 7162 §3.2.5: QRESYNC only after ENABLE QRESYNC.
		return bad("QRESYNC is not enabled")
	}
	// RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected, so
	// the old one goes first.
	if ss.sel != nil {
		ss.unselect()
		// RFC 9051 §7.1 and RFC 7162 §3.2.11: CLOSED marks where the old
		// mailbox's responses end.
		if ss.rev2 || ss.qresync() {
			ss.untagged("OK [CLOSED] previous mailbox closed")
		}
	}
	if sc.CondStore {
		ss.enableCondStore() // RFC 7162 §3.1.8
	}
	folder, err := ss.folderName(sc.Mailbox)
	if err != nil {
		return err
	}
	path, err := ss.folderPath(folder)
	if err != nil {
		return err
	}
	v, err := ss.srv.views.open(path, ss.log)
	if errors.Is(err, maildir.ErrNotMaildir) || errors.Is(err, os.ErrNotExist) {
		return no("NONEXISTENT", "no such mailbox")
	}
	if err != nil {
		return err
	}
	sel := &selected{view: v, name: ss.mailboxName(folder), readOnly: c.Name == "EXAMINE", recent: map[uint32]bool{}, wake: make(chan struct{}, 1)}
	v.mu.Lock()
	if err := v.syncedLocked(); err != nil {
		v.mu.Unlock()
		ss.srv.views.release(v)
		return err
	}
	// \Recent: a read-write SELECT claims it through the engine, for
	// this process and every other; EXAMINE claims nothing and shows
	// what nobody has claimed.
	firstRecent := v.recentMarkLocked(sel.readOnly)
	for i := range v.msgs {
		m := &v.msgs[i]
		sel.uids = append(sel.uids, m.uid)
		if m.uid >= firstRecent {
			sel.recent[m.uid] = true
		}
	}
	v.subs[sel] = true
	kw, gen := v.mbox.KeywordNames(), v.kwGen
	sel.kwGen = gen
	uidValidity, uidNext := v.mbox.UIDValidity(), v.mbox.UIDNext()
	highestModSeq := v.highestModSeqLocked()
	v.mu.Unlock()
	ss.sel, ss.state = sel, stateSelected

	ss.writeFlags(kw)
	ss.untagged(strconv.Itoa(len(sel.uids)) + " EXISTS")
	if !ss.rev2 {
		// RFC 3501 §7.3.2; IMAP4rev2 dropped \Recent (RFC 9051 §7.4.3).
		ss.untagged(strconv.Itoa(len(sel.recent)) + " RECENT")
		if unseen := ss.firstUnseen(); unseen > 0 {
			ss.untagged("OK [UNSEEN " + strconv.Itoa(unseen) + "] first unseen")
		}
	}
	ss.untagged("OK [UIDVALIDITY " + strconv.FormatUint(uint64(uidValidity), 10) + "] UIDs valid")
	ss.untagged("OK [UIDNEXT " + strconv.FormatUint(uint64(uidNext), 10) + "] predicted next UID")
	// RFC 7162 §3.1.2.1: MODSEQs are kept, so every SELECT tells the
	// highest (and NOMODSEQ is never sent).
	ss.untagged("OK [HIGHESTMODSEQ " + strconv.FormatUint(highestModSeq, 10) + "] highest")
	if ss.rev2 {
		// RFC 9051 §6.3.2: the LIST response with the canonical name.
		ss.w.Untagged()
		ss.w.Raw(`LIST () "." `)
		ss.w.AString(sel.name)
		ss.w.CRLF()
	}
	if sc.QResync != nil {
		ss.selectQResync(sc.QResync)
	}
	ss.log.Info("select", "mailbox", folder, "messages", len(sel.uids), "read_only", sel.readOnly)
	ss.startTextIndexer(v, len(sel.uids))
	if sel.readOnly {
		return okCode("READ-ONLY", c.Name+" completed")
	}
	return okCode("READ-WRITE", c.Name+" completed")
}

// writeFlags sends FLAGS and PERMANENTFLAGS: keywords appear before use
// (mbsync and others read them here); \* only while a slot is free.
func (ss *session) writeFlags(kw []string) {
	flags := []string{wire.FlagAnswered, wire.FlagFlagged, wire.FlagDeleted, wire.FlagSeen, wire.FlagDraft}
	used := 0
	for _, k := range kw {
		if k != "" {
			flags = append(flags, k)
			used++
		}
	}
	ss.w.Untagged()
	ss.w.Raw("FLAGS ")
	ss.w.Flags(flags)
	ss.w.CRLF()
	if ss.sel.readOnly {
		ss.untagged("OK [PERMANENTFLAGS ()] read-only mailbox")
		return
	}
	if used < maildir.MaxKeywords {
		flags = append(flags, `\*`)
	}
	ss.w.Untagged()
	ss.w.Raw("OK [PERMANENTFLAGS ")
	ss.w.Flags(flags)
	ss.w.Raw("] flags permitted")
	ss.w.CRLF()
}

func (ss *session) firstUnseen() int {
	v := ss.sel.view
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, uid := range ss.sel.uids {
		if j := v.index(uid); j >= 0 && v.msgs[j].flags&maildir.FlagSeen == 0 {
			return i + 1
		}
	}
	return 0
}

// unselect leaves the selected mailbox without expunging.
func (ss *session) unselect() {
	sel := ss.sel
	if sel == nil {
		return
	}
	sel.view.mu.Lock()
	delete(sel.view.subs, sel)
	sel.view.mu.Unlock()
	ss.srv.views.release(sel.view)
	ss.sel = nil
	if ss.state == stateSelected {
		ss.state = stateAuth
	}
}

// cmdClose is CLOSE (expunges \Deleted silently, RFC 9051 §6.4.1) and
// UNSELECT (RFC 3691).
func (ss *session) cmdClose(c *wire.Command) error {
	if err := noArgs(c); err != nil {
		return err
	}
	sel := ss.sel
	if c.Name == "CLOSE" && !sel.readOnly {
		if err := sel.view.expunge(ss.deletedUIDs(nil)); err != nil {
			return err
		}
	}
	ss.unselect()
	return nil
}

// deletedUIDs returns the UIDs of the session's messages flagged
// \Deleted, limited to set when it is not nil.
func (ss *session) deletedUIDs(set *wire.SeqSet) []uint32 {
	v := ss.sel.view
	v.mu.Lock()
	defer v.mu.Unlock()
	var max uint32
	if n := len(v.msgs); n > 0 {
		max = v.msgs[n-1].uid
	}
	var out []uint32
	for _, uid := range ss.sel.uids {
		i := v.index(uid)
		if i < 0 || v.msgs[i].flags&maildir.FlagTrashed == 0 {
			continue
		}
		if set != nil && !set.Contains(uid, max) {
			continue
		}
		out = append(out, uid)
	}
	return out
}

// sendUpdates tells the client what changed in the selected mailbox
// since the last time: FLAGS for new keywords, FETCH FLAGS, EXPUNGE (only
// when allowed; otherwise they wait, and the message keeps its sequence
// number) and EXISTS (with RECENT for IMAP4rev1).
func (ss *session) sendUpdates(expungeOK bool) {
	sel := ss.sel
	if sel == nil {
		return
	}
	v := sel.view
	v.mu.Lock()
	defer v.mu.Unlock()
	if sel.kwGen != v.kwGen {
		sel.kwGen = v.kwGen
		ss.writeFlags(v.mbox.KeywordNames())
	}
	if len(sel.pending) == 0 {
		return
	}
	events := sel.pending
	sel.pending = nil
	exts := ss.ext
	// RFC 7162 §3.2.10: after ENABLE QRESYNC expunges are told as
	// VANISHED, one response for a run of them, sent before any response
	// that uses the sequence numbers they change.
	var vanished []uint32
	var fresh map[uint32]bool // UIDs new in this batch
	flushVanished := func() {
		if len(vanished) > 0 {
			sort.Slice(vanished, func(i, j int) bool { return vanished[i] < vanished[j] })
			ss.writeVanished(false, rangesOf(vanished))
			vanished = vanished[:0]
		}
	}
	grew := false
	for _, ev := range events {
		switch ev.kind {
		case evExpunge:
			if !expungeOK {
				sel.pending = append(sel.pending, ev)
				continue
			}
			if msn := sel.msn(ev.uid); msn > 0 {
				sel.uids = append(sel.uids[:msn-1], sel.uids[msn:]...)
				delete(sel.recent, ev.uid)
				if fresh[ev.uid] {
					// Came and went in this batch: the client never
					// heard of it (its EXISTS comes below).
					continue
				}
				if exts.qresync {
					vanished = append(vanished, ev.uid)
				} else {
					ss.untagged(strconv.Itoa(msn) + " EXPUNGE")
				}
			}
		case evNew:
			if sel.msn(ev.uid) > 0 {
				continue
			}
			i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] > ev.uid })
			sel.uids = append(sel.uids, 0)
			copy(sel.uids[i+1:], sel.uids[i:])
			sel.uids[i] = ev.uid
			if fresh == nil {
				fresh = map[uint32]bool{}
			}
			fresh[ev.uid] = true
			grew = true
		case evFlags:
			flushVanished()
			msn := sel.msn(ev.uid)
			j := v.index(ev.uid)
			if msn == 0 || j < 0 {
				continue
			}
			// RFC 7162 §3.1: MODSEQ in every FETCH once CONDSTORE is on.
			ss.writeFlagsFetchLocked(msn, &v.msgs[j], exts.condstore)
		}
	}
	flushVanished()
	if exts.condstore {
		ss.capHighestModSeqLocked()
	}
	if grew {
		// The new messages are this session's \Recent ones unless
		// another session or process claimed them first.
		first := v.recentMarkLocked(sel.readOnly)
		for uid := range fresh {
			if uid >= first && sel.msn(uid) > 0 {
				sel.recent[uid] = true
			}
		}
	}
	if grew {
		ss.untagged(strconv.Itoa(len(sel.uids)) + " EXISTS")
		if !ss.rev2 {
			ss.untagged(strconv.Itoa(len(sel.recent)) + " RECENT")
		}
	}
}

// msn returns the sequence number of uid in the session, or 0.
func (sel *selected) msn(uid uint32) int {
	i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= uid })
	if i < len(sel.uids) && sel.uids[i] == uid {
		return i + 1
	}
	return 0
}

// systemFlagNames are the system flags in the order FETCH FLAGS lists
// them, in canonical case.
var systemFlagNames = [...]struct {
	bit  maildir.Flags
	name string
}{
	{maildir.FlagReplied, wire.FlagAnswered}, {maildir.FlagFlagged, wire.FlagFlagged},
	{maildir.FlagTrashed, wire.FlagDeleted}, {maildir.FlagSeen, wire.FlagSeen},
	{maildir.FlagDraft, wire.FlagDraft},
}

// flagNames lists a message's flags, system flags in canonical case;
// call with v.mu held.
func (ss *session) flagNames(v *view, m *vmsg) []string {
	return ss.appendFlagNames(nil, v, m)
}

// appendFlagNames is flagNames appending to out, so that FETCH of a whole
// mailbox can list flags without an allocation per message.
func (ss *session) appendFlagNames(out []string, v *view, m *vmsg) []string {
	for _, f := range systemFlagNames {
		if m.flags&f.bit != 0 {
			out = append(out, f.name)
		}
	}
	if m.kw != 0 {
		out = append(out, v.mbox.KeywordList().Names(m.kw)...)
	}
	if ss.sel != nil && ss.sel.recent[m.uid] && !ss.rev2 {
		out = append(out, wire.FlagRecent)
	}
	return out
}

// resolve turns a sequence set (or a UID set when uid is set) into the
// session's messages as (msn, uid) pairs in ascending order. Numbers the
// session does not have are ignored, as RFC 9051 §6.4.8 asks for UIDs;
// for sequence numbers a number beyond EXISTS is a BAD.
func (ss *session) resolve(set wire.SeqSet, uid bool) ([]msgRef, error) {
	sel := ss.sel
	if set.Saved {
		return nil, bad("$ is not supported")
	}
	n := len(sel.uids)
	if !uid {
		for _, r := range set.Ranges {
			lo, hi := r.Bounds(uint32(n))
			if n == 0 || hi > uint32(n) || lo == 0 {
				return nil, bad("invalid message sequence number")
			}
		}
	}
	// Each range is found by binary search in the session's UIDs, not by
	// testing every message against every range: a UID STORE of 1,000
	// scattered UIDs on 100,000 messages would be 10^8 comparisons.
	var max uint32
	if uid && n > 0 {
		max = sel.uids[n-1]
	} else if !uid {
		max = uint32(n)
	}
	span := func(r wire.SeqRange) (int, int) {
		lo, hi := r.Bounds(max)
		if !uid {
			return int(lo) - 1, int(hi)
		}
		i := sort.Search(n, func(k int) bool { return sel.uids[k] >= lo })
		j := i + sort.Search(n-i, func(k int) bool { return sel.uids[i+k] > hi })
		return i, j
	}
	if len(set.Ranges) == 1 {
		i, j := span(set.Ranges[0])
		out := make([]msgRef, 0, j-i)
		for k := i; k < j; k++ {
			out = append(out, msgRef{msn: k + 1, uid: sel.uids[k]})
		}
		return out, nil
	}
	// Ranges may overlap and come in any order: mark, then list in order.
	in := make([]bool, n)
	count := 0
	for _, r := range set.Ranges {
		i, j := span(r)
		for k := i; k < j; k++ {
			if !in[k] {
				in[k] = true
				count++
			}
		}
	}
	out := make([]msgRef, 0, count)
	for k, ok := range in {
		if ok {
			out = append(out, msgRef{msn: k + 1, uid: sel.uids[k]})
		}
	}
	return out, nil
}

// msgRef names one message of a command.
type msgRef struct {
	msn int
	uid uint32
}

// uidList formats UIDs as a compact uid-set ("1:3,7").
func uidList(uids []uint32) string {
	var b strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(uids[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(uids[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}
