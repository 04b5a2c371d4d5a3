package alias

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLineLength bounds one physical line; a mailing list can be long, but
// not this long.
const maxLineLength = 1 << 20

// Parse reads an aliases file from r; name is used in error messages and
// in each Source. :include: files named in it are read from disk now.
func Parse(r io.Reader, name string) (*Table, error) {
	return parse(r, name, openFile)
}

// opener opens an :include: file; tests replace it to keep the fuzzer off
// the real file system.
type opener func(path string) (io.ReadCloser, error)

func openFile(path string) (io.ReadCloser, error) { return os.Open(path) }

// includeReader reads the :include: files of one load and counts them
// against maxIncludeReads.
type includeReader struct {
	open  opener
	reads int
}

func parse(r io.Reader, name string, open opener) (*Table, error) {
	lines, err := readLines(r, name)
	if err != nil {
		return nil, err
	}
	t := &Table{entries: map[string]entry{}}
	inc := &includeReader{open: open}
	var cur *logicalLine
	for i, raw := range lines {
		n := i + 1
		if !utf8.ValidString(raw) {
			return nil, fmt.Errorf("%s:%d: invalid UTF-8", name, n)
		}
		text := strings.TrimSpace(raw)
		if text == "" || text[0] == '#' {
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: continuation line with no alias above it", name, n)
			}
			cur.add(n, text)
			continue
		}
		if err := t.addEntry(cur, inc); err != nil {
			return nil, err
		}
		cur = &logicalLine{file: name}
		cur.add(n, text)
	}
	if err := t.addEntry(cur, inc); err != nil {
		return nil, err
	}
	return t, nil
}

// readLines splits r into lines without their line ends (LF or CRLF).
func readLines(r io.Reader, name string) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLength)
	for sc.Scan() {
		lines = append(lines, strings.TrimSuffix(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, len(lines)+1, maxLineLength)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return lines, nil
}

// logicalLine is one alias: its first line and its continuation lines,
// joined by a blank, remembering which physical line each byte came from.
type logicalLine struct {
	file   string
	text   string
	starts []int // offset in text where each segment starts
	lines  []int // physical line number of each segment
}

func (l *logicalLine) add(line int, text string) {
	if l.text != "" {
		l.text += " "
	}
	l.starts = append(l.starts, len(l.text))
	l.lines = append(l.lines, line)
	l.text += text
}

// source returns where the byte at offset off was written.
func (l *logicalLine) source(off int) Source {
	line := l.lines[0]
	for i, s := range l.starts {
		if s <= off {
			line = l.lines[i]
		}
	}
	return Source{File: l.file, Line: line}
}

func (l *logicalLine) errorf(off int, format string, args ...any) error {
	return fmt.Errorf("%s: %s", l.source(off), fmt.Sprintf(format, args...))
}

// addEntry parses "name: targets" and records it; nil is a no-op.
func (t *Table) addEntry(l *logicalLine, inc *includeReader) error {
	if l == nil {
		return nil
	}
	colon := indexOutsideQuotes(l.text, ':')
	if colon < 0 {
		return l.errorf(0, "want \"name: target, ...\", got %q", l.text)
	}
	name, err := parseName(l.text[:colon])
	if err != nil {
		return l.errorf(0, "%v", err)
	}
	src := l.source(0)
	if prev, dup := t.entries[name]; dup {
		return l.errorf(0, "alias %q already defined at %s", name, prev.source)
	}
	targets := []Target{}
	written := 0
	for _, p := range splitOutsideQuotes(l.text[colon+1:], ',') {
		if strings.TrimSpace(p.text) != "" {
			written++
		}
		// Locate the target by its first non-blank byte: the blank
		// before it may belong to the previous physical line.
		off := colon + 1 + p.off + len(p.text) - len(strings.TrimLeftFunc(p.text, unicode.IsSpace))
		ts, err := inc.parseTarget(p.text, l.source(off), nil)
		if err != nil {
			return err
		}
		targets = append(targets, ts...)
	}
	// An :include: file may be empty (a mailing list with no members
	// yet); an alias with nothing written after the colon is a mistake.
	if written == 0 {
		return l.errorf(0, "alias %q has no targets", name)
	}
	t.entries[name] = entry{targets: targets, source: src}
	return nil
}

// parseName validates and lower-cases a left-hand side.
func parseName(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw != "" && raw[0] != '"' && strings.IndexFunc(raw, unicode.IsSpace) >= 0 {
		return "", fmt.Errorf("alias name %q contains a blank (quote it)", raw)
	}
	name, err := unquote(raw)
	if err != nil {
		return "", fmt.Errorf("alias name %s: %w", raw, err)
	}
	name = strings.ToLower(name)
	if name == "" {
		return "", errors.New("empty alias name")
	}
	if i := strings.IndexFunc(name, isControl); i >= 0 {
		return "", fmt.Errorf("alias name %q contains a control character", name)
	}
	switch at := strings.LastIndexByte(name, '@'); {
	case strings.Count(name, "@") > 1:
		return "", fmt.Errorf("alias name %q has more than one @", name)
	case at == len(name)-1:
		return "", fmt.Errorf("alias name %q has an empty domain", name)
	}
	return name, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// piece is a part of a string split at a separator, with its offset.
type piece struct {
	text string
	off  int
}

// splitOutsideQuotes splits s at each sep that is not inside double quotes.
func splitOutsideQuotes(s string, sep byte) []piece {
	var out []piece
	start := 0
	for {
		i := indexOutsideQuotes(s[start:], sep)
		if i < 0 {
			return append(out, piece{s[start:], start})
		}
		out = append(out, piece{s[start : start+i], start})
		start += i + 1
	}
}

// indexOutsideQuotes is strings.IndexByte ignoring bytes between double
// quotes (a backslash inside quotes escapes the next byte).
func indexOutsideQuotes(s string, c byte) int {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch {
		case inQuote && s[i] == '\\':
			i++
		case s[i] == '"':
			inQuote = !inQuote
		case !inQuote && s[i] == c:
			return i
		}
	}
	return -1
}

// unquote removes double quotes anywhere in s, resolving "\x" escapes
// inside them; outside quotes a backslash is an ordinary character.
func unquote(s string) (string, error) {
	if strings.IndexByte(s, '"') < 0 {
		return s, nil
	}
	var b strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			inQuote = !inQuote
		case inQuote && c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	if inQuote {
		return "", errors.New("unterminated quote")
	}
	return b.String(), nil
}
