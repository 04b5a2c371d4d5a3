package alias

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIncludeDepth bounds nested :include: files.
const maxIncludeDepth = 8

// maxIncludeReads bounds the :include: files read by one load, the same
// file counting once per reference: files that include the next level many
// times would otherwise make the work exponential in the depth.
const maxIncludeReads = 10000

const includePrefix = ":include:"

// parseTarget parses one comma-separated item of a right-hand side. An
// empty item yields nothing (a trailing comma is harmless). includes is the
// chain of :include: files being read, empty in the aliases file itself.
func (inc *includeReader) parseTarget(raw string, from Source, includes []string) ([]Target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	verbatim := false
	if raw[0] == '\\' {
		verbatim, raw = true, raw[1:]
	}
	value, err := unquote(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: target %s: %w", from, raw, err)
	}
	kind := Address
	switch {
	case strings.HasPrefix(value, "|"):
		kind, value = Pipe, strings.TrimSpace(value[1:])
	case len(value) >= len(includePrefix) && strings.EqualFold(value[:len(includePrefix)], includePrefix):
		if verbatim {
			return nil, fmt.Errorf("%s: \\ before :include:", from)
		}
		return inc.readInclude(strings.TrimSpace(value[len(includePrefix):]), from, includes)
	case strings.HasPrefix(value, "/"):
		kind = File
	}
	if err := checkTarget(kind, value, verbatim, len(includes) > 0); err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	return []Target{{Kind: kind, Value: value, Verbatim: verbatim, From: from}}, nil
}

func checkTarget(kind Kind, value string, verbatim, included bool) error {
	if strings.ContainsRune(value, 0) {
		return fmt.Errorf("target %q contains NUL", value)
	}
	if verbatim && kind != Address {
		return fmt.Errorf("\\ before %s target %q", kind, value)
	}
	if included && kind != Address {
		// Postfix's allow_mail_to_commands/allow_mail_to_files defaults.
		return fmt.Errorf("%s target %q not allowed in an :include: file", kind, value)
	}
	switch kind {
	case Pipe:
		if value == "" {
			return fmt.Errorf("empty command after |")
		}
	case File:
		if filepath.Clean(value) == "/" {
			return fmt.Errorf("file target %q names no file", value)
		}
	case Address:
		return checkAddress(value)
	}
	return nil
}

// checkAddress accepts "local" or "local@domain" without blanks or
// control characters. Deeper checks (e.g. "..", '/') belong to the router,
// which refuses such addresses whatever their origin.
func checkAddress(a string) error {
	if i := strings.IndexFunc(a, func(r rune) bool { return unicode.IsSpace(r) || isControl(r) }); i >= 0 {
		return fmt.Errorf("address %q contains a blank or control character (separate targets with commas)", a)
	}
	at := strings.LastIndexByte(a, '@')
	switch {
	case a == "":
		return fmt.Errorf("empty address")
	case strings.Count(a, "@") > 1:
		return fmt.Errorf("address %q has more than one @", a)
	case at == 0:
		return fmt.Errorf("address %q has an empty local part", a)
	case at == len(a)-1:
		return fmt.Errorf("address %q has an empty domain", a)
	}
	return nil
}

// readInclude returns the targets listed in the :include: file path.
func (inc *includeReader) readInclude(path string, from Source, includes []string) ([]Target, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%s: :include: path %q is not absolute", from, path)
	}
	for _, p := range includes {
		if p == path {
			return nil, fmt.Errorf("%s: :include: loop: %s", from, strings.Join(append(includes, path), " -> "))
		}
	}
	if len(includes) >= maxIncludeDepth {
		return nil, fmt.Errorf("%s: :include: files nested deeper than %d", from, maxIncludeDepth)
	}
	if inc.reads++; inc.reads > maxIncludeReads {
		return nil, fmt.Errorf("%s: :include: more than %d include files read (an include of an include, many times over?)", from, maxIncludeReads)
	}
	f, err := inc.open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: :include: %w", from, err)
	}
	defer f.Close()
	lines, err := readLines(f, path)
	if err != nil {
		return nil, fmt.Errorf("%s: :include: %w", from, err)
	}
	chain := append(append([]string(nil), includes...), path)
	var out []Target
	for i, line := range lines {
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("%s: :include: %s:%d: invalid UTF-8", from, path, i+1)
		}
		text := strings.TrimSpace(line)
		if text == "" || text[0] == '#' {
			continue
		}
		for _, p := range splitOutsideQuotes(text, ',') {
			ts, err := inc.parseTarget(p.text, Source{File: path, Line: i + 1}, chain)
			if err != nil {
				return nil, fmt.Errorf("%s: :include: %w", from, err)
			}
			out = append(out, ts...)
		}
	}
	return out, nil
}
