package imapd

import (
	"errors"
	"slices"

	"mailroom/imapd/wire"
)

// SEARCHRES (RFC 5182, RFC 9051 §6.4.4.1): SEARCH RETURN (SAVE) keeps its
// result as "$" for the session's later commands. The result is kept as
// UIDs, so an expunged message drops out of it by itself (RFC 5182 §2.1:
// "$" then no longer includes it) and a new one never enters it. It lives
// in the selected state (selected.saved), so a SELECT or EXAMINE resets
// it to the empty sequence (§2.1) simply by making a new one.
//
// "$" before any SEARCH ... SAVE in this selected state is that empty
// sequence, which every command takes as a valid set matching nothing
// (RFC 9051 §6.4.4.1: "FETCH $" answers OK with no FETCH responses). It is
// not an error: NOTSAVED (RFC 9051 §6.4.4.3, RFC 5182 §2.5) is only for
// a SEARCH ... SAVE whose result the server refuses to keep, which this
// server never does.

// savedUIDs returns the UIDs of "$" that the session still has.
func (ss *session) savedUIDs() []uint32 {
	var out []uint32
	for _, u := range ss.sel.saved {
		if ss.sel.msn(u) > 0 {
			out = append(out, u)
		}
	}
	return out
}

// savedSet returns "$" as a set for SEARCH.
func (ss *session) savedSet() map[uint32]struct{} {
	set := map[uint32]struct{}{}
	for _, u := range ss.savedUIDs() {
		set[u] = struct{}{}
	}
	return set
}

// saveResult keeps a SEARCH's result as "$": hits are sequence numbers
// unless uid. RFC 5182 §2.4: with MIN or MAX but neither ALL nor COUNT,
// only those messages are kept. RFC 5182 §2.1: a search answered NO keeps
// nothing (an empty "$"); one answered BAD leaves "$" as it was.
func (ss *session) saveResult(uid bool, ret []string, hits []uint32, err error) {
	var se *statusError
	if errors.As(err, &se) && se.status == "BAD" {
		return
	}
	if err != nil {
		ss.sel.saved = nil
		return
	}
	if !hasReturn(ret, "ALL") && !hasReturn(ret, "COUNT") && len(hits) > 0 {
		var some []uint32
		if hasReturn(ret, "MIN") {
			some = append(some, hits[0])
		}
		if hasReturn(ret, "MAX") && (len(some) == 0 || hits[len(hits)-1] != some[0]) {
			some = append(some, hits[len(hits)-1])
		}
		if some != nil {
			hits = some
		}
	}
	uids := make([]uint32, 0, len(hits))
	for _, h := range hits {
		if uid {
			uids = append(uids, h)
		} else if int(h) <= len(ss.sel.uids) {
			uids = append(uids, ss.sel.uids[h-1])
		}
	}
	slices.Sort(uids)
	ss.sel.saved = uids
}

func hasReturn(ret []string, opt string) bool { return slices.Contains(ret, opt) }

func withoutSave(ret []string) []string {
	var out []string
	for _, r := range ret {
		if r != "SAVE" {
			out = append(out, r)
		}
	}
	return out
}

// savedArgCommands are the commands whose first argument is a sequence
// set that may be "$" (RFC 5182 §2.2); SEARCH resolves "$" itself.
var savedArgCommands = map[string]bool{"FETCH": true, "STORE": true, "COPY": true, "MOVE": true, "EXPUNGE": true}

// resolveSavedArg replaces a "$" sequence set argument by the messages
// it stands for, before the command's handler parses it. When "$" is
// empty there is nothing to do: the arguments are checked and the
// command completes with OK (RFC 5182 §2.1: an empty "$" is no error);
// done then reports that the handler must not run.
func (ss *session) resolveSavedArg(c *wire.Command) (done bool, err error) {
	if ss.state != stateSelected || !savedArgCommands[c.Name] || (c.Name == "EXPUNGE" && !c.UID) ||
		len(c.Args) == 0 || c.Args[0].Kind != wire.KindSeqSet || c.Args[0].Value != "$" {
		return false, nil
	}
	uids := ss.savedUIDs()
	if len(uids) == 0 {
		return true, checkArgsWithSet(c)
	}
	nums := uids
	if !c.UID {
		nums = make([]uint32, len(uids))
		for i, u := range uids {
			nums[i] = uint32(ss.sel.msn(u))
		}
	}
	args := slices.Clone(c.Args)
	args[0] = wire.Token{Kind: wire.KindSeqSet, Value: uidList(nums)}
	c.Args = args
	return false, nil
}

// checkArgsWithSet parses a command whose "$" is empty, so that a
// malformed one still gets BAD.
func checkArgsWithSet(c *wire.Command) error {
	args := slices.Clone(c.Args)
	args[0] = wire.Token{Kind: wire.KindNumber, Value: "1", Num: 1}
	var err error
	switch c.Name {
	case "FETCH":
		_, err = wire.ParseFetch(args)
	case "STORE":
		_, err = wire.ParseStore(args)
	case "COPY", "MOVE":
		_, _, err = wire.ParseCopy(args)
	case "EXPUNGE":
		_, err = wire.ParseUIDSet(args)
	}
	if err != nil {
		return err
	}
	return okCode("", c.Name+" completed (no messages in $)")
}
