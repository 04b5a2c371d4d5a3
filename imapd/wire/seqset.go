package wire

import (
	"strconv"
	"strings"
)

// SeqRange is one element of a sequence set; Start and Stop are in the
// order the client wrote them (RFC 9051 §9: "2:4" and "4:2" are the same
// range). 0 stands for "*", whose value the caller supplies.
type SeqRange struct {
	Start, Stop uint32
}

// SeqSet is a parsed sequence-set (RFC 9051 §9).
type SeqSet struct {
	Ranges []SeqRange
	// Saved is "$", the result saved by SEARCH RETURN (SAVE) (RFC 5182,
	// RFC 9051 §6.4.4.1); Ranges is then empty.
	Saved bool
}

// ParseSeqSet parses
//
//	sequence-set = (seq-number / seq-range) ["," sequence-set] / "$"
//	seq-range    = seq-number ":" seq-number
//	seq-number   = nz-number / "*"
//
// Numbers must fit nz-number (1..4294967295).
func ParseSeqSet(s string) (SeqSet, error) {
	if s == "$" {
		return SeqSet{Saved: true}, nil
	}
	if s == "" {
		return SeqSet{}, syntaxErr("empty sequence set")
	}
	var set SeqSet
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		start, err := parseSeqNumber(lo)
		if err != nil {
			return SeqSet{}, err
		}
		stop := start
		if isRange {
			if stop, err = parseSeqNumber(hi); err != nil {
				return SeqSet{}, err
			}
		}
		set.Ranges = append(set.Ranges, SeqRange{Start: start, Stop: stop})
	}
	return set, nil
}

func parseSeqNumber(s string) (uint32, error) {
	if s == "*" {
		return 0, nil
	}
	// nz-number = digit-nz *DIGIT: no leading zero.
	if !isDigits(s) || s[0] == '0' {
		return 0, syntaxErr("invalid sequence number %q", s)
	}
	n, ok := parseUint(s)
	if !ok || n > 0xffffffff {
		return 0, syntaxErr("sequence number %q out of range", s)
	}
	return uint32(n), nil
}

// ParseSeqSetToken parses a sequence set given as a token (a number or a
// bare sequence-set word).
func ParseSeqSetToken(t Token) (SeqSet, error) {
	if t.Kind != KindNumber && t.Kind != KindSeqSet {
		return SeqSet{}, syntaxErr("expected a sequence set, got %s", t.Kind)
	}
	return ParseSeqSet(t.Value)
}

// Dynamic reports whether the set uses "*".
func (s SeqSet) Dynamic() bool {
	for _, r := range s.Ranges {
		if r.Start == 0 || r.Stop == 0 {
			return true
		}
	}
	return false
}

// Contains reports whether n is in the set when "*" stands for star (the
// largest number in use). It is false for a Saved set, which the caller
// resolves.
func (s SeqSet) Contains(n, star uint32) bool {
	for _, r := range s.Ranges {
		lo, hi := r.Bounds(star)
		if lo <= n && n <= hi {
			return true
		}
	}
	return false
}

// Bounds returns the range in ascending order with "*" replaced by star.
func (r SeqRange) Bounds(star uint32) (lo, hi uint32) {
	lo, hi = r.Start, r.Stop
	if lo == 0 {
		lo = star
	}
	if hi == 0 {
		hi = star
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// String formats the set as it would appear on the wire.
func (s SeqSet) String() string {
	if s.Saved {
		return "$"
	}
	var b strings.Builder
	for i, r := range s.Ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(seqNumber(r.Start))
		if r.Stop != r.Start {
			b.WriteByte(':')
			b.WriteString(seqNumber(r.Stop))
		}
	}
	return b.String()
}

func seqNumber(n uint32) string {
	if n == 0 {
		return "*"
	}
	return strconv.FormatUint(uint64(n), 10)
}
