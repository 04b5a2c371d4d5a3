package imapd

import (
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
		return bad("CONDSTORE is not enabled")
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
	_, err = v.storeFlags(uids, func(f maildir.Flags, k maildir.Keywords) (maildir.Flags, maildir.Keywords) {
		keep := f &^ (maildir.FlagReplied | maildir.FlagFlagged | maildir.FlagTrashed | maildir.FlagSeen | maildir.FlagDraft)
		switch sc.Op {
		case wire.StoreAdd:
			return f | sys, k | kws
		case wire.StoreRemove:
			return f &^ sys, k &^ kws
		}
		// FLAGS replaces the IMAP-visible flags; P (passed) stays.
		return keep | sys, kws
	}, ss.sel)
	if err != nil {
		return err
	}
	// A new keyword: FLAGS before the FETCH responses that use it.
	ss.sendKeywordFlags()
	if sc.Silent {
		return nil
	}
	// RFC 9051 §6.4.6: the FETCH responses show the flags after the store
	// (for every message named, changed or not).
	v.mu.Lock()
	defer v.mu.Unlock()
	var names [8]string
	for _, r := range refs {
		i := v.index(r.uid)
		if i < 0 {
			continue
		}
		ss.w.Untagged()
		ss.w.Number(uint64(r.msn))
		ss.w.Raw(" FETCH (")
		if c.UID {
			ss.w.Raw("UID ")
			ss.w.Number(uint64(r.uid))
			ss.w.SP()
		}
		ss.w.Raw("FLAGS ")
		ss.w.Flags(ss.appendFlagNames(names[:0], v, &v.msgs[i]))
		ss.w.Raw(")")
		ss.w.CRLF()
	}
	return nil
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
	return ss.sel.view.expunge(ss.deletedUIDs(set))
}
