package maildir

// maildirsize, Courier's Maildir++ quota file, at the root of a Maildir:
//
//	10000000S,1000C     the definition: byte and message limits (either
//	                    part may be absent; 0 or absent = no limit)
//	4096 1              one line per change: bytes and messages, negative
//	-812 -1             for removals
//
// Usage is the sum of the change lines. Lines are appended with O_APPEND
// in a single write(2), so concurrent writers (deliver, imapd, pop3d, other
// Maildir++ programs) never interleave inside a line. The file is a cache
// of what the Maildir holds, never the truth: it is rebuilt by scanning
// new/ and cur/ of the root and of every folder except .Trash (sizes from
// ",S=" in names, else from stat) and written by temporary file + rename
// when it is missing, unparsable, 5120 bytes or larger, when the configured
// limits differ from its definition, or when it says "over quota" but may
// be stale (more than one change line, or older than 15 minutes). Because
// it is rebuilt from the messages, it is not fsync'd on append.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mailroom/internal/fsx"
)

// QuotaFileName is the Maildir++ quota file at the root.
const QuotaFileName = "maildirsize"

const (
	// quotaMaxFileSize: a file this large is rebuilt (Courier's 5120).
	quotaMaxFileSize = 5120
	// quotaStaleAge: an over-quota verdict from a file this old is
	// re-checked by a rebuild (Courier's 15 minutes).
	quotaStaleAge = 15 * time.Minute
	// quotaReadLimit bounds how much of a (corrupt, huge) file is read.
	quotaReadLimit = 64 << 10
	// quotaTrashDir is the one folder whose messages do not count.
	quotaTrashDir = ".Trash"
)

// quotaUsage is the content of a parsed maildirsize.
type quotaUsage struct {
	def          Quota
	bytes, count int64
	changes      int // number of change lines
}

// Unlimited reports whether q sets no limit at all.
func (q Quota) Unlimited() bool { return q.Bytes <= 0 && q.Messages <= 0 }

// String formats q as a maildirsize definition line, e.g. "1000S,10C".
func (q Quota) String() string {
	var parts []string
	if q.Bytes > 0 {
		parts = append(parts, strconv.FormatInt(q.Bytes, 10)+"S")
	}
	if q.Messages > 0 {
		parts = append(parts, strconv.FormatInt(q.Messages, 10)+"C")
	}
	return strings.Join(parts, ",")
}

// exceeded reports whether adding bytes and count to the usage would go
// over q (a limit of 0 is no limit).
func (q Quota) exceeded(usedBytes, usedCount, bytes, count int64) bool {
	return (q.Bytes > 0 && usedBytes+bytes > q.Bytes) ||
		(q.Messages > 0 && usedCount+count > q.Messages)
}

// quotaParse parses a maildirsize file. An error means the file must be
// rebuilt: a bad definition, a malformed or partial change line, or a sum
// that overflows.
func quotaParse(data []byte) (quotaUsage, error) {
	var u quotaUsage
	defLine, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return u, errors.New("maildirsize: no definition line")
	}
	def, err := quotaParseDef(string(defLine))
	if err != nil {
		return u, err
	}
	u.def = def
	for len(rest) > 0 {
		var line []byte
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return u, errors.New("maildirsize: partial last line")
		}
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue // Courier pads lines; a blank one adds nothing
		}
		if len(f) != 2 {
			return u, fmt.Errorf("maildirsize: bad line %q", line)
		}
		b, err1 := strconv.ParseInt(f[0], 10, 64)
		c, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return u, fmt.Errorf("maildirsize: bad line %q", line)
		}
		if (b > 0 && u.bytes > maxInt64-b) || (b < 0 && u.bytes < minInt64-b) ||
			(c > 0 && u.count > maxInt64-c) || (c < 0 && u.count < minInt64-c) {
			return u, errors.New("maildirsize: usage overflows")
		}
		u.bytes += b
		u.count += c
		u.changes++
	}
	return u, nil
}

const (
	maxInt64 = 1<<63 - 1
	minInt64 = -1 << 63
)

// quotaParseDef parses "<bytes>S,<count>C" (either part optional).
func quotaParseDef(line string) (Quota, error) {
	var q Quota
	line = strings.TrimSpace(line)
	if line == "" {
		return q, nil
	}
	for _, part := range strings.Split(line, ",") {
		if len(part) < 2 {
			return q, fmt.Errorf("maildirsize: bad definition %q", line)
		}
		n, err := strconv.ParseInt(part[:len(part)-1], 10, 64)
		if err != nil || n < 0 {
			return q, fmt.Errorf("maildirsize: bad definition %q", line)
		}
		switch part[len(part)-1] {
		case 'S':
			q.Bytes = n
		case 'C':
			q.Messages = n
		default:
			return q, fmt.Errorf("maildirsize: bad definition %q", line)
		}
	}
	return q, nil
}

// quotaRead reads and parses root's maildirsize. exists is false if the
// file is missing; a parse failure is returned as parseErr (the file needs
// a rebuild), an I/O failure as err.
func quotaRead(root string) (u quotaUsage, info fs.FileInfo, exists bool, parseErr, err error) {
	f, err := os.Open(filepath.Join(root, QuotaFileName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return u, nil, false, nil, nil
		}
		return u, nil, false, nil, fmt.Errorf("maildir: quota: %w", err)
	}
	defer f.Close()
	info, err = f.Stat()
	if err != nil {
		return u, nil, true, nil, fmt.Errorf("maildir: quota: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, quotaReadLimit))
	if err != nil {
		return u, nil, true, nil, fmt.Errorf("maildir: quota: %w", err)
	}
	u, parseErr = quotaParse(data)
	return u, info, true, parseErr, nil
}

// quotaCheck reports ErrQuota if a message of size bytes would take root
// over q, rebuilding maildirsize when the Maildir++ rules ask for it.
func quotaCheck(root string, q Quota, size int64) error {
	return CheckQuota(root, q, size, 1)
}

// CheckQuota reports ErrQuota if count more messages of size bytes in all
// would take root over q, rebuilding maildirsize when the Maildir++ rules
// ask for it (so a stale file never refuses what fits). An unlimited q
// is never exceeded and reads nothing. IMAP APPEND, MULTIAPPEND and COPY
// check a whole command at once with it.
func CheckQuota(root string, q Quota, size, count int64) error {
	if q.Unlimited() {
		return nil
	}
	u, info, exists, parseErr, err := quotaRead(root)
	if err != nil {
		return err
	}
	rebuild := !exists || parseErr != nil || info.Size() >= quotaMaxFileSize || u.def != q
	if !rebuild && q.exceeded(u.bytes, u.count, size, count) {
		// Courier: the verdict may rest on stale deltas; count again
		// before refusing mail.
		rebuild = u.changes > 1 || time.Since(info.ModTime()) >= quotaStaleAge
	}
	if rebuild {
		if u, err = quotaRebuild(root, q); err != nil {
			return err
		}
	}
	if q.exceeded(u.bytes, u.count, size, count) {
		return fmt.Errorf("%w: %d bytes in %d messages, limit %s", ErrQuota, u.bytes, u.count, q)
	}
	return nil
}

// quotaRebuild counts the Maildir and writes a fresh maildirsize with
// definition q. If a directory changed while it was being counted, the
// count may be off, so the file is removed again and the next reader
// counts anew (Courier does the same).
func quotaRebuild(root string, q Quota) (quotaUsage, error) {
	start := time.Now()
	u := quotaUsage{def: q}
	var dirs []string
	var err error
	u.bytes, u.count, dirs, err = quotaScan(root)
	if err != nil {
		return u, err
	}
	u.changes = 1
	content := fmt.Sprintf("%s\n%d %d\n", q, u.bytes, u.count)
	path := filepath.Join(root, QuotaFileName)
	if err := fsx.WriteFileAtomic(path, []byte(content), 0o600); err != nil {
		return u, fmt.Errorf("maildir: quota: %w", err)
	}
	for _, d := range dirs {
		st, err := os.Stat(d)
		if err != nil || !st.ModTime().Before(start) {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return u, fmt.Errorf("maildir: quota: %w", err)
			}
			break
		}
	}
	return u, nil
}

// quotaScan sums the messages of new/ and cur/ in root and in every folder
// except .Trash. It returns the directories it read.
func quotaScan(root string) (bytes, count int64, dirs []string, err error) {
	boxes := []string{root}
	ents, err := os.ReadDir(root)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("maildir: quota scan: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if len(n) < 2 || n[0] != '.' || n[1] == '.' || n == quotaTrashDir || !e.IsDir() {
			continue
		}
		boxes = append(boxes, filepath.Join(root, n))
	}
	for _, box := range boxes {
		for _, sub := range []string{"new", "cur"} {
			dir := filepath.Join(box, sub)
			b, c, err := quotaScanDir(dir)
			if err != nil {
				return 0, 0, nil, err
			}
			bytes += b
			count += c
			dirs = append(dirs, dir)
		}
	}
	return bytes, count, dirs, nil
}

// FolderUsage sums the messages of the Maildir (or Maildir++ folder) at
// path as a maildirsize rebuild counts them: the ,S= size of the name,
// else the file's size; dot files and non-files are not messages. It is
// what a folder's deletion takes off the quota.
func FolderUsage(path string) (bytes, count int64, err error) {
	for _, sub := range []string{"new", "cur"} {
		b, c, err := quotaScanDir(filepath.Join(path, sub))
		if err != nil {
			return 0, 0, err
		}
		bytes, count = bytes+b, count+c
	}
	return bytes, count, nil
}

// quotaScanDir sums one new/ or cur/ directory. A missing directory is
// empty; a file that vanishes while being counted was expunged.
func quotaScanDir(dir string) (bytes, count int64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("maildir: quota scan: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		size, ok := int64(0), false
		if n, err := ParseName(name); err == nil {
			size, ok = n.Size()
		}
		if !ok {
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, 0, fmt.Errorf("maildir: quota scan: %w", err)
			}
			if !info.Mode().IsRegular() {
				continue
			}
			size = info.Size()
		}
		bytes += size
		count++
	}
	return bytes, count, nil
}

// ReadQuotaUsage returns the bytes and messages counted against root's
// quota. It reads maildirsize; when the file is missing or unusable it
// counts the Maildir instead (rewriting the file only if it holds a
// definition to keep).
func ReadQuotaUsage(root string) (bytes, count int64, err error) {
	u, info, exists, parseErr, err := quotaRead(root)
	if err != nil {
		return 0, 0, err
	}
	switch {
	case !exists:
		bytes, count, _, err = quotaScan(root)
		return bytes, count, err
	case parseErr != nil:
		def, derr := quotaReadDef(root)
		if derr != nil {
			// Not even the definition is usable: count, keep no file.
			bytes, count, _, err = quotaScan(root)
			return bytes, count, err
		}
		u, err = quotaRebuild(root, def)
		return u.bytes, u.count, err
	case info.Size() >= quotaMaxFileSize:
		u, err = quotaRebuild(root, u.def)
		return u.bytes, u.count, err
	}
	return u.bytes, u.count, nil
}

// quotaReadDef returns the definition of root's maildirsize alone.
func quotaReadDef(root string) (Quota, error) {
	f, err := os.Open(filepath.Join(root, QuotaFileName))
	if err != nil {
		return Quota{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return Quota{}, err
	}
	line, _, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return Quota{}, errors.New("maildirsize: no definition line")
	}
	return quotaParseDef(string(line))
}

// AddQuotaUsage appends a change line "<bytes> <count>" to root's
// maildirsize (negative values for expunges). If there is no maildirsize
// nothing is tracked yet and nothing is written: the next quota check
// counts the Maildir.
func AddQuotaUsage(root string, bytes, count int64) error {
	f, err := os.OpenFile(filepath.Join(root, QuotaFileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("maildir: quota: %w", err)
	}
	// One write(2) of the whole line: O_APPEND makes it atomic against
	// other appenders on a local file system.
	_, err = f.Write([]byte(strconv.FormatInt(bytes, 10) + " " + strconv.FormatInt(count, 10) + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir: quota: %w", err)
	}
	return nil
}

// ReadQuotaDefinition returns the limits of root's maildirsize definition
// line; ok is false when there is no file (nothing is tracked). A file
// whose first line does not parse is an error.
func ReadQuotaDefinition(root string) (q Quota, ok bool, err error) {
	q, err = quotaReadDef(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Quota{}, false, nil
	case err != nil:
		return Quota{}, true, fmt.Errorf("maildir: quota: %w", err)
	}
	return q, true, nil
}

// QuotaSize returns what msg counts for in maildirsize: the ,S= size of
// its name (what a rebuild counts), else the size of its file. A file
// already gone counts 0 and ok is false.
func QuotaSize(msg Message) (size int64, ok bool) {
	if s, ok := msg.Name.Size(); ok {
		return s, true
	}
	if msg.Size >= 0 {
		return msg.Size, true
	}
	fi, err := os.Stat(msg.Path)
	if err != nil {
		return 0, false
	}
	return fi.Size(), true
}

// QuotaCounted reports whether messages in the Maildir at path count
// against its owner's quota: every folder but .Trash (Maildir++).
func QuotaCounted(path string) bool {
	return filepath.Base(filepath.Clean(path)) != quotaTrashDir
}

// QuotaRoot returns the Maildir++ root (where maildirsize lives) of the
// Maildir at path: its parent for a folder (".Name" directly inside a
// Maildir), else the path itself. The parent must itself be a Maildir, so
// a root that happens to be called ".mail" is still its own root.
func QuotaRoot(path string) string {
	path = filepath.Clean(path)
	if strings.HasPrefix(filepath.Base(path), ".") {
		parent := filepath.Dir(path)
		if fi, err := os.Stat(filepath.Join(parent, "cur")); err == nil && fi.IsDir() {
			return parent
		}
	}
	return path
}
