package wire

import (
	"strings"
	"time"
)

// SearchKey is one node of a search program (RFC 9051 §6.4.4).
type SearchKey struct {
	// Op is the key name in upper case ("SEEN", "FROM", "HEADER",
	// "BEFORE", "LARGER", "UID", "MODSEQ", ...), or one of the
	// structural ops: "AND" (a parenthesised list or the whole program),
	// "OR", "NOT", and "SEQSET" for a bare sequence set.
	Op string
	// Field is the header field name of HEADER.
	Field string
	// Value is the string argument (FROM, SUBJECT, HEADER's value, ...)
	// or the keyword of KEYWORD/UNKEYWORD, in the search charset.
	Value string
	// Date is the day of BEFORE, ON, SINCE, SENT*, SAVED*, at 00:00 UTC.
	Date time.Time
	// Num is the argument of LARGER, SMALLER, MODSEQ, OLDER, YOUNGER.
	Num uint64
	// Seq is the set of UID and SEQSET.
	Seq SeqSet
	// Keys are the operands of AND (any number), OR (two) and NOT (one).
	Keys []SearchKey
	// EntryName and EntryType are MODSEQ's optional metadata item
	// (RFC 7162 §3.1.5): "/flags/\draft" and "priv", "shared" or "all".
	EntryName, EntryType string
}

// SearchCommand is a parsed SEARCH (or UID SEARCH).
type SearchCommand struct {
	// Return holds the ESEARCH return options (RFC 9051 §6.4.4, RFC 4731)
	// in upper case; HasReturn tells "RETURN ()" from no RETURN at all.
	Return    []string
	HasReturn bool
	// Charset is the CHARSET argument, "" when absent; the caller answers
	// NO [BADCHARSET] for one it does not know.
	Charset string
	// Key is an AND of the program's keys.
	Key SearchKey
}

// maxSearchDepth bounds NOT/OR/list nesting, which recurses.
const maxSearchDepth = 100

var searchReturnOpts = map[string]bool{"MIN": true, "MAX": true, "ALL": true, "COUNT": true, "SAVE": true}

// ParseSearch parses the arguments of SEARCH:
//
//	[SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"]
//	SP ["CHARSET" SP charset SP] search-key *(SP search-key)
func ParseSearch(args []Token) (SearchCommand, error) {
	var sc SearchCommand
	if len(args) >= 2 && isWord(args[0], "RETURN") {
		if args[1].Kind != KindList {
			return sc, syntaxErr("RETURN needs a list of options")
		}
		sc.HasReturn = true
		sc.Return = []string{}
		for _, o := range args[1].List {
			name, ok := o.Atom(true)
			if !ok || !searchReturnOpts[name] {
				// RFC 4731 §3.1: an unknown return option is a BAD.
				return sc, syntaxErr("unknown search return option")
			}
			sc.Return = append(sc.Return, name)
		}
		args = args[2:]
	}
	if len(args) >= 2 && isWord(args[0], "CHARSET") {
		cs, ok := args[1].AString()
		if !ok || cs == "" {
			return sc, syntaxErr("invalid charset")
		}
		sc.Charset = cs
		args = args[2:]
	}
	if len(args) == 0 {
		return sc, syntaxErr("missing search key")
	}
	keys, err := parseSearchKeys(args, 0)
	if err != nil {
		return sc, err
	}
	sc.Key = SearchKey{Op: "AND", Keys: keys}
	return sc, nil
}

func isWord(t Token, w string) bool {
	return t.Kind == KindAtom && strings.EqualFold(t.Value, w)
}

// parseSearchKeys parses a sequence of search keys filling all of toks.
func parseSearchKeys(toks []Token, depth int) ([]SearchKey, error) {
	var keys []SearchKey
	for len(toks) > 0 {
		k, n, err := parseSearchKey(toks, depth)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
		toks = toks[n:]
	}
	return keys, nil
}

// Key classes by their arguments.
var (
	searchNoArg = map[string]bool{
		"ALL": true, "ANSWERED": true, "DELETED": true, "FLAGGED": true, "SEEN": true,
		"DRAFT": true, "UNANSWERED": true, "UNDELETED": true, "UNFLAGGED": true,
		"UNSEEN": true, "UNDRAFT": true,
		// RFC 3501 only; the caller refuses them for IMAP4rev2 if it wants.
		"NEW": true, "OLD": true, "RECENT": true,
		"SAVEDATESUPPORTED": true, // RFC 8514
	}
	searchString = map[string]bool{
		"BCC": true, "BODY": true, "CC": true, "FROM": true, "SUBJECT": true,
		"TEXT": true, "TO": true,
	}
	searchDate = map[string]bool{
		"BEFORE": true, "ON": true, "SINCE": true, "SENTBEFORE": true,
		"SENTON": true, "SENTSINCE": true,
		"SAVEDBEFORE": true, "SAVEDON": true, "SAVEDSINCE": true, // RFC 8514
	}
	searchNumber = map[string]bool{
		"LARGER": true, "SMALLER": true,
		"OLDER": true, "YOUNGER": true, // RFC 5032
	}
)

// parseSearchKey parses one key at the start of toks and returns how many
// tokens it used.
func parseSearchKey(toks []Token, depth int) (SearchKey, int, error) {
	if depth > maxSearchDepth {
		return SearchKey{}, 0, tooBig(ErrTooDeep, "search program nested too deep")
	}
	t := toks[0]
	switch t.Kind {
	case KindList:
		if len(t.List) == 0 {
			return SearchKey{}, 0, syntaxErr("empty search key list")
		}
		keys, err := parseSearchKeys(t.List, depth+1)
		return SearchKey{Op: "AND", Keys: keys}, 1, err
	case KindNumber, KindSeqSet:
		set, err := ParseSeqSet(t.Value)
		return SearchKey{Op: "SEQSET", Seq: set}, 1, err
	case KindAtom:
	default:
		return SearchKey{}, 0, syntaxErr("expected a search key, got %s", t.Kind)
	}
	op := strings.ToUpper(t.Value)
	k := SearchKey{Op: op}
	args := toks[1:]
	need := func(n int) error {
		if len(args) < n {
			return syntaxErr("%s needs %d argument(s)", op, n)
		}
		return nil
	}
	switch {
	case searchNoArg[op]:
		return k, 1, nil
	case searchString[op]:
		if err := need(1); err != nil {
			return k, 0, err
		}
		v, ok := args[0].AString()
		if !ok {
			return k, 0, syntaxErr("%s needs a string", op)
		}
		k.Value = v
		return k, 2, nil
	case searchDate[op]:
		if err := need(1); err != nil {
			return k, 0, err
		}
		d, err := ParseDateToken(args[0])
		k.Date = d
		return k, 2, err
	case searchNumber[op]:
		if err := need(1); err != nil {
			return k, 0, err
		}
		n, ok := args[0].Number64()
		if !ok || ((op == "OLDER" || op == "YOUNGER") && n == 0) {
			return k, 0, syntaxErr("%s needs a number", op)
		}
		k.Num = n
		return k, 2, nil
	}
	return parseSearchCompound(k, args, depth)
}

// parseSearchCompound handles the keys with structured arguments.
func parseSearchCompound(k SearchKey, args []Token, depth int) (SearchKey, int, error) {
	switch k.Op {
	case "KEYWORD", "UNKEYWORD":
		if len(args) < 1 {
			return k, 0, syntaxErr("%s needs a keyword", k.Op)
		}
		f, err := ParseFlag(args[0])
		if err != nil || strings.HasPrefix(f, `\`) {
			return k, 0, syntaxErr("%s needs a keyword", k.Op)
		}
		k.Value = f
		return k, 2, nil
	case "HEADER":
		if len(args) < 2 {
			return k, 0, syntaxErr("HEADER needs a field name and a string")
		}
		field, ok1 := args[0].AString()
		value, ok2 := args[1].AString()
		if !ok1 || !ok2 || field == "" {
			return k, 0, syntaxErr("HEADER needs a field name and a string")
		}
		k.Field, k.Value = field, value
		return k, 3, nil
	case "UID":
		if len(args) < 1 {
			return k, 0, syntaxErr("UID needs a sequence set")
		}
		set, err := ParseSeqSetToken(args[0])
		k.Seq = set
		return k, 2, err
	case "NOT":
		if len(args) < 1 {
			return k, 0, syntaxErr("NOT needs a key")
		}
		sub, n, err := parseSearchKey(args, depth+1)
		k.Keys = []SearchKey{sub}
		return k, 1 + n, err
	case "OR":
		return parseSearchOr(k, args, depth)
	case "MODSEQ":
		return parseSearchModSeq(k, args)
	}
	return k, 0, syntaxErr("unknown search key %q", k.Op)
}

func parseSearchOr(k SearchKey, args []Token, depth int) (SearchKey, int, error) {
	if len(args) < 2 {
		return k, 0, syntaxErr("OR needs two keys")
	}
	a, n1, err := parseSearchKey(args, depth+1)
	if err != nil {
		return k, 0, err
	}
	if len(args) <= n1 {
		return k, 0, syntaxErr("OR needs two keys")
	}
	b, n2, err := parseSearchKey(args[n1:], depth+1)
	if err != nil {
		return k, 0, err
	}
	k.Keys = []SearchKey{a, b}
	return k, 1 + n1 + n2, nil
}

// parseSearchModSeq parses RFC 7162 §3.1.5:
//
//	"MODSEQ" [search-modsequence-ext] SP mod-sequence-valzer
//	search-modsequence-ext = SP entry-name SP entry-type-req
func parseSearchModSeq(k SearchKey, args []Token) (SearchKey, int, error) {
	if len(args) >= 3 && args[0].Kind == KindQuoted {
		name := args[0].Value
		typ, ok := args[1].Atom(false)
		typ = strings.ToLower(typ)
		if !ok || (typ != "priv" && typ != "shared" && typ != "all") || !strings.HasPrefix(strings.ToLower(name), "/flags/") {
			return k, 0, syntaxErr("invalid MODSEQ entry")
		}
		n, ok := args[2].Number64()
		if !ok {
			return k, 0, syntaxErr("invalid MODSEQ value")
		}
		k.EntryName, k.EntryType, k.Num = name, typ, n
		return k, 4, nil
	}
	if len(args) < 1 {
		return k, 0, syntaxErr("MODSEQ needs a value")
	}
	n, ok := args[0].Number64()
	if !ok {
		return k, 0, syntaxErr("invalid MODSEQ value")
	}
	k.Num = n
	return k, 2, nil
}
