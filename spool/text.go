package spool

// The text conventions shared by the envelope and state files: "key value"
// lines, percent-encoded values, canonical times.

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrSyntax is wrapped by every parse error of an envelope or state file.
var ErrSyntax = errors.New("spool: syntax error")

// maxLine bounds one line of an envelope or state file. An address is at
// most 256 octets (RFC 5321 §4.5.3.1.3); tripled by escaping and joined by
// an ORCPT it stays well below.
const maxLine = 8192

// rawByte reports whether ASCII byte c stands for itself in a value.
func rawByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '%'
}

// encodeValue percent-encodes s: printable ASCII other than '%' and
// printable non-ASCII UTF-8 characters stay as they are (an SMTPUTF8
// address stays readable with cat); every other byte, including space, CR,
// LF, NUL, C1 controls and invalid UTF-8, becomes %XX.
func encodeValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if rawByte(c) {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError && unicode.IsPrint(r) {
			b.WriteString(s[i : i+n])
		} else {
			for j := 0; j < n; j++ {
				fmt.Fprintf(&b, "%%%02X", s[i+j])
			}
		}
		i += n
	}
	return b.String()
}

// decodeValue reverses encodeValue and insists on its canonical form, so
// that each value has exactly one spelling in a file.
func decodeValue(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty value", ErrSyntax)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) || !upperHex(s[i+1]) || !upperHex(s[i+2]) {
			return "", fmt.Errorf("%w: bad escape in %q", ErrSyntax, s)
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	v := b.String()
	if encodeValue(v) != s {
		return "", fmt.Errorf("%w: value %q is not in canonical form", ErrSyntax, s)
	}
	return v, nil
}

func upperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	if c >= 'A' {
		return c - 'A' + 10
	}
	return c - '0'
}

// formatTime writes t in UTC, RFC 3339 with as many fractional digits as
// needed: one spelling per instant.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// parseTime reads a formatTime value and refuses any other spelling.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q: %v", ErrSyntax, s, err)
	}
	if formatTime(t) != s {
		return time.Time{}, fmt.Errorf("%w: time %q is not canonical UTC", ErrSyntax, s)
	}
	return t.UTC(), nil
}

// splitLines checks the file-level rules (LF only, no NUL, bounded lines,
// a final LF) and returns the lines without their LFs.
func splitLines(data []byte) ([]string, error) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: missing final newline", ErrSyntax)
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	for i, l := range lines {
		if len(l) > maxLine {
			return nil, fmt.Errorf("%w: line %d longer than %d bytes", ErrSyntax, i+1, maxLine)
		}
		if strings.ContainsAny(l, "\r\x00") {
			return nil, fmt.Errorf("%w: line %d: CR or NUL", ErrSyntax, i+1)
		}
	}
	return lines, nil
}

// splitFields splits a line at single spaces and refuses empty fields
// (double, leading or trailing spaces).
func splitFields(line string) ([]string, error) {
	f := strings.Split(line, " ")
	for _, x := range f {
		if x == "" {
			return nil, fmt.Errorf("%w: stray space in %q", ErrSyntax, line)
		}
	}
	return f, nil
}

// splitParam splits "name=value" with a non-empty name.
func splitParam(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return "", "", fmt.Errorf("%w: parameter %q is not name=value", ErrSyntax, s)
	}
	return name, value, nil
}
