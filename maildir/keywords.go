package maildir

// dovecot-keywords names the keyword slots a–z that file names carry:
//
//	<slot> <name>
//
// one line per defined slot, slot 0 being letter 'a'. Dovecot skips lines it
// cannot use, compares names case-insensitively, writes the file only while
// holding the uidlist lock (it writes dovecot-keywords.lock and renames it
// over the file), and makes the file's mtime grow on every write because it
// re-reads the file only when the mtime (in seconds) changed.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mailroom/internal/fsx"
)

// KeywordsName is the file naming keyword slots, next to new/ and cur/.
const KeywordsName = "dovecot-keywords"

// ErrTooManyKeywords is returned when all 26 slots are taken.
var ErrTooManyKeywords = errors.New("maildir: all 26 keyword slots are in use")

// ErrBadKeyword is returned for a name that cannot be an IMAP keyword.
var ErrBadKeyword = errors.New("maildir: invalid keyword name")

// KeywordList maps slots to names; "" is a free slot.
type KeywordList [MaxKeywords]string

// ParseKeywordList parses a dovecot-keywords file. Like Dovecot it never
// fails: lines without a space, with a slot outside 0–25 or an empty name
// are skipped, and a later line for a slot replaces an earlier one.
func ParseKeywordList(data []byte) KeywordList {
	var l KeywordList
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		num, name, ok := strings.Cut(strings.TrimRight(string(line), "\r"), " ")
		if !ok || name == "" {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n >= MaxKeywords {
			continue
		}
		l[n] = name
	}
	return l
}

// Marshal formats the list as Dovecot writes it.
func (l KeywordList) Marshal() []byte {
	var b bytes.Buffer
	for i, name := range l {
		if name != "" {
			fmt.Fprintf(&b, "%d %s\n", i, name)
		}
	}
	return b.Bytes()
}

// Slot returns the slot of name, compared case-insensitively (RFC 3501
// §2.3.2 makes keywords case-insensitive), or -1.
func (l KeywordList) Slot(name string) int {
	for i, n := range l {
		if n != "" && strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// Names returns the names of the slots set in k, in slot order; slots
// without a name are skipped.
func (l KeywordList) Names(k Keywords) []string {
	var names []string
	for i, n := range l {
		if k.Has(i) && n != "" {
			names = append(names, n)
		}
	}
	return names
}

// ValidKeyword reports whether name can be stored: an IMAP atom (RFC 3501
// §9 flag-keyword) that is not a system flag, and fits in the file format.
func ValidKeyword(name string) bool {
	if name == "" || len(name) > 200 || name[0] == '\\' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// keywordsFile caches dovecot-keywords, re-read when its mtime or size
// changes.
type keywordsFile struct {
	path  string
	list  KeywordList
	read  bool
	ino   uint64
	size  int64
	mtime time.Time
}

// refresh re-reads the file if it changed.
func (k *keywordsFile) refresh() error {
	var st syscall.Stat_t
	if err := syscall.Stat(k.path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			*k = keywordsFile{path: k.path, read: true}
			return nil
		}
		return fmt.Errorf("maildir: stat %s: %w", k.path, err)
	}
	mtime := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	if k.read && st.Ino == k.ino && st.Size == k.size && mtime.Equal(k.mtime) {
		return nil
	}
	data, err := os.ReadFile(k.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("maildir: %w", err)
	}
	k.list = ParseKeywordList(data)
	k.read, k.ino, k.size, k.mtime = true, st.Ino, st.Size, mtime
	return nil
}

// write replaces the file with list. The caller holds the uidlist lock,
// which is what serialises keyword writers (Dovecot relies on the same).
func (k *keywordsFile) write(list KeywordList) error {
	tmp := k.path + ".lock"
	data := list.Marshal()
	write := func(w io.Writer) error { _, err := w.Write(data); return err }
	if err := uidlistWriteSync(tmp, syncFileMode(filepath.Dir(k.path)), write); err != nil {
		return err
	}
	// Dovecot notices a change only if the mtime's seconds grew.
	mtime := time.Now()
	if old := k.mtime.Unix(); k.read && mtime.Unix() <= old {
		mtime = time.Unix(old+1, 0)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir: %w", err)
	}
	if err := os.Rename(tmp, k.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir: %w", err)
	}
	if err := fsx.SyncDir(filepath.Dir(k.path)); err != nil {
		return err
	}
	k.read = false // force a re-stat on next refresh
	k.list = list
	return k.refresh()
}
