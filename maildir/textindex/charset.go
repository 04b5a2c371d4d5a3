package textindex

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// charsetKind is how the octets of a text part become UTF-8.
type charsetKind uint8

const (
	// charsetRaw keeps the octets: UTF-8, US-ASCII and every charset this
	// package does not know (their text is matched as stored).
	charsetRaw charsetKind = iota
	charsetLatin1
	charsetWindows1252
)

// charsetOf names the conversion for a charset parameter. Windows-1252 is
// a superset of ISO-8859-1's printable range and senders mislabel one as
// the other, but the C1 range differs, so each gets its own table (WHATWG
// maps both labels to windows-1252; we keep ISO-8859-1's C1 controls, as
// the label asks).
func charsetOf(name string) charsetKind {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "iso-8859-1", "iso_8859-1", "latin1", "l1", "iso8859-1", "cp819", "ibm819":
		return charsetLatin1
	case "windows-1252", "cp1252", "x-cp1252":
		return charsetWindows1252
	}
	return charsetRaw
}

// cp1252High is Windows-1252's 0x80–0x9F; 0 marks an unassigned octet,
// which is kept as its Latin-1 code point (as Windows' own converter does).
var cp1252High = [32]rune{
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
}

// toUTF8 appends src converted from a single-octet charset to dst.
func toUTF8(dst, src []byte, cs charsetKind) []byte {
	for _, c := range src {
		r := rune(c)
		if c >= 0x80 && c < 0xA0 && cs == charsetWindows1252 && cp1252High[c-0x80] != 0 {
			r = cp1252High[c-0x80]
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// folder lowers text, as both the index and every match see it: ASCII
// letters by table, other valid UTF-8 with unicode.ToLower rune by rune;
// octets that are not valid UTF-8 stay as they are. A rune split across
// two calls is held back until the next one completes it.
type folder struct {
	carry [utf8.UTFMax]byte
	n     int
}

// fold appends the lowered form of src to dst; the result over any split
// of a text into calls is the same as foldRunes of the whole text.
func (f *folder) fold(dst, src []byte) []byte {
	for f.n > 0 && len(src) > 0 {
		f.carry[f.n] = src[0]
		f.n++
		src = src[1:]
		if utf8.FullRune(f.carry[:f.n]) {
			dst = foldRunes(dst, f.carry[:f.n])
			f.n = 0
		}
	}
	if tail := incompleteTail(src); tail > 0 {
		f.n = copy(f.carry[:], src[len(src)-tail:])
		src = src[:len(src)-tail]
	}
	return foldRunes(dst, src)
}

// flush appends whatever rune fragment is held (as raw octets).
func (f *folder) flush(dst []byte) []byte {
	dst = append(dst, f.carry[:f.n]...)
	f.n = 0
	return dst
}

// incompleteTail returns the length of a UTF-8 sequence cut off at the end
// of b (0 when the end is a complete rune or invalid octets).
func incompleteTail(b []byte) int {
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return 0
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return i
			}
			return 0
		}
	}
	return 0
}

// foldRunes lowers complete text.
func foldRunes(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size <= 1 {
			dst = append(dst, c)
			i++
			continue
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		i += size
	}
	return dst
}

// Fold returns s lowered as the index sees text: the form a search string
// must have before it is matched.
func Fold(s []byte) []byte {
	return foldRunes(make([]byte, 0, len(s)), s)
}
