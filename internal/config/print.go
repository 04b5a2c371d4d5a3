package config

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Print writes every key of c with its effective value, in the file's own
// syntax and grouped by section, so that Parse of the output yields c again
// (what --print-config shows). Unlike postconf -n it prints defaults too:
// the point is to show what a program will actually use. A value that the
// file syntax cannot carry (a newline, surrounding blanks, invalid UTF-8)
// is an error rather than a file that would read back differently.
func Print(w io.Writer, c *Config) error {
	bw := bufio.NewWriter(w)
	current := sectionCommon
	for _, k := range keys {
		v := k.get(c)
		if err := printable(k, v); err != nil {
			return err
		}
		if k.section != current {
			fmt.Fprintf(bw, "\n[%s]\n", k.section)
			current = k.section
		}
		if v == "" {
			fmt.Fprintf(bw, "%s =\n", k.name)
		} else {
			fmt.Fprintf(bw, "%s = %s\n", k.name, v)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	return nil
}

func printable(k key, v string) error {
	if !utf8.ValidString(v) || strings.ContainsAny(v, "\r\n\x00") || strings.TrimSpace(v) != v {
		return fmt.Errorf("print config: %s: value %q cannot be written to the file", k.name, v)
	}
	return nil
}
