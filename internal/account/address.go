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
// leading '#' (a comment line), invalid UTF-8, and ASCII punctuation in
// the domain other than '-', '.', '_' and an address literal's brackets.
func ValidAddress(a string) error {
	if err := addressProblem(a); err != nil {
		return fmt.Errorf("address %q: %w", a, err)
	}
	return nil
}

// addressProblem is ValidAddress's verdict without the address quoted, for
// passwd-file errors: a line missing a ':' has a hash in its user field.
func addressProblem(a string) error {
	if a == "" {
		return errors.New("empty address")
	}
	if !utf8.ValidString(a) {
		return errors.New("invalid UTF-8")
	}
	at := strings.IndexByte(a, '@')
	if at < 0 {
		return errors.New("missing @domain")
	}
	local, domain := a[:at], a[at+1:]
	if strings.IndexByte(domain, '@') >= 0 {
		return errors.New("more than one @")
	}
	if err := validPart("local part", local, maxLocalPart); err != nil {
		return err
	}
	if err := validPart("domain", domain, maxDomain); err != nil {
		return err
	}
	if i := strings.IndexFunc(domain, notDomainRune); i >= 0 {
		return fmt.Errorf("domain contains %q", domain[i])
	}
	if strings.HasSuffix(domain, ".") {
		return errors.New("domain ends with '.'")
	}
	if local[0] == '#' {
		return errors.New("starts with '#'")
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

// notDomainRune reports an ASCII character no domain holds: DNS names
// (RFC 1035 §2.3.1, plus '_' for service names), address literals in
// brackets (RFC 5321 §4.1.3) and non-ASCII (IDN) labels pass. Punctuation
// such as ';', '{', '$' or '=' is refused because it is what a passwd line
// shows when a mistyped ':' glues the hash to the address.
func notDomainRune(r rune) bool {
	if r >= 0x80 {
		return false
	}
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("-._[]", r))
}

// normalize is the key under which an address is stored and looked up:
// Dovecot's %Lu, the whole name lower-cased.
func normalize(a string) string { return strings.ToLower(a) }

// splitAddress returns the local part and the domain of a valid address.
func splitAddress(a string) (local, domain string) {
	at := strings.LastIndexByte(a, '@')
	return a[:at], a[at+1:]
}
