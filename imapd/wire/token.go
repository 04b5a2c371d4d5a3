package wire

import (
	"strconv"
	"strings"
)

// Kind is the lexical kind of a Token.
type Kind uint8

const (
	// KindAtom is a bare word that is neither a number, a sequence set nor
	// NIL: command words, flags (\Seen), keywords, list patterns (with % and
	// *), unquoted astrings.
	KindAtom Kind = iota + 1
	// KindNumber is a bare word of digits that fits in a uint64; Num holds it.
	KindNumber
	// KindSeqSet is a bare word of digits, ':', ',', '*' and '$' that is not
	// a plain number ("1:4,7", "*", "$"); parse it with ParseSeqSet.
	KindSeqSet
	// KindQuoted is a quoted string, Value unescaped.
	KindQuoted
	// KindLiteral is a literal; Value holds its data.
	KindLiteral
	// KindNIL is the bare word NIL in any case.
	KindNIL
	// KindList is a parenthesised list; List holds its elements.
	KindList
	// KindSection is a word with a bracketed part, BODY[...]<p.n>: Value
	// is the word before "[" as sent, List the tokens inside the brackets,
	// Partial the optional <offset.count>.
	KindSection
)

var kindNames = [...]string{"?", "atom", "number", "sequence set", "quoted string", "literal", "NIL", "list", "section"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Partial is the <offset.count> suffix of a section (RFC 9051 §6.4.5).
type Partial struct {
	Offset uint64
	// Count is the octet count; HasCount is false for the "<offset>" form
	// a server uses in responses.
	Count    uint64
	HasCount bool
}

// Token is one element of a command's argument tree.
type Token struct {
	Kind  Kind
	Value string
	Num   uint64
	// Sync and Binary describe a literal: Sync for {n}, false for {n+};
	// Binary for ~{n} (RFC 3516 literal8).
	Sync    bool
	Binary  bool
	List    []Token
	Partial *Partial
}

// IsString reports whether the token is a quoted string or a literal.
func (t Token) IsString() bool { return t.Kind == KindQuoted || t.Kind == KindLiteral }

// isBare reports whether the token is a bare word (atom, number, set, NIL).
func (t Token) isBare() bool {
	switch t.Kind {
	case KindAtom, KindNumber, KindSeqSet, KindNIL:
		return true
	}
	return false
}

// AString returns the value of an astring (RFC 9051 §9: 1*ASTRING-CHAR /
// string). Literal8 is not a string and is refused.
func (t Token) AString() (string, bool) {
	switch t.Kind {
	case KindQuoted:
		return t.Value, true
	case KindLiteral:
		return t.Value, !t.Binary
	case KindAtom, KindNumber, KindSeqSet, KindNIL:
		// "1:2" lexes as a sequence set yet is an atom too.
		return t.Value, isAString(t.Value)
	}
	return "", false
}

// String returns the value of a string (quoted or literal, not literal8).
func (t Token) String() (string, bool) {
	if t.Kind == KindQuoted || (t.Kind == KindLiteral && !t.Binary) {
		return t.Value, true
	}
	return "", false
}

// NString returns an nstring: ok with isNil true for NIL.
func (t Token) NString() (s string, isNil, ok bool) {
	if t.Kind == KindNIL {
		return "", true, true
	}
	s, ok = t.String()
	return s, false, ok
}

// Atom returns the text of an atom (ATOM-CHARs only), upper-cased when
// upper is true.
func (t Token) Atom(upper bool) (string, bool) {
	if !t.isBare() || !isAtom(t.Value) {
		return "", false
	}
	if upper {
		return strings.ToUpper(t.Value), true
	}
	return t.Value, true
}

// Number returns a number that fits in 32 bits (RFC 9051 "number").
func (t Token) Number() (uint32, bool) {
	if t.Kind != KindNumber || t.Num > 0xffffffff {
		return 0, false
	}
	return uint32(t.Num), true
}

// Number64 returns a number64 (RFC 9051: up to 2^63-1).
func (t Token) Number64() (uint64, bool) {
	if t.Kind != KindNumber || t.Num > 1<<63-1 {
		return 0, false
	}
	return t.Num, true
}

// Character classes of RFC 9051 §9.

func isCTL(c byte) bool { return c < 0x20 || c == 0x7f }

// isAtomChar: ATOM-CHAR = any CHAR except atom-specials.
func isAtomChar(c byte) bool {
	if c >= 0x80 || isCTL(c) {
		return false
	}
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// isAStringChar: ASTRING-CHAR = ATOM-CHAR / resp-specials.
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

// isListChar: list-char = ATOM-CHAR / list-wildcards / resp-specials.
func isListChar(c byte) bool { return isAStringChar(c) || c == '%' || c == '*' }

func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

func isAString(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAStringChar(s[i]) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
