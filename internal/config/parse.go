package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// maxLineLength bounds one line of the file; nothing legitimate comes near.
const maxLineLength = 64 << 10

// Load reads the file at path over Default(). Errors name path:line.
// A missing file is an error: a program told to use a file must not run on
// defaults silently.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a mailroom.conf from r over Default(); name is used in error
// messages ("name:line: ...").
func Parse(r io.Reader, name string) (*Config, error) {
	c := Default()
	p := parser{name: name, seen: make(map[string]int)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLength)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(c, sc.Text()); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, p.line+1, maxLineLength)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// parser is the state carried from line to line.
type parser struct {
	name    string
	line    int
	section string
	seen    map[string]int // "section\x00key" -> line it was set on
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", p.name, p.line, fmt.Sprintf(format, args...))
}

func (p *parser) parseLine(c *Config, raw string) error {
	if !utf8.ValidString(raw) {
		return p.errorf("invalid UTF-8")
	}
	line := strings.TrimSpace(raw)
	switch {
	case line == "" || line[0] == '#':
		return nil
	case line[0] == '[':
		return p.parseSection(line)
	}
	name, value, ok := strings.Cut(line, "=")
	if !ok {
		return p.errorf("want \"key = value\" or \"[section]\", got %q", line)
	}
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	k, err := p.lookup(name)
	if err != nil {
		return err
	}
	id := p.section + "\x00" + name
	if first, dup := p.seen[id]; dup {
		return p.errorf("duplicate key %q (first set at line %d)", name, first)
	}
	p.seen[id] = p.line
	if err := k.set(c, value); err != nil {
		return fmt.Errorf("%s:%d: %s: %w", p.name, p.line, name, err)
	}
	return nil
}

func (p *parser) parseSection(line string) error {
	if !strings.HasSuffix(line, "]") {
		return p.errorf("unterminated section header %q", line)
	}
	s := strings.TrimSpace(line[1 : len(line)-1])
	if s == "" || !isSection(s) {
		return p.errorf("unknown section [%s] (known: deliver, smtpd, imapd, pop3d, sendmail)", s)
	}
	p.section = s
	return nil
}

// lookup finds the key name in the current section, or explains why not.
func (p *parser) lookup(name string) (key, error) {
	if name == "" {
		return key{}, p.errorf("empty key name")
	}
	if k, ok := findKey(p.section, name); ok {
		return k, nil
	}
	home, known := homeOf(name)
	switch {
	case !known:
		return key{}, p.errorf("unknown key %q%s", name, inSection(p.section))
	case home == sectionCommon:
		return key{}, p.errorf("key %q belongs at the top of the file, before any section", name)
	default:
		return key{}, p.errorf("key %q belongs in [%s], not%s", name, home, orTop(p.section))
	}
}

func inSection(s string) string {
	if s == sectionCommon {
		return ""
	}
	return " in [" + s + "]"
}

func orTop(s string) string {
	if s == sectionCommon {
		return " at the top of the file"
	}
	return " in [" + s + "]"
}
