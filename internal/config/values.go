package config

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// parseList splits a list value on commas and blanks; empty items vanish,
// so "a, b", "a b" and "a,b," are the same list and "" is the empty list.
func parseList(v string) []string {
	items := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	if items == nil {
		return []string{}
	}
	return items
}

// Size suffixes are powers of 1024, as in Dovecot's and Postfix's docs.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"G", 1 << 30},
	{"M", 1 << 20},
	{"k", 1 << 10},
}

// ParseSize reads a size as mailroom.conf writes it: a non-negative byte
// count with an optional k, M or G suffix (either case), powers of 1024, so
// "500" is 500 bytes and "2G" is 2147483648. The admin command reads its
// --quota with it, so that a quota means the same on the command line as
// in the file.
func ParseSize(v string) (int64, error) {
	num, mult := v, int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(strings.ToLower(v), strings.ToLower(u.suffix)) {
			num, mult = v[:len(v)-1], u.mult
			break
		}
	}
	n, err := parseCount(num)
	if err != nil {
		return 0, fmt.Errorf("bad size %q (want a number with optional k, M or G)", v)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q too large", v)
	}
	return n * mult, nil
}

// FormatSize prints n with the largest suffix that divides it exactly, so
// that Print shows "50M" rather than 52428800; ParseSize reads it back to
// n. A size no suffix divides (and 0) is printed as plain bytes.
func FormatSize(n int64) string {
	if n > 0 {
		for _, u := range sizeUnits {
			if n%u.mult == 0 {
				return strconv.FormatInt(n/u.mult, 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

// parseCount reads a non-negative decimal integer (digits only: no sign,
// no spaces, no 0x).
func parseCount(v string) (int64, error) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, fmt.Errorf("bad number %q", v)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad number %q: %w", v, err)
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("bad boolean %q (want yes or no)", v)
}

func formatBool(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("bad value %q (want one of %s)", v, strings.Join(allowed, ", "))
	}
}

func checkAbsPath(v string) error {
	switch {
	case v == "":
		return errors.New("empty path")
	case !filepath.IsAbs(v):
		return fmt.Errorf("path %q is not absolute", v)
	case strings.ContainsRune(v, 0):
		return fmt.Errorf("path %q contains NUL", v)
	}
	return nil
}

// checkHostname is deliberately loose: the name only has to be usable in a
// Maildir file name (which escapes '/' and ':') and a greeting line.
func checkHostname(v string) error {
	if v == "" {
		return errors.New("empty hostname")
	}
	for _, r := range v {
		if r <= ' ' || r == 0x7f || r == '/' {
			return fmt.Errorf("hostname %q contains %q", v, r)
		}
	}
	return nil
}

// checkDomains requires lower-case DNS names (RFC 1035 §2.3.1 letters,
// digits and hyphens, labels of 1-63 octets, 253 in all), because each
// becomes a directory name under mail_root and a key compared byte-wise.
func checkDomains(list []string) error {
	seen := make(map[string]bool, len(list))
	for _, d := range list {
		if err := checkDomain(d); err != nil {
			return err
		}
		if seen[d] {
			return fmt.Errorf("domain %q listed twice", d)
		}
		seen[d] = true
	}
	return nil
}

func checkDomain(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("bad domain %q: length must be 1-253", d)
	}
	if d != strings.ToLower(d) {
		return fmt.Errorf("bad domain %q: must be lower-case", d)
	}
	for _, label := range strings.Split(d, ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("bad domain %q: %w", d, err)
		}
	}
	return nil
}

func checkLabel(l string) error {
	if l == "" || len(l) > 63 {
		return errors.New("each label must be 1-63 characters")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return errors.New("a label may not start or end with '-'")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	return nil
}

// checkDelimiter accepts ASCII punctuation only: a letter or digit would
// split ordinary names, and '@', '.', '/', '\', '"' and ',' have meanings
// of their own in addresses, paths and lists.
func checkDelimiter(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`@./\",`, c) >= 0 ||
			c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return fmt.Errorf("bad recipient_delimiter %q: %q not allowed", v, c)
		}
	}
	return nil
}
