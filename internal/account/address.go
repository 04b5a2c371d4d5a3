package account

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// RFC 5321 §4.5.3.1.1 and §4.5.3.1.2: size limits of the two parts.
const (
	maxLocalPart = 64
	maxDomain    = 255
)

// ValidAddress reports whether a is usable as a mailroom account name: one
// '@' between a non-empty local part and a non-empty domain. Because the
// parts become directory names under the mail root and the whole name is a
// passwd-file field, it refuses '/', ':', NUL, control characters, spaces,
// "..", a leading '.' in either part, a trailing '.' in the domain, a
// leading '#' (a comment line) and invalid UTF-8.
func ValidAddress(a string) error {
	if a == "" {
		return errors.New("empty address")
	}
	if !utf8.ValidString(a) {
		return fmt.Errorf("address %q: invalid UTF-8", a)
	}
	at := strings.IndexByte(a, '@')
	if at < 0 {
		return fmt.Errorf("address %q: missing @domain", a)
	}
	local, domain := a[:at], a[at+1:]
	if strings.IndexByte(domain, '@') >= 0 {
		return fmt.Errorf("address %q: more than one @", a)
	}
	if err := validPart("local part", local, maxLocalPart); err != nil {
		return fmt.Errorf("address %q: %w", a, err)
	}
	if err := validPart("domain", domain, maxDomain); err != nil {
		return fmt.Errorf("address %q: %w", a, err)
	}
	if strings.HasSuffix(domain, ".") {
		return fmt.Errorf("address %q: domain ends with '.'", a)
	}
	if local[0] == '#' {
		return fmt.Errorf("address %q: starts with '#'", a)
	}
	return nil
}

func validPart(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case len(s) > max:
		return fmt.Errorf("%s longer than %d bytes", what, max)
	case s[0] == '.':
		return fmt.Errorf("%s starts with '.'", what)
	case strings.Contains(s, ".."):
		return fmt.Errorf("%s contains \"..\"", what)
	}
	for _, r := range s {
		switch {
		case r == '/', r == ':', r == '\\':
			return fmt.Errorf("%s contains %q", what, r)
		case r == ' ', r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			return fmt.Errorf("%s contains control or space character %q", what, r)
		}
	}
	return nil
}

// normalize is the key under which an address is stored and looked up:
// Dovecot's %Lu, the whole name lower-cased.
func normalize(a string) string { return strings.ToLower(a) }

// splitAddress returns the local part and the domain of a valid address.
func splitAddress(a string) (local, domain string) {
	at := strings.LastIndexByte(a, '@')
	return a[:at], a[at+1:]
}
