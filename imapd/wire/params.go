package wire

import (
	"time"
)

// ParseAStrings parses exactly n astring arguments (LOGIN user password,
// RENAME old new, ...).
func ParseAStrings(args []Token, n int) ([]string, error) {
	if len(args) != n {
		return nil, syntaxErr("expected %d argument(s), got %d", n, len(args))
	}
	out := make([]string, n)
	for i, t := range args {
		s, ok := t.AString()
		if !ok {
			return nil, syntaxErr("argument %d is not a string", i+1)
		}
		out[i] = s
	}
	return out, nil
}

// ParseEnable parses ENABLE's arguments: 1*(SP capability), upper-cased
// (RFC 5161 §4, RFC 9051 §6.3.1).
func ParseEnable(args []Token) ([]string, error) {
	if len(args) == 0 {
		return nil, syntaxErr("ENABLE needs a capability")
	}
	caps := make([]string, 0, len(args))
	for _, t := range args {
		c, ok := t.Atom(true)
		if !ok {
			return nil, syntaxErr("invalid capability name")
		}
		caps = append(caps, c)
	}
	return caps, nil
}

// IDField is one field of an ID command; Nil is set for a NIL value.
type IDField struct {
	Key, Value string
	Nil        bool
}

// Bounds of RFC 2971 §3.3.
const (
	idMaxFields   = 30
	idMaxKeyLen   = 30
	idMaxValueLen = 1024
)

// ParseID parses ID's argument (RFC 2971 §4):
//
//	id-params-list = "(" *(string SP nstring) ")" / nil
//
// A NIL list returns nil fields.
func ParseID(args []Token) ([]IDField, error) {
	if len(args) != 1 {
		return nil, syntaxErr("ID needs one argument")
	}
	if args[0].Kind == KindNIL {
		return nil, nil
	}
	l := args[0].List
	if args[0].Kind != KindList || len(l)%2 != 0 {
		return nil, syntaxErr("ID needs NIL or a list of field-value pairs")
	}
	if len(l)/2 > idMaxFields {
		return nil, syntaxErr("more than %d ID fields", idMaxFields)
	}
	fields := make([]IDField, 0, len(l)/2)
	for i := 0; i < len(l); i += 2 {
		key, ok := l[i].String()
		if !ok || len(key) > idMaxKeyLen {
			return nil, syntaxErr("invalid ID field name")
		}
		val, isNil, ok := l[i+1].NString()
		if !ok || len(val) > idMaxValueLen {
			return nil, syntaxErr("invalid ID field value")
		}
		fields = append(fields, IDField{Key: key, Value: val, Nil: isNil})
	}
	return fields, nil
}

// QResync holds the QRESYNC select parameter (RFC 7162 §3.2.5).
type QResync struct {
	UIDValidity uint32
	ModSeq      uint64
	// KnownUIDs is optional (HasKnownUIDs); SeqMatch is optional too.
	KnownUIDs    SeqSet
	HasKnownUIDs bool
	SeqMatch     *SeqMatch
}

// SeqMatch is seq-match-data = "(" known-sequence-set SP known-uid-set ")".
type SeqMatch struct {
	Seqs, UIDs SeqSet
}

// SelectCommand is a parsed SELECT or EXAMINE.
type SelectCommand struct {
	Mailbox   string
	CondStore bool
	QResync   *QResync
}

// ParseSelect parses the arguments of SELECT/EXAMINE (RFC 9051 §6.3.2,
// RFC 4466 select-params, RFC 7162 §3.1.8 and §3.2.5):
//
//	mailbox [SP "(" select-param *(SP select-param) ")"]
func ParseSelect(args []Token) (SelectCommand, error) {
	var sc SelectCommand
	if len(args) < 1 || len(args) > 2 {
		return sc, syntaxErr("SELECT needs a mailbox and optional parameters")
	}
	var err error
	if sc.Mailbox, err = ParseMailbox(args[0]); err != nil {
		return sc, err
	}
	if len(args) == 1 {
		return sc, nil
	}
	if args[1].Kind != KindList || len(args[1].List) == 0 {
		return sc, syntaxErr("invalid select parameters")
	}
	params := args[1].List
	for i := 0; i < len(params); i++ {
		name, ok := params[i].Atom(true)
		switch {
		case ok && name == "CONDSTORE" && !sc.CondStore:
			sc.CondStore = true
		case ok && name == "QRESYNC" && sc.QResync == nil && i+1 < len(params):
			q, err := parseQResync(params[i+1])
			if err != nil {
				return sc, err
			}
			sc.QResync = q
			i++
		default:
			return sc, syntaxErr("unknown select parameter")
		}
	}
	return sc, nil
}

// parseQResync parses "(" uidvalidity SP mod-sequence-value [SP
// known-uids] [SP seq-match-data] ")".
func parseQResync(t Token) (*QResync, error) {
	if t.Kind != KindList || len(t.List) < 2 || len(t.List) > 4 {
		return nil, syntaxErr("invalid QRESYNC parameters")
	}
	l := t.List
	v, ok := l[0].Number()
	if !ok || v == 0 {
		return nil, syntaxErr("invalid QRESYNC UIDVALIDITY")
	}
	m, ok := l[1].Number64()
	if !ok || m == 0 {
		return nil, syntaxErr("invalid QRESYNC mod-sequence")
	}
	q := &QResync{UIDValidity: v, ModSeq: m}
	l = l[2:]
	if len(l) > 0 && l[0].Kind != KindList {
		set, err := knownSet(l[0])
		if err != nil {
			return nil, err
		}
		q.KnownUIDs, q.HasKnownUIDs = set, true
		l = l[1:]
	}
	if len(l) > 0 {
		if l[0].Kind != KindList || len(l[0].List) != 2 || len(l) != 1 {
			return nil, syntaxErr("invalid QRESYNC sequence match data")
		}
		seqs, err := knownSet(l[0].List[0])
		if err != nil {
			return nil, err
		}
		uids, err := knownSet(l[0].List[1])
		if err != nil {
			return nil, err
		}
		q.SeqMatch = &SeqMatch{Seqs: seqs, UIDs: uids}
	}
	return q, nil
}

// knownSet parses a set of known UIDs or numbers, where "*" and "$" have
// no meaning (RFC 7162 §3.2.5).
func knownSet(t Token) (SeqSet, error) {
	set, err := ParseSeqSetToken(t)
	if err != nil {
		return set, err
	}
	if set.Saved || set.Dynamic() {
		return set, syntaxErr("\"*\" and \"$\" are not allowed in known UIDs")
	}
	return set, nil
}

// ParseCopy parses the arguments of COPY and MOVE: sequence-set SP mailbox.
func ParseCopy(args []Token) (SeqSet, string, error) {
	if len(args) != 2 {
		return SeqSet{}, "", syntaxErr("expected a sequence set and a mailbox")
	}
	set, err := ParseSeqSetToken(args[0])
	if err != nil {
		return SeqSet{}, "", err
	}
	mbox, err := ParseMailbox(args[1])
	return set, mbox, err
}

// AppendOptions are the optional arguments before an APPEND message.
type AppendOptions struct {
	Flags    []string
	HasFlags bool
	Date     time.Time
	HasDate  bool
}

// ParseAppend parses the arguments the Reader returns in front of the
// first APPEND message: mailbox [SP flag-list] [SP date-time]
// (RFC 9051 §6.3.12).
func ParseAppend(args []Token) (string, AppendOptions, error) {
	if len(args) < 1 {
		return "", AppendOptions{}, syntaxErr("APPEND needs a mailbox")
	}
	mbox, err := ParseMailbox(args[0])
	if err != nil {
		return "", AppendOptions{}, err
	}
	opts, err := ParseAppendNext(args[1:])
	return mbox, opts, err
}

// ParseAppendNext parses the optional arguments in front of a later
// MULTIAPPEND message (RFC 3502 §6): [flag-list SP] [date-time SP].
func ParseAppendNext(args []Token) (AppendOptions, error) {
	var o AppendOptions
	if len(args) > 0 && args[0].Kind == KindList {
		flags, err := ParseFlagList(args[0])
		if err != nil {
			return o, err
		}
		o.Flags, o.HasFlags = flags, true
		args = args[1:]
	}
	if len(args) > 0 {
		d, err := ParseDateTimeToken(args[0])
		if err != nil {
			return o, err
		}
		o.Date, o.HasDate = d, true
		args = args[1:]
	}
	if len(args) > 0 {
		return o, syntaxErr("unexpected APPEND argument")
	}
	return o, nil
}

// ParseUIDSet parses UID EXPUNGE's argument (RFC 4315 §2.1).
func ParseUIDSet(args []Token) (SeqSet, error) {
	if len(args) != 1 {
		return SeqSet{}, syntaxErr("expected one sequence set")
	}
	return ParseSeqSetToken(args[0])
}
