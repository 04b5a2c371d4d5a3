// Package alias reads mailroom's aliases file, /etc/mailroom/aliases:
// aliases(5) syntax with user@domain forms, loaded whole into memory so that
// routing decisions (internal/route) are pure look-ups.
//
// The file contract:
//
//	# comment                     a line whose first non-blank character is '#'
//	name: target, target, ...     an alias
//	    target, ...               a line starting with a blank continues the alias above
//
// The name (left-hand side), lower-cased, is one of
//
//	local          a bare name: applies in every hosted domain
//	local@domain   one address
//	@domain        the catch-all of a domain
//
// and may be written in double quotes to hold characters such as ':' or
// blanks. Targets are separated by commas; double quotes protect commas and
// blanks, and "\" escapes the next character inside quotes. A target is
//
//	local or local@domain   an address (a bare local part stays in the domain
//	                        of the address being expanded; internal/route
//	                        decides that)
//	\local                  an address that is not aliased further (sendmail's
//	                        rule): the mailbox of that user
//	|command                a command fed the message (Kind Pipe); blanks after
//	                        '|' need no quotes, commas do
//	/path/file              a file the message is appended to (Kind File)
//	:include:/path          the targets listed in that file, same syntax as a
//	                        right-hand side (one or more per line, comments
//	                        allowed); an include may include others
//
// Pipe and file targets are recorded here whatever the configuration says;
// internal/route refuses them unless allow_pipe_targets/allow_file_targets
// are set. Inside an :include: file they are an error, as in Postfix's
// default (allow_mail_to_commands = alias, forward): whoever may edit a
// mailing list file must not gain a way to run commands.
//
// An :include: file may be empty (a list with no members yet); an alias
// whose includes are all empty is found with no targets, and the router
// refuses mail to it rather than dropping it.
//
// Include files are read when the table is loaded, not at delivery time:
// edit one, then reload (as after newaliases). A missing include file, an
// include loop, includes nested deeper than 8, more than 10,000 include
// files read in one load (each reference counts: a fan-out of includes must
// not make loading exponential), a name defined twice or a malformed line
// is an error that names file:line. A missing aliases file is not an error: it is an empty
// table, because a fresh installation has no aliases and mail must still
// flow.
package alias

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// Kind says what a target is.
type Kind string

const (
	Address Kind = "address" // a mail address or bare local part
	Pipe    Kind = "pipe"    // a command, Value without the leading '|'
	File    Kind = "file"    // an absolute file path
)

// Target is one expansion of an alias.
type Target struct {
	Kind  Kind
	Value string
	// Verbatim marks "\name": deliver to that mailbox without further
	// alias expansion.
	Verbatim bool
	// From is where the target was written: the aliases file, or the
	// :include: file it came from.
	From Source
}

// Source locates a definition.
type Source struct {
	File string
	Line int
}

func (s Source) String() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

// entry is one alias: its targets and the line of its name.
type entry struct {
	targets []Target
	source  Source
}

// Table is a loaded aliases file. The zero value and nil are empty tables.
// A Table is never modified after loading, so concurrent look-ups are safe.
type Table struct {
	entries map[string]entry
}

// Load reads the aliases file at path. A file that does not exist yields an
// empty table and no error (see the package doc).
func Load(path string) (*Table, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Table{entries: map[string]entry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("aliases: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// Lookup returns the targets of the alias named key (compared in lower
// case: "user@domain", "user" or "@domain"), where it was defined, and
// whether it exists. The returned slice is a copy.
func (t *Table) Lookup(key string) ([]Target, Source, bool) {
	if t == nil {
		return nil, Source{}, false
	}
	e, ok := t.entries[strings.ToLower(key)]
	if !ok {
		return nil, Source{}, false
	}
	return append([]Target(nil), e.targets...), e.source, true
}

// Len returns the number of aliases.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Names returns every alias name, sorted (for newaliases and listings).
func (t *Table) Names() []string {
	if t == nil {
		return nil
	}
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
