package wire

import (
	"strings"
)

// ParseMailbox parses mailbox = "INBOX" / astring (RFC 9051 §9). INBOX in
// any case is returned as "INBOX" (RFC 9051 §5.1); any other name comes
// back as sent: decoding modified UTF-7 or checking UTF-8 is the caller's.
func ParseMailbox(t Token) (string, error) {
	name, ok := t.AString()
	if !ok {
		return "", syntaxErr("expected a mailbox name")
	}
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	return name, nil
}

// ListCommand is a parsed LIST or LSUB.
type ListCommand struct {
	Reference string
	Patterns  []string
	// Select holds the LIST-EXTENDED selection options and Return the
	// return options, upper case (RFC 5258 §3); STATUS is not in Return
	// but in StatusItems (LIST-STATUS, RFC 5819), nil when not asked.
	Select      []string
	Return      []string
	StatusItems []string
	// Extended: the command used LIST-EXTENDED syntax, so the response
	// follows RFC 5258 (CHILDINFO, \NonExistent ...).
	Extended bool
}

var (
	listSelectOpts = map[string]bool{"SUBSCRIBED": true, "REMOTE": true, "RECURSIVEMATCH": true, "SPECIAL-USE": true}
	listReturnOpts = map[string]bool{"SUBSCRIBED": true, "CHILDREN": true, "SPECIAL-USE": true}
)

// ParseList parses the arguments of LIST (RFC 9051 §6.3.9, RFC 5258 §3,
// RFC 5819):
//
//	[list-select-opts SP] mailbox SP mbox-or-pat [SP list-return-opts]
//	mbox-or-pat = list-mailbox / "(" list-mailbox *(SP list-mailbox) ")"
//
// For LSUB call it with extended false: only "mailbox SP list-mailbox".
func ParseList(args []Token, extended bool) (ListCommand, error) {
	var lc ListCommand
	if extended && len(args) > 0 && args[0].Kind == KindList {
		lc.Extended = true
		if err := lc.parseSelectOpts(args[0].List); err != nil {
			return lc, err
		}
		args = args[1:]
	}
	if len(args) < 2 {
		return lc, syntaxErr("LIST needs a reference and a pattern")
	}
	ref, err := ParseMailbox(args[0])
	if err != nil {
		return lc, err
	}
	// The reference is used as given, INBOX folding included: "inbox"
	// as a reference names the same mailbox.
	lc.Reference = ref
	if args[1].Kind == KindList && extended {
		lc.Extended = true
		if len(args[1].List) == 0 {
			return lc, syntaxErr("empty pattern list")
		}
		for _, p := range args[1].List {
			pat, err := parseListMailbox(p)
			if err != nil {
				return lc, err
			}
			lc.Patterns = append(lc.Patterns, pat)
		}
	} else {
		pat, err := parseListMailbox(args[1])
		if err != nil {
			return lc, err
		}
		lc.Patterns = []string{pat}
	}
	args = args[2:]
	if len(args) == 0 {
		return lc, nil
	}
	if !extended || len(args) != 2 || !isWord(args[0], "RETURN") || args[1].Kind != KindList {
		return lc, syntaxErr("unexpected arguments after the LIST pattern")
	}
	lc.Extended = true
	return lc, lc.parseReturnOpts(args[1].List)
}

// parseListMailbox: list-mailbox = 1*list-char / string.
func parseListMailbox(t Token) (string, error) {
	if s, ok := t.String(); ok {
		return s, nil
	}
	if !t.isBare() || t.Value == "" {
		return "", syntaxErr("expected a mailbox pattern")
	}
	for i := 0; i < len(t.Value); i++ {
		if !isListChar(t.Value[i]) {
			return "", syntaxErr("invalid character in mailbox pattern")
		}
	}
	return t.Value, nil
}

func (lc *ListCommand) parseSelectOpts(opts []Token) error {
	lc.Select = []string{}
	recursive, other := false, false
	for _, o := range opts {
		name, ok := o.Atom(true)
		if !ok || !listSelectOpts[name] {
			// RFC 5258 §3: an unrecognised selection option is a BAD.
			return syntaxErr("unknown LIST selection option")
		}
		switch name {
		case "RECURSIVEMATCH":
			recursive = true
		case "REMOTE":
		default:
			other = true
		}
		lc.Select = append(lc.Select, name)
	}
	// RFC 5258 §3: RECURSIVEMATCH alone (or with only REMOTE) is a BAD.
	if recursive && !other {
		return syntaxErr("RECURSIVEMATCH needs another selection option")
	}
	return nil
}

func (lc *ListCommand) parseReturnOpts(opts []Token) error {
	lc.Return = []string{}
	for i := 0; i < len(opts); i++ {
		name, ok := opts[i].Atom(true)
		if ok && name == "STATUS" && i+1 < len(opts) && lc.StatusItems == nil {
			items, err := ParseStatusItems(opts[i+1])
			if err != nil {
				return err
			}
			lc.StatusItems = items
			i++
			continue
		}
		if !ok || !listReturnOpts[name] {
			return syntaxErr("unknown LIST return option")
		}
		lc.Return = append(lc.Return, name)
	}
	return nil
}

var statusItems = map[string]bool{
	"MESSAGES": true, "UIDNEXT": true, "UIDVALIDITY": true, "UNSEEN": true,
	"RECENT":  true,               // RFC 3501 only
	"DELETED": true, "SIZE": true, // RFC 9051 §6.3.11
	"HIGHESTMODSEQ": true, // RFC 7162 §3.1.9
	"APPENDLIMIT":   true, // RFC 7889
	"MAILBOXID":     true, // RFC 8474
}

// ParseStatusItems parses "(" status-att *(SP status-att) ")" into upper
// case names.
func ParseStatusItems(t Token) ([]string, error) {
	if t.Kind != KindList || len(t.List) == 0 {
		return nil, syntaxErr("expected a list of status items")
	}
	items := make([]string, 0, len(t.List))
	for _, el := range t.List {
		name, ok := el.Atom(true)
		if !ok || !statusItems[name] {
			return nil, syntaxErr("unknown status item")
		}
		items = append(items, name)
	}
	return items, nil
}

// ParseStatus parses the arguments of STATUS: mailbox SP "(" status-att
// *(SP status-att) ")".
func ParseStatus(args []Token) (mailbox string, items []string, err error) {
	if len(args) != 2 {
		return "", nil, syntaxErr("STATUS needs a mailbox and a list of items")
	}
	if mailbox, err = ParseMailbox(args[0]); err != nil {
		return "", nil, err
	}
	items, err = ParseStatusItems(args[1])
	return mailbox, items, err
}
