package wire

import (
	"strings"
)

// System flags in their canonical case (RFC 9051 §2.3.2). Clients such as
// mbsync compare them case-sensitively, so the session must always send
// them like this.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
	FlagRecent   = `\Recent`
)

var systemFlags = []string{FlagSeen, FlagAnswered, FlagFlagged, FlagDeleted, FlagDraft, FlagRecent}

// CanonicalFlag returns a system flag in its canonical case and any other
// flag unchanged: `\seen` becomes `\Seen`.
func CanonicalFlag(f string) string {
	for _, s := range systemFlags {
		if strings.EqualFold(f, s) {
			return s
		}
	}
	return f
}

// ParseFlag parses one flag (RFC 9051 §9):
//
//	flag = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
//	       flag-keyword / flag-extension
//	flag-extension = "\" atom
//
// System flags come back in canonical case; keywords as sent. \Recent
// parses (as a flag-extension) and the caller refuses to store it.
func ParseFlag(t Token) (string, error) {
	if !t.isBare() {
		return "", syntaxErr("expected a flag, got %s", t.Kind)
	}
	v := t.Value
	if strings.HasPrefix(v, `\`) {
		if !isAtom(v[1:]) {
			return "", syntaxErr("invalid flag %q", v)
		}
		return CanonicalFlag(v), nil
	}
	if !isAtom(v) {
		return "", syntaxErr("invalid keyword %q", v)
	}
	return v, nil
}

// ParseFlagList parses flag-list = "(" [flag *(SP flag)] ")".
func ParseFlagList(t Token) ([]string, error) {
	if t.Kind != KindList {
		return nil, syntaxErr("expected a flag list")
	}
	flags := make([]string, 0, len(t.List))
	for _, el := range t.List {
		f, err := ParseFlag(el)
		if err != nil {
			return nil, err
		}
		flags = append(flags, f)
	}
	return flags, nil
}

// StoreOp is the operation of a STORE.
type StoreOp uint8

const (
	StoreReplace StoreOp = iota // FLAGS
	StoreAdd                    // +FLAGS
	StoreRemove                 // -FLAGS
)

// StoreCommand is a parsed STORE (or UID STORE).
type StoreCommand struct {
	Seq    SeqSet
	Op     StoreOp
	Silent bool
	Flags  []string
	// UnchangedSince is the CONDSTORE modifier (RFC 7162 §3.1.3);
	// HasUnchangedSince tells it from an absent one (0 is valid).
	UnchangedSince    uint64
	HasUnchangedSince bool
}

// ParseStore parses the arguments of STORE (RFC 9051 §6.4.6, RFC 7162 §3.1.3):
//
//	sequence-set [SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"] SP
//	(["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
func ParseStore(args []Token) (StoreCommand, error) {
	var sc StoreCommand
	if len(args) < 3 {
		return sc, syntaxErr("STORE needs a sequence set, an item and flags")
	}
	var err error
	if sc.Seq, err = ParseSeqSetToken(args[0]); err != nil {
		return sc, err
	}
	args = args[1:]
	if args[0].Kind == KindList {
		if err := sc.parseModifiers(args[0].List); err != nil {
			return sc, err
		}
		args = args[1:]
	}
	if len(args) < 2 {
		return sc, syntaxErr("STORE needs an item and flags")
	}
	if err := sc.parseItem(args[0]); err != nil {
		return sc, err
	}
	args = args[1:]
	if len(args) == 1 && args[0].Kind == KindList {
		sc.Flags, err = ParseFlagList(args[0])
		return sc, err
	}
	for _, t := range args {
		f, err := ParseFlag(t)
		if err != nil {
			return sc, err
		}
		sc.Flags = append(sc.Flags, f)
	}
	return sc, nil
}

func (sc *StoreCommand) parseModifiers(mods []Token) error {
	if len(mods) != 2 {
		return syntaxErr("invalid STORE modifiers")
	}
	name, ok := mods[0].Atom(true)
	if !ok || name != "UNCHANGEDSINCE" {
		return syntaxErr("unknown STORE modifier")
	}
	// mod-sequence-valzer = "0" / mod-sequence-value (RFC 7162 §7).
	n, ok := mods[1].Number64()
	if !ok {
		return syntaxErr("invalid UNCHANGEDSINCE value")
	}
	sc.UnchangedSince, sc.HasUnchangedSince = n, true
	return nil
}

func (sc *StoreCommand) parseItem(t Token) error {
	item, ok := t.Atom(true)
	if !ok {
		return syntaxErr("invalid STORE item")
	}
	switch item[0] {
	case '+':
		sc.Op, item = StoreAdd, item[1:]
	case '-':
		sc.Op, item = StoreRemove, item[1:]
	}
	switch item {
	case "FLAGS":
	case "FLAGS.SILENT":
		sc.Silent = true
	default:
		return syntaxErr("invalid STORE item %q", t.Value)
	}
	return nil
}
