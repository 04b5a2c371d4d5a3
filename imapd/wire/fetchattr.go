package wire

import (
	"strconv"
	"strings"
)

// Section is a parsed section spec (RFC 9051 §6.4.5):
//
//	section-spec = section-msgtext / (section-part ["." section-text])
//	section-text = section-msgtext / "MIME"
type Section struct {
	// Part is the part path, "1.2" as [1 2]; empty for the whole message.
	Part []uint32
	// Specifier is "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT",
	// "TEXT" or "MIME".
	Specifier string
	// Fields are the header field names of HEADER.FIELDS[.NOT], as sent.
	Fields []string
}

// String formats the section as it appears between the brackets.
func (s Section) String() string {
	var b strings.Builder
	for i, p := range s.Part {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.FormatUint(uint64(p), 10))
	}
	if s.Specifier != "" {
		if len(s.Part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.Specifier)
	}
	if len(s.Fields) > 0 {
		b.WriteString(" (")
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(formatAString(f))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// FetchAttr is one fetch attribute.
type FetchAttr struct {
	// Name is the attribute in upper case: ENVELOPE, FLAGS, INTERNALDATE,
	// RFC822, RFC822.HEADER, RFC822.SIZE, RFC822.TEXT, UID, BODY,
	// BODYSTRUCTURE, BINARY, BINARY.SIZE, MODSEQ, SAVEDATE. BODY.PEEK and
	// BINARY.PEEK are BODY and BINARY with Peek set.
	Name string
	// Section is set for BODY[...], BINARY[...] and BINARY.SIZE[...];
	// BODY without one is the non-extensible body structure.
	Section *Section
	Peek    bool
	Partial *Partial
}

// ResponseName is the item name the FETCH response carries for the
// attribute: BODY.PEEK[1] is answered as BODY[1], a partial as its origin
// octet only (RFC 9051 §7.5.2: "BODY[<section>]<<origin octet>>").
func (a FetchAttr) ResponseName() string {
	if a.Section == nil {
		return a.Name
	}
	s := a.Name + "[" + a.Section.String() + "]"
	if a.Partial != nil {
		s += "<" + strconv.FormatUint(a.Partial.Offset, 10) + ">"
	}
	return s
}

// FetchCommand is a parsed FETCH (or UID FETCH).
type FetchCommand struct {
	Seq   SeqSet
	Attrs []FetchAttr
	// ChangedSince and Vanished are fetch modifiers of RFC 7162 §3.1.4.1
	// and §3.2.6; the caller checks that VANISHED comes with UID FETCH
	// and CHANGEDSINCE.
	ChangedSince    uint64
	HasChangedSince bool
	Vanished        bool
}

// Fetch macros (RFC 9051 §6.4.5).
var fetchMacros = map[string][]string{
	"ALL":  {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"},
	"FAST": {"FLAGS", "INTERNALDATE", "RFC822.SIZE"},
	"FULL": {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"},
}

// plainFetchAttrs are the attributes without a section.
var plainFetchAttrs = map[string]bool{
	"ENVELOPE": true, "FLAGS": true, "INTERNALDATE": true, "RFC822": true,
	"RFC822.HEADER": true, "RFC822.SIZE": true, "RFC822.TEXT": true, "UID": true,
	"BODY": true, "BODYSTRUCTURE": true, "MODSEQ": true, "SAVEDATE": true,
	"EMAILID": true, "THREADID": true,
}

// ParseFetch parses the arguments of FETCH:
//
//	sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
//	"(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
func ParseFetch(args []Token) (FetchCommand, error) {
	var fc FetchCommand
	if len(args) < 2 || len(args) > 3 {
		return fc, syntaxErr("FETCH needs a sequence set and attributes")
	}
	var err error
	if fc.Seq, err = ParseSeqSetToken(args[0]); err != nil {
		return fc, err
	}
	if fc.Attrs, err = ParseFetchAttrs(args[1]); err != nil {
		return fc, err
	}
	if len(args) == 3 {
		if err := fc.parseModifiers(args[2]); err != nil {
			return fc, err
		}
	}
	return fc, nil
}

// ParseFetchAttrs parses a macro, one fetch-att or a list of them.
func ParseFetchAttrs(t Token) ([]FetchAttr, error) {
	if t.Kind == KindAtom {
		if names, ok := fetchMacros[strings.ToUpper(t.Value)]; ok {
			attrs := make([]FetchAttr, len(names))
			for i, n := range names {
				attrs[i] = FetchAttr{Name: n}
			}
			return attrs, nil
		}
	}
	if t.Kind != KindList {
		a, err := ParseFetchAttr(t)
		if err != nil {
			return nil, err
		}
		return []FetchAttr{a}, nil
	}
	if len(t.List) == 0 {
		return nil, syntaxErr("empty fetch attribute list")
	}
	attrs := make([]FetchAttr, 0, len(t.List))
	for _, el := range t.List {
		a, err := ParseFetchAttr(el)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	return attrs, nil
}

// ParseFetchAttr parses one fetch-att (RFC 9051 §9, RFC 3501 §9 for the
// RFC822 forms, RFC 3516 for BINARY, RFC 7162 for MODSEQ).
func ParseFetchAttr(t Token) (FetchAttr, error) {
	switch t.Kind {
	case KindAtom:
		name := strings.ToUpper(t.Value)
		if !plainFetchAttrs[name] {
			return FetchAttr{}, syntaxErr("unknown fetch attribute %q", t.Value)
		}
		return FetchAttr{Name: name}, nil
	case KindSection:
		return parseSectionAttr(t)
	}
	return FetchAttr{}, syntaxErr("expected a fetch attribute, got %s", t.Kind)
}

func parseSectionAttr(t Token) (FetchAttr, error) {
	a := FetchAttr{Partial: t.Partial}
	word := strings.ToUpper(t.Value)
	switch word {
	case "BODY", "BINARY":
		a.Name = word
	case "BODY.PEEK", "BINARY.PEEK":
		a.Name, a.Peek = strings.TrimSuffix(word, ".PEEK"), true
	case "BINARY.SIZE":
		a.Name = word
		if t.Partial != nil {
			return a, syntaxErr("BINARY.SIZE takes no partial")
		}
	default:
		return a, syntaxErr("unknown section attribute %q", t.Value)
	}
	var err error
	var sec Section
	if a.Name == "BODY" {
		sec, err = parseSection(t.List)
	} else {
		// section-binary = "[" [section-part] "]" (RFC 3516 §4.2).
		sec, err = parseBinarySection(t.List)
	}
	if err != nil {
		return a, err
	}
	a.Section = &sec
	return a, nil
}

func parseBinarySection(toks []Token) (Section, error) {
	if len(toks) == 0 {
		return Section{}, nil
	}
	if len(toks) != 1 || !toks[0].isBare() {
		return Section{}, syntaxErr("invalid binary section")
	}
	parts, rest, err := splitPart(toks[0].Value)
	if err != nil {
		return Section{}, err
	}
	if rest != "" {
		return Section{}, syntaxErr("binary section takes only a part number")
	}
	return Section{Part: parts}, nil
}

// ParseSection parses the tokens between the brackets of BODY[...].
func parseSection(toks []Token) (Section, error) {
	if len(toks) == 0 {
		return Section{}, nil
	}
	if !toks[0].isBare() {
		return Section{}, syntaxErr("invalid section")
	}
	parts, spec, err := splitPart(toks[0].Value)
	if err != nil {
		return Section{}, err
	}
	sec := Section{Part: parts, Specifier: strings.ToUpper(spec)}
	switch sec.Specifier {
	case "", "HEADER", "TEXT":
	case "MIME":
		// MIME is the header of a part, so it needs one.
		if len(parts) == 0 {
			return sec, syntaxErr("MIME needs a part number")
		}
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if len(toks) != 2 || toks[1].Kind != KindList || len(toks[1].List) == 0 {
			return sec, syntaxErr("%s needs a list of field names", sec.Specifier)
		}
		for _, f := range toks[1].List {
			name, ok := f.AString()
			if !ok || name == "" {
				return sec, syntaxErr("invalid header field name")
			}
			sec.Fields = append(sec.Fields, name)
		}
		return sec, nil
	default:
		return sec, syntaxErr("unknown section text %q", spec)
	}
	if len(toks) != 1 {
		return sec, syntaxErr("unexpected tokens in section")
	}
	return sec, nil
}

// splitPart splits "1.2.HEADER" into [1 2] and "HEADER":
// section-part = nz-number *("." nz-number).
func splitPart(s string) ([]uint32, string, error) {
	var parts []uint32
	for s != "" && s[0] >= '0' && s[0] <= '9' {
		num, rest, _ := strings.Cut(s, ".")
		n, err := parseSeqNumber(num)
		if err != nil {
			return nil, "", syntaxErr("invalid section part %q", num)
		}
		parts = append(parts, n)
		if rest == "" && strings.HasSuffix(s, ".") {
			return nil, "", syntaxErr("section ends with a dot")
		}
		s = rest
	}
	return parts, s, nil
}

func (fc *FetchCommand) parseModifiers(t Token) error {
	if t.Kind != KindList || len(t.List) == 0 {
		return syntaxErr("invalid fetch modifiers")
	}
	l := t.List
	for len(l) > 0 {
		name, ok := l[0].Atom(true)
		switch {
		case ok && name == "CHANGEDSINCE" && len(l) >= 2 && !fc.HasChangedSince:
			// chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value
			n, ok := l[1].Number64()
			if !ok || n == 0 {
				return syntaxErr("invalid CHANGEDSINCE value")
			}
			fc.ChangedSince, fc.HasChangedSince = n, true
			l = l[2:]
		case ok && name == "VANISHED" && !fc.Vanished:
			fc.Vanished = true
			l = l[1:]
		default:
			return syntaxErr("unknown fetch modifier")
		}
	}
	return nil
}
