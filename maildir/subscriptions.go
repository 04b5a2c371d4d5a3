package maildir

// The subscriptions file at the root, in the layout Dovecot 2.3 reads and
// writes (src/lib-storage/list/subscription-file.c; checked against
// Dovecot 2.3.19 on this machine, which writes exactly this):
//
//	V<TAB>2<LF><LF>                 version 2 header
//	Lists<TAB>Go<LF>                one subscribed name per line
//	INBOX<LF>
//
// In version 2 the levels of a name are separated by a TAB, each level is
// the folder's storage name (modified UTF-7 for Maildir++), and TAB, CR,
// LF and \001 inside a level are written \001t, \001r, \001n and \0011.
// A file without the header is version 1 (Courier, older Dovecot): one
// name per line as the client spelled it; mailroom reads those with '/'
// as the separator and rewrites the file in version 2 on the next change.
//
// Changes are made under subscriptions.lock (a dot-lock, as Dovecot takes)
// and written to a temporary file renamed over the old one.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mailroom/internal/fsx"
)

// SubscriptionsName is the subscriptions file at the root.
const SubscriptionsName = "subscriptions"

// subsHeader is the version 2 header.
const subsHeader = "V\t2\n\n"

// Dovecot's SUBSCRIPTION_FILE_LOCK_TIMEOUT and _CHANGE_TIMEOUT.
const (
	subsLockTimeout = 120 * time.Second
	subsLockStale   = 30 * time.Second
)

// ReadSubscriptions returns the subscribed names, decoded to UTF-8 with "/"
// between levels, in file order without duplicates. Lines that cannot be
// the name of a folder (bad modified UTF-7) are left out. A missing file
// means no subscriptions.
func ReadSubscriptions(root string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(root, SubscriptionsName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("maildir: read subscriptions: %w", err)
	}
	var names []string
	seen := map[string]bool{}
	for _, line := range subsParse(data) {
		name, ok := subsDecodeLine(line)
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, nil
}

// Subscribe adds name to the subscriptions (IMAP SUBSCRIBE). The folder
// need not exist (RFC 3501 §6.3.6).
func Subscribe(root, name string) error { return subsUpdate(root, []string{name}, true) }

// Unsubscribe removes name from the subscriptions; a name that was not
// subscribed is not an error.
func Unsubscribe(root, name string) error { return subsUpdate(root, []string{name}, false) }

// subsParse returns the lines of a subscriptions file in version 2 form
// (TAB between levels, levels escaped), converting a version 1 file.
func subsParse(data []byte) []string {
	v2 := bytes.HasPrefix(data, []byte(subsHeader))
	if v2 {
		data = data[len(subsHeader):]
	}
	var lines []string
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		if v2 {
			lines = append(lines, string(line))
			continue
		}
		levels := strings.Split(string(line), "/")
		for i, l := range levels {
			levels[i] = subsEscape(l)
		}
		lines = append(lines, strings.Join(levels, "\t"))
	}
	return lines
}

// subsEncodeName is the version 2 line for a folder name.
func subsEncodeName(name string) (string, error) {
	if folderIsInbox(name) {
		return "INBOX", nil
	}
	dir, err := folderDirName(name) // validates and encodes: ".A.B"
	if err != nil {
		return "", err
	}
	levels := strings.Split(dir[1:], ".")
	for i, l := range levels {
		levels[i] = subsEscape(l)
	}
	return strings.Join(levels, "\t"), nil
}

// subsDecodeLine turns a version 2 line back into a UTF-8 name.
func subsDecodeLine(line string) (string, bool) {
	levels := strings.Split(line, "\t")
	for i, l := range levels {
		d, err := DecodeMUTF7(subsUnescape(l))
		if err != nil {
			return "", false
		}
		levels[i] = d
	}
	name := strings.Join(levels, "/")
	if folderIsInbox(name) {
		name = "INBOX"
	}
	return name, true
}

// subsEscape is Dovecot's str_append_tabescaped.
func subsEscape(s string) string {
	if !strings.ContainsAny(s, "\x01\t\r\n") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\x01':
			b.WriteString("\x011")
		case '\t':
			b.WriteString("\x01t")
		case '\r':
			b.WriteString("\x01r")
		case '\n':
			b.WriteString("\x01n")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// subsUnescape is Dovecot's str_append_tabunescaped: \001 followed by
// 1, t, r or n is the escaped byte; before anything else it is dropped.
func subsUnescape(s string) string {
	if !strings.Contains(s, "\x01") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\x01' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case '1':
			b.WriteByte('\x01')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// subsUpdate adds (add) or removes names, under the lock. The file is
// rewritten only if something changed.
func subsUpdate(root string, names []string, add bool) error {
	want := make([]string, 0, len(names))
	for _, n := range names {
		line, err := subsEncodeName(n)
		if err != nil {
			return err
		}
		want = append(want, line)
	}
	path := filepath.Join(root, SubscriptionsName)
	lock, err := fsx.CreateDotLock(path, fsx.DotLockOptions{Timeout: subsLockTimeout, StaleTimeout: subsLockStale})
	if err != nil {
		return fmt.Errorf("maildir: lock subscriptions: %w", err)
	}
	err = subsRewrite(path, want, add)
	if rerr := lock.Release(); rerr != nil && err == nil {
		err = fmt.Errorf("maildir: subscriptions: %w", rerr)
	}
	return err
}

// subsRewrite applies the change to the file at path; the caller holds the
// lock.
func subsRewrite(path string, want []string, add bool) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir: read subscriptions: %w", err)
	}
	lines := subsParse(data)
	changed := !bytes.HasPrefix(data, []byte(subsHeader)) && len(data) > 0
	present := map[string]bool{}
	for _, l := range lines {
		present[l] = true
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
	}
	var out []string
	for _, l := range lines {
		if !add && wanted[l] {
			changed = true
			continue
		}
		out = append(out, l)
	}
	if add {
		for _, w := range want {
			if !present[w] {
				out = append(out, w)
				present[w] = true
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	var b strings.Builder
	b.WriteString(subsHeader)
	for _, l := range out {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := fsx.WriteFileAtomic(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("maildir: write subscriptions: %w", err)
	}
	return nil
}
