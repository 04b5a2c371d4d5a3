package imapd

import (
	"bytes"
	"errors"
	"io"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailroom/imapd/wire"
	"mailroom/internal/message"
	"mailroom/maildir"
)

// cmdSearch is SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH
// results (RFC 4731: RETURN MIN MAX COUNT ALL). IMAP4rev2 clients always
// get ESEARCH; IMAP4rev1 clients get "* SEARCH" unless they ask RETURN.
func (ss *session) cmdSearch(c *wire.Command) error {
	sc, err := wire.ParseSearch(c.Args)
	if err != nil {
		return err
	}
	hits, err := ss.runSearch(c, sc)
	if hasReturn(sc.Return, "SAVE") {
		// RFC 5182 §2.1: a failed SEARCH (RETURN (SAVE)) empties "$".
		ss.saveResult(c.UID, sc.Return, hits, err)
	}
	if err != nil {
		return err
	}
	modseq := hasModSeqKey(sc.Key)
	if !sc.HasReturn && !ss.rev2 {
		var b strings.Builder
		b.WriteString("SEARCH")
		for _, h := range hits {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatUint(uint64(h), 10))
		}
		// RFC 7162 §3.1.5: the highest MODSEQ of the messages found,
		// when there are any.
		if modseq && len(hits) > 0 {
			b.WriteString(" (MODSEQ " + strconv.FormatUint(ss.searchModSeq(c.UID, hits), 10) + ")")
		}
		ss.untagged(b.String())
		return nil
	}
	ret := withoutSave(sc.Return)
	if len(ret) == 0 && len(sc.Return) > 0 {
		// RFC 5182 §2.1: RETURN (SAVE) alone sends no ESEARCH.
		return nil
	}
	ss.writeESearch(c, ret, hits, modseq)
	return nil
}

// runSearch evaluates the program on every message of the session and
// returns the matching sequence numbers (UIDs for UID SEARCH), ascending.
func (ss *session) runSearch(c *wire.Command, sc wire.SearchCommand) ([]uint32, error) {
	switch strings.ToUpper(sc.Charset) {
	case "", "US-ASCII", "UTF-8":
	default:
		return nil, no("BADCHARSET (US-ASCII UTF-8)", "unsupported charset")
	}
	for _, r := range sc.Return {
		switch r {
		case "MIN", "MAX", "COUNT", "ALL", "SAVE":
		default:
			return nil, bad("unsupported RETURN option %s", r)
		}
	}
	if err := checkSearchKey(sc.Key); err != nil {
		return nil, err
	}
	if hasModSeqKey(sc.Key) {
		ss.enableCondStore() // RFC 7162 §3.1
	}
	defer ss.sel.view.structs().flush()
	text := ss.prepareTextSearch(sc.Key)
	defer text.close()
	saved := ss.savedSet()
	var hits []uint32 // msn or uid
	for i, uid := range ss.sel.uids {
		ref := msgRef{msn: i + 1, uid: uid}
		sm := &searchMsg{ss: ss, ref: ref, text: text, saved: saved}
		ok, err := sm.match(sc.Key)
		sm.close()
		if errors.Is(err, errExpunged) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ok {
			if c.UID {
				hits = append(hits, ref.uid)
			} else {
				hits = append(hits, uint32(ref.msn))
			}
		}
	}
	return hits, nil
}

// writeESearch writes the ESEARCH response (RFC 4731 §3.1). An empty
// RETURN list means ALL.
//
// With a MODSEQ key it adds "MODSEQ n" (RFC 7162 §3.1.5, RFC 4731 §3.2):
// the highest MODSEQ of the messages MIN and MAX name when only they were
// asked for, else of all the messages found.
func (ss *session) writeESearch(c *wire.Command, ret []string, hits []uint32, modseq bool) {
	if len(ret) == 0 {
		ret = []string{"ALL"}
	}
	var b strings.Builder
	b.WriteString("ESEARCH (TAG ")
	b.WriteString(strconv.Quote(c.Tag))
	b.WriteString(")")
	if c.UID {
		b.WriteString(" UID")
	}
	for _, r := range ret {
		switch {
		case r == "MIN" && len(hits) > 0:
			b.WriteString(" MIN " + strconv.FormatUint(uint64(hits[0]), 10))
		case r == "MAX" && len(hits) > 0:
			b.WriteString(" MAX " + strconv.FormatUint(uint64(hits[len(hits)-1]), 10))
		case r == "COUNT":
			b.WriteString(" COUNT " + strconv.Itoa(len(hits)))
		case r == "ALL" && len(hits) > 0:
			b.WriteString(" ALL " + uidList(hits))
		}
	}
	if modseq && len(hits) > 0 {
		of := hits
		if !slices.Contains(ret, "ALL") && !slices.Contains(ret, "COUNT") {
			of = nil
			if slices.Contains(ret, "MIN") {
				of = append(of, hits[0])
			}
			if slices.Contains(ret, "MAX") {
				of = append(of, hits[len(hits)-1])
			}
		}
		b.WriteString(" MODSEQ " + strconv.FormatUint(ss.searchModSeq(c.UID, of), 10))
	}
	ss.untagged(b.String())
}

// checkSearchKey refuses keys this server does not implement before any
// work is done.
func checkSearchKey(k wire.SearchKey) error {
	switch k.Op {
	case "OLDER", "YOUNGER", "SAVEDBEFORE", "SAVEDON", "SAVEDSINCE", "SAVEDATESUPPORTED":
		return bad("search key %s is not supported", k.Op)
	}
	for _, sub := range k.Keys {
		if err := checkSearchKey(sub); err != nil {
			return err
		}
	}
	return nil
}

// searchMsg evaluates a search program on one message, loading only
// what the keys need.
type searchMsg struct {
	ss    *session
	ref   msgRef
	vm    *vmsg
	fm    *fetchedMsg
	text  *textSearch         // BODY and TEXT (search_text.go)
	saved map[uint32]struct{} // the UIDs of "$" (RFC 5182)
}

func (sm *searchMsg) close() {
	if sm.fm != nil {
		sm.fm.close()
	}
}

func (sm *searchMsg) msg() (*vmsg, error) {
	if sm.vm == nil {
		m, ok := sm.ss.sel.view.lookup(sm.ref.uid)
		if !ok {
			return nil, errExpunged
		}
		sm.vm = &m
	}
	return sm.vm, nil
}

func (sm *searchMsg) fetched() (*fetchedMsg, error) {
	if sm.fm == nil {
		info, ok := sm.ss.sel.view.mbox.Lookup(sm.ref.uid)
		if !ok {
			return nil, errExpunged
		}
		sm.fm = &fetchedMsg{ss: sm.ss, uid: sm.ref.uid, info: info}
	}
	if _, err := sm.fm.structure(); err != nil {
		return nil, err
	}
	return sm.fm, nil
}

var flagKeys = map[string]maildir.Flags{
	"ANSWERED": maildir.FlagReplied, "DELETED": maildir.FlagTrashed, "DRAFT": maildir.FlagDraft,
	"FLAGGED": maildir.FlagFlagged, "SEEN": maildir.FlagSeen,
}

func (sm *searchMsg) match(k wire.SearchKey) (bool, error) {
	sel := sm.ss.sel
	switch k.Op {
	case "AND":
		for _, sub := range k.Keys {
			if ok, err := sm.match(sub); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case "OR":
		if ok, err := sm.match(k.Keys[0]); err != nil || ok {
			return ok, err
		}
		return sm.match(k.Keys[1])
	case "NOT":
		ok, err := sm.match(k.Keys[0])
		return !ok, err
	case "ALL":
		return true, nil
	case "SEQSET":
		if k.Seq.Saved {
			_, ok := sm.saved[sm.ref.uid]
			return ok, nil
		}
		return k.Seq.Contains(uint32(sm.ref.msn), uint32(len(sel.uids))), nil
	case "UID":
		if k.Seq.Saved {
			_, ok := sm.saved[sm.ref.uid]
			return ok, nil
		}
		var max uint32
		if n := len(sel.uids); n > 0 {
			max = sel.uids[n-1]
		}
		return k.Seq.Contains(sm.ref.uid, max), nil
	case "MODSEQ":
		// RFC 7162 §3.1.5: MODSEQ at or above the value. One MODSEQ per
		// message serves every entry name and type.
		m, err := sm.msg()
		return err == nil && m.modseq >= k.Num, err
	case "RECENT", "NEW", "OLD":
		recent := sel.recent[sm.ref.uid]
		if k.Op == "OLD" {
			return !recent, nil
		}
		if k.Op == "RECENT" || !recent {
			return recent, nil
		}
		return sm.match(wire.SearchKey{Op: "UNSEEN"})
	}
	if strings.HasPrefix(k.Op, "UN") {
		if bit, ok := flagKeys[k.Op[2:]]; ok {
			m, err := sm.msg()
			return err == nil && m.flags&bit == 0, err
		}
	}
	if bit, ok := flagKeys[k.Op]; ok {
		m, err := sm.msg()
		return err == nil && m.flags&bit != 0, err
	}
	return sm.matchData(k)
}

// matchData evaluates the keys that need more than flags.
func (sm *searchMsg) matchData(k wire.SearchKey) (bool, error) {
	switch k.Op {
	case "KEYWORD", "UNKEYWORD":
		m, err := sm.msg()
		if err != nil {
			return false, err
		}
		v := sm.ss.sel.view
		v.mu.Lock()
		slot := v.mbox.KeywordList().Slot(k.Value)
		v.mu.Unlock()
		has := slot >= 0 && m.kw.Has(slot)
		return has == (k.Op == "KEYWORD"), nil
	case "LARGER", "SMALLER":
		m, err := sm.msg()
		if err != nil {
			return false, err
		}
		size := m.size
		if size < 0 {
			fm, err := sm.fetched()
			if err != nil {
				return false, err
			}
			size = fm.st.CRLFSize
		}
		if k.Op == "LARGER" {
			return uint64(size) > k.Num, nil
		}
		return uint64(size) < k.Num, nil
	case "BEFORE", "ON", "SINCE":
		fm, err := sm.fetched()
		if err != nil {
			return false, err
		}
		t, err := fm.internalDate()
		if err != nil {
			return false, err
		}
		return compareDay(t, k.Date, k.Op), nil
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		fm, err := sm.fetched()
		if err != nil {
			return false, err
		}
		d := fm.st.Envelope().Date
		t, perr := mail.ParseDate(d.S)
		if !d.Valid || perr != nil {
			return false, nil
		}
		return compareDay(t, k.Date, strings.TrimPrefix(k.Op, "SENT")), nil
	case "SUBJECT", "FROM", "TO", "CC", "BCC":
		return sm.envelopeContains(k.Op, k.Value)
	case "HEADER":
		return sm.headerContains(k.Field, k.Value)
	case "BODY", "TEXT":
		return sm.textContains(k.Op, k.Value)
	}
	return false, bad("search key %s is not supported", k.Op)
}

// compareDay compares the dates of t (in its own zone, RFC 9051 §6.4.4
// "disregarding time and timezone") and day.
func compareDay(t, day time.Time, op string) bool {
	y, m, d := t.Date()
	td := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	switch op {
	case "BEFORE":
		return td.Before(day)
	case "ON":
		return td.Equal(day)
	}
	return !td.Before(day)
}

// envelopeContains answers SUBJECT, FROM, TO, CC and BCC from the
// message's cached structure (mailroom-cache), so a search over a big
// mailbox never opens the message files: the subject as the header has it
// (unfolded, encoded words undecoded, as a scan of the file would see it),
// each address as "name <mailbox@host>" and a group by its name (comments
// and quoting are not kept, so text that only appears there does not
// match).
// Case-insensitive in ASCII, as headerContains.
func (sm *searchMsg) envelopeContains(op, value string) (bool, error) {
	fm, err := sm.fetched()
	if err != nil {
		return false, err
	}
	env := fm.st.Envelope()
	needle := strings.ToLower(value)
	var list []message.Address
	switch op {
	case "SUBJECT":
		return env.Subject.Valid && strings.Contains(strings.ToLower(env.Subject.S), needle), nil
	case "FROM":
		list = env.From
	case "TO":
		list = env.To
	case "CC":
		list = env.Cc
	case "BCC":
		list = env.Bcc
	}
	for _, a := range list {
		var text string
		switch a.Kind {
		case message.AddrMailbox:
			text = a.Name + " <" + a.Mailbox + "@" + a.Host + ">"
		case message.AddrGroupStart:
			text = a.Mailbox // the group's name
		}
		if strings.Contains(strings.ToLower(text), needle) {
			return true, nil
		}
	}
	return false, nil
}

// headerContains reports whether a field of the message's header holds
// value (case-insensitive substring; an empty value matches any message
// with the field).
func (sm *searchMsg) headerContains(field, value string) (bool, error) {
	fm, err := sm.fetched()
	if err != nil {
		return false, err
	}
	f, err := fm.open()
	if err != nil {
		return false, err
	}
	r, _, err := fm.st.Open(f, message.Section{Specifier: "HEADER.FIELDS", Fields: []string{field}}, nil)
	if err != nil {
		return false, err
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return false, err
	}
	needle := []byte(strings.ToLower(value))
	for _, line := range bytes.Split(unfold(data), []byte("\r\n")) {
		_, val, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.Contains(lowerASCII(val), needle) {
			return true, nil
		}
	}
	return false, nil
}

// unfold joins folded header lines (RFC 5322 §2.2.3).
func unfold(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n "), []byte(" "))
	return bytes.ReplaceAll(b, []byte("\r\n\t"), []byte(" "))
}

// lowerASCII folds ASCII letters in place (the buffer is the search's
// own) and returns b.
func lowerASCII(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}
