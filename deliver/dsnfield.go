package deliver

// Encodings of values placed in DSN fields. A message/delivery-status
// body is 7-bit header-like text (RFC 3464 §2.1), and every value placed
// in it comes from a client or a peer: an address, an ORCPT, an ENVID or a
// reply. Each is reduced to printable ASCII, so that no value can end a
// field, forge one, or carry bytes the format does not allow.

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// dsnAddress is an address-type;address value (Final-Recipient,
// Original-Recipient). An address of printable ASCII is written as is with
// the given type; anything else becomes RFC 6533 §3 "utf-8" with every
// character outside QCHAR as \x{HEX}, which is printable ASCII and decodes
// back (decodeUTF8AddrXtext). Invalid UTF-8 bytes are written as
// U+FFFD, since the format cannot carry them.
func dsnAddress(typ, addr string) string {
	if typ == "" {
		typ = "rfc822"
	}
	if isPrintableASCII(addr) && isAtom(typ) && addr != "" {
		return typ + "; " + addr
	}
	return "utf-8; " + utf8AddrXtext(addr)
}

// dsnORcpt splits an ORCPT value ("addr-type;address", as the spool keeps
// it, xtext-decoded) for dsnAddress.
func dsnORcpt(orcpt string) string {
	typ, addr, _ := strings.Cut(orcpt, ";")
	return dsnAddress(strings.TrimSpace(typ), strings.TrimSpace(addr))
}

// isAtom reports whether s is a non-empty RFC 822 atom of letters, digits
// and '-' (every registered address type is).
func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isPrintableASCII reports whether s holds only 0x21-0x7e (no space: an
// address in a DSN field has none, and "a b" would read as two words).
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// utf8AddrXtext encodes s as RFC 6533 utf-8-addr-xtext: QCHAR (printable
// ASCII except '+', '=' and '\') stands for itself, everything else is
// \x{HEX} with the code point in upper-case hex, at least two digits.
func utf8AddrXtext(s string) string {
	var b strings.Builder
	for _, r := range s { // invalid bytes arrive as U+FFFD
		if isQChar(r) {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, "\\x{%02X}", r)
	}
	return b.String()
}

// isQChar reports whether r stands for itself in utf-8-addr-xtext.
func isQChar(r rune) bool {
	return r > ' ' && r < 0x7f && r != '+' && r != '=' && r != '\\'
}

// decodeUTF8AddrXtext reverses utf8AddrXtext, refusing anything it would
// not write.
func decodeUTF8AddrXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			if c <= ' ' || c >= 0x7f || c == '+' || c == '=' {
				return "", fmt.Errorf("utf-8-addr-xtext: byte %#x", c)
			}
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if !strings.HasPrefix(s[i:], `\x{`) || end < 0 {
			return "", fmt.Errorf("utf-8-addr-xtext: bad escape at %d", i)
		}
		hex := s[i+3 : i+end]
		n, err := strconv.ParseUint(hex, 16, 32)
		if err != nil || fmt.Sprintf("%02X", n) != hex || !utf8.ValidRune(rune(n)) || isQChar(rune(n)) {
			return "", fmt.Errorf("utf-8-addr-xtext: bad code point %q", hex)
		}
		b.WriteRune(rune(n))
		i += end + 1
	}
	return b.String(), nil
}

// maxFieldLine bounds a folded line of a DSN field; RFC 5322 §2.1.1 asks
// for 78 and allows 998.
const maxFieldLine = 78

// dsnText makes free text (a peer's reply, an error) fit a field value:
// control characters (CR, LF, TAB included) become spaces, non-ASCII
// characters \x{HEX} as in addresses, runs of spaces one space; the result
// is folded at spaces before maxFieldLine columns (the field name's width
// is indent) with eol and one space, and a word too long for a line is cut.
func dsnText(s string, indent int, eol string) string {
	var clean strings.Builder
	for _, r := range s {
		switch {
		case r < ' ' || r == 0x7f:
			clean.WriteByte(' ')
		case r >= 0x80:
			fmt.Fprintf(&clean, "\\x{%02X}", r)
		default:
			clean.WriteRune(r)
		}
	}
	var b strings.Builder
	col := indent
	for _, word := range strings.Fields(clean.String()) {
		for _, w := range chunks(word, maxFieldLine-indentLimit) {
			switch {
			case b.Len() == 0:
				// The first word follows "Name: " on the field's own line.
			case col+1+len(w) > maxFieldLine:
				b.WriteString(eol)
				col = 0
				b.WriteByte(' ')
				col++
			default:
				b.WriteByte(' ')
				col++
			}
			b.WriteString(w)
			col += len(w)
		}
	}
	return b.String()
}

// indentLimit is room kept for a field name before the first word, so a
// cut word always fits a line whole.
const indentLimit = 28

// chunks cuts s into pieces of at most n bytes (s is ASCII here).
func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}
