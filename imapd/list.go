package imapd

import (
	"sort"
	"strings"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// specialUse maps the Maildir++ default folders to their RFC 6154
// attributes.
var specialUse = map[string]string{
	"Drafts": `\Drafts`, "Sent": `\Sent`, "Trash": `\Trash`, "Junk": `\Junk`, "Archive": `\Archive`,
}

// listEntry is one mailbox a LIST may return.
type listEntry struct {
	folder     string // engine name ("INBOX", "A/B")
	name       string // as the client sees it
	exists     bool   // a real mailbox (else only a parent of one)
	children   bool
	subscribed bool
	subChild   bool // a child is subscribed (RECURSIVEMATCH CHILDINFO)
}

// cmdList is LIST (RFC 9051 §6.3.9, RFC 5258 LIST-EXTENDED, RFC 5819
// LIST-STATUS, RFC 6154 SPECIAL-USE) and LSUB (RFC 3501 §6.3.9).
func (ss *session) cmdList(c *wire.Command) error {
	lsub := c.Name == "LSUB"
	lc, err := wire.ParseList(c.Args, !lsub)
	if err != nil {
		return err
	}
	if err := checkStatusItems(lc.StatusItems); err != nil {
		return err
	}
	if len(lc.Patterns) == 1 && lc.Patterns[0] == "" && !lc.Extended {
		// RFC 9051 §6.3.9: the delimiter and the root.
		ss.untagged(c.Name + ` (\Noselect) "." ""`)
		return nil
	}
	entries, err := ss.listEntries()
	if err != nil {
		return err
	}
	sel := optSet(lc.Select)
	ret := optSet(lc.Return)
	subscribedOnly := lsub || sel["SUBSCRIBED"]
	for _, e := range entries {
		if !ss.listMatches(lc.Reference, lc.Patterns, e.name) {
			continue
		}
		if subscribedOnly && !e.subscribed && !(sel["RECURSIVEMATCH"] && e.subChild) {
			continue
		}
		if !subscribedOnly && !e.exists && !e.children {
			continue
		}
		use := ""
		if !strings.Contains(e.folder, "/") {
			use = specialUse[e.folder]
		}
		if sel["SPECIAL-USE"] && use == "" {
			continue
		}
		attrs := ss.listAttrs(e, use, lsub, subscribedOnly || ret["SUBSCRIBED"])
		ss.w.Untagged()
		ss.w.Raw(c.Name + " (" + strings.Join(attrs, " ") + `) "." `)
		ss.w.AString(e.name)
		if sel["RECURSIVEMATCH"] && e.subChild && !lsub {
			ss.w.Raw(` ("CHILDINFO" ("SUBSCRIBED"))`)
		}
		ss.w.CRLF()
		if lc.StatusItems != nil && e.exists {
			// RFC 5819 §2: STATUS follows the LIST of a selectable one;
			// a failure there is not the LIST's.
			_ = ss.writeStatus(e.folder, lc.StatusItems)
		}
	}
	return nil
}

func optSet(opts []string) map[string]bool {
	m := map[string]bool{}
	for _, o := range opts {
		m[o] = true
	}
	return m
}

// listAttrs returns a LIST response's attributes.
func (ss *session) listAttrs(e listEntry, use string, lsub, showSubscribed bool) []string {
	var attrs []string
	switch {
	case !e.exists && (lsub || !e.children):
		attrs = append(attrs, `\NonExistent`)
		if lsub {
			attrs = []string{`\Noselect`}
		}
	case !e.exists:
		attrs = append(attrs, `\Noselect`)
	}
	if !lsub {
		if e.children {
			attrs = append(attrs, `\HasChildren`)
		} else {
			attrs = append(attrs, `\HasNoChildren`)
		}
		if showSubscribed && e.subscribed {
			attrs = append(attrs, `\Subscribed`)
		}
	}
	if use != "" && e.exists && !lsub {
		attrs = append(attrs, use)
	}
	return attrs
}

// listEntries builds every mailbox name there is: INBOX, the folders,
// the parents they imply, and subscribed names that do not exist.
func (ss *session) listEntries() ([]listEntry, error) {
	folders, err := maildir.ListFolders(ss.root)
	if err != nil {
		return nil, err
	}
	subs, err := maildir.ReadSubscriptions(ss.root)
	if err != nil {
		return nil, err
	}
	byFolder := map[string]*listEntry{}
	get := func(folder string) *listEntry {
		if e, ok := byFolder[folder]; ok {
			return e
		}
		e := &listEntry{folder: folder, name: ss.mailboxName(folder)}
		byFolder[folder] = e
		return e
	}
	addParents := func(folder string, sub bool) {
		for i := strings.LastIndex(folder, "/"); i > 0; i = strings.LastIndex(folder[:i], "/") {
			p := get(folder[:i])
			if sub {
				p.subChild = true
			} else {
				p.children = true
			}
		}
	}
	get("INBOX").exists = true
	for _, f := range folders {
		get(f).exists = true
		addParents(f, false)
	}
	for _, s := range subs {
		if strings.EqualFold(s, "INBOX") {
			s = "INBOX"
		}
		get(s).subscribed = true
		addParents(s, true)
	}
	out := make([]listEntry, 0, len(byFolder))
	for _, e := range byFolder {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].folder == "INBOX") != (out[j].folder == "INBOX") {
			return out[i].folder == "INBOX"
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

// listMatches applies LIST's reference and patterns to a name (RFC 9051
// §6.3.9): "*" matches anything, "%" anything but the delimiter; INBOX
// matches case-insensitively.
func (ss *session) listMatches(ref string, patterns []string, name string) bool {
	for _, p := range patterns {
		full := p
		if ref != "" && !strings.HasPrefix(p, delimiter) {
			full = ref + p
		}
		if wildMatch(full, name) {
			return true
		}
		if strings.HasPrefix(name, "INBOX") && len(full) >= 5 && strings.EqualFold(full[:5], "INBOX") &&
			wildMatch("INBOX"+full[5:], name) {
			return true
		}
	}
	return false
}

// wildMatch matches a list-mailbox pattern. Runs in O(len(p)·len(s))
// whatever the pattern (no exponential backtracking).
func wildMatch(p, s string) bool {
	// prev[j]: p[:i] matches s[:j].
	prev := make([]bool, len(s)+1)
	cur := make([]bool, len(s)+1)
	prev[0] = true
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*':
			cur[0] = prev[0]
			for j := 1; j <= len(s); j++ {
				cur[j] = prev[j] || cur[j-1]
			}
		case '%':
			cur[0] = prev[0]
			for j := 1; j <= len(s); j++ {
				cur[j] = prev[j] || (cur[j-1] && s[j-1] != '.')
			}
		default:
			cur[0] = false
			for j := 1; j <= len(s); j++ {
				cur[j] = prev[j-1] && s[j-1] == p[i]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(s)]
}
