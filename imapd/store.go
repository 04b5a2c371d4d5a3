package imapd

import (
	"slices"
	"strings"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// systemFlags maps IMAP system flags to Maildir flag letters.
var systemFlags = map[string]maildir.Flags{
	wire.FlagAnswered: maildir.FlagReplied,
	wire.FlagFlagged:  maildir.FlagFlagged,
	wire.FlagDeleted:  maildir.FlagTrashed,
	wire.FlagSeen:     maildir.FlagSeen,
	wire.FlagDraft:    maildir.FlagDraft,
}

// splitFlags separates system flags from keywords. \Recent cannot be
// stored (RFC 9051 §2.3.2); other backslash flags are unknown.
func splitFlags(flags []string) (maildir.Flags, []string, error) {
	var f maildir.Flags
	var kws []string
	for _, name := range flags {
		name = wire.CanonicalFlag(name)
		if bit, ok := systemFlags[name]; ok {
			f |= bit
			continue
		}
		if strings.HasPrefix(name, `\`) {
			if name == wire.FlagRecent {
				return 0, nil, bad(`\Recent cannot be stored`)
			}
			return 0, nil, bad("unknown system flag %s", name)
		}
		if !maildir.ValidKeyword(name) {
			return 0, nil, bad("invalid keyword")
		}
		kws = append(kws, name)
	}
	return f, kws, nil
}

// cmdStore is STORE and UID STORE (RFC 9051 §6.4.6). Keywords get a slot
// in dovecot-keywords on first use; the new FLAGS go to other sessions
// as updates.
func (ss *session) cmdStore(c *wire.Command) error {
	sc, err := wire.ParseStore(c.Args)
	if err != nil {
		return err
	}
	if sc.HasUnchangedSince {
		ss.enableCondStore() // RFC 7162 §3.1
	}
	if ss.sel.readOnly {
		return no("READ-ONLY", "mailbox is read-only")
	}
	sys, kwNames, err := splitFlags(sc.Flags)
	if err != nil {
		return err
	}
	refs, err := ss.resolve(sc.Seq, c.UID)
	if err != nil {
		return err
	}
	v := ss.sel.view
	// Removing a keyword that has no slot is a no-op; adding one creates it.
	kws, err := v.keywordSlots(kwNames, sc.Op != wire.StoreRemove)
	if err == maildir.ErrTooManyKeywords {
		return no("LIMIT", "too many keywords")
	}
	if err != nil {
		return err
	}
	uids := make([]uint32, len(refs))
	for i, r := range refs {
		uids[i] = r.uid
	}
	unchangedSince := uint64(noUnchangedSince)
	if sc.HasUnchangedSince {
		unchangedSince = sc.UnchangedSince
	}
	changed, modified, err := v.storeFlagsIf(uids, func(f maildir.Flags, k maildir.Keywords) (maildir.Flags, maildir.Keywords) {
		keep := f &^ (maildir.FlagReplied | maildir.FlagFlagged | maildir.FlagTrashed | maildir.FlagSeen | maildir.FlagDraft)
		switch sc.Op {
		case wire.StoreAdd:
			return f | sys, k | kws
		case wire.StoreRemove:
			return f &^ sys, k &^ kws
		}
		// FLAGS replaces the IMAP-visible flags; P (passed) stays.
		return keep | sys, kws
	}, ss.sel, unchangedSince)
	if err != nil {
		return err
	}
	// A new keyword: FLAGS before the FETCH responses that use it.
	ss.sendKeywordFlags()
	ss.writeStoreFetches(c.UID, sc.Silent, refs, changed, modified)
	if len(modified) == 0 {
		return nil
	}
	// RFC 7162 §3.1.3: the messages that failed the UNCHANGEDSINCE test,
	// as sequence numbers for STORE and UIDs for UID STORE.
	if !c.UID {
		failed := make(map[uint32]bool, len(modified))
		for _, u := range modified {
			failed[u] = true
		}
		modified = modified[:0]
		for _, r := range refs {
			if failed[r.uid] {
				modified = append(modified, uint32(r.msn))
			}
		}
	}
	return okCode("MODIFIED "+uidList(modified), "conditional STORE failed")
}

// writeStoreFetches writes STORE's FETCH responses. RFC 9051 §6.4.6:
// STORE "normally" returns the updated value. Without CONDSTORE, as
// Dovecot answers, only the messages whose flags this STORE changed
// (changed) get one: a message that already had the flags asked for has
// no updated value, and a STORE 1:* is spared the FETCH lines of every
// message it did not touch (70,000 of 100,000 in the benchmark). Once
// the session is CONDSTORE-aware, every message the store succeeded on
// gets one, with UID and MODSEQ, even with .SILENT ("FETCH (UID n MODSEQ
// (m))"), so the client's cache of MODSEQs stays right (RFC 7162
// §3.1.3); a message whose flags were already as asked keeps its MODSEQ
// (§3.1.1: only a change moves it), and one that failed the
// UNCHANGEDSINCE test gets none (its number is in MODIFIED).
func (ss *session) writeStoreFetches(uid, silent bool, refs []msgRef, changed, modified []uint32) {
	condstore := ss.condstore()
	if silent && !condstore {
		return
	}
	want := func(u uint32) bool {
		_, ok := slices.BinarySearch(changed, u)
		return ok
	}
	if condstore {
		want = func(u uint32) bool {
			_, failed := slices.BinarySearch(modified, u)
			return !failed
		}
	}
	// modified comes sorted from the engine; changed follows the set's
	// order on the unconditional path.
	slices.Sort(changed)
	v := ss.sel.view
	v.mu.Lock()
	defer v.mu.Unlock()
	var names [8]string
	for _, r := range refs {
		i := v.index(r.uid)
		if i < 0 || !want(r.uid) {
			continue
		}
		ss.w.Untagged()
		ss.w.Number(uint64(r.msn))
		ss.w.Raw(" FETCH (")
		// RFC 7162 §3.1 (RFC 5162 erratum 1807): once CONDSTORE is on,
		// STORE's FETCH responses carry the UID as well as MODSEQ.
		if uid || condstore {
			ss.w.Raw("UID ")
			ss.w.Number(uint64(r.uid))
			ss.w.SP()
		}
		if !silent {
			ss.w.Raw("FLAGS ")
			ss.w.Flags(ss.appendFlagNames(names[:0], v, &v.msgs[i]))
			if condstore {
				ss.w.SP()
			}
		}
		if condstore {
			ss.writeModSeq(&v.msgs[i])
		}
		ss.w.Raw(")")
		ss.w.CRLF()
	}
}

// sendKeywordFlags sends FLAGS when the keyword table grew.
func (ss *session) sendKeywordFlags() {
	v := ss.sel.view
	v.mu.Lock()
	defer v.mu.Unlock()
	if ss.sel.kwGen != v.kwGen {
		ss.sel.kwGen = v.kwGen
		ss.writeFlags(v.mbox.KeywordNames())
	}
}

// cmdExpunge is EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1).
// The EXPUNGE responses come from the view's events, sent by dispatch
// before the tagged OK, so they are in the order that keeps sequence
// numbers right.
func (ss *session) cmdExpunge(c *wire.Command) error {
	var set *wire.SeqSet
	if c.UID {
		s, err := wire.ParseUIDSet(c.Args)
		if err != nil {
			return err
		}
		set = &s
	} else if err := noArgs(c); err != nil {
		return err
	}
	if ss.sel.readOnly {
		return no("READ-ONLY", "mailbox is read-only")
	}
	if err := ss.sel.view.expunge(ss.deletedUIDs(set)); err != nil {
		return err
	}
	return ss.expungedOK(c.Name)
}
