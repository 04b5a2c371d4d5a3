package maildir

// mailroom-listing is a cache of the last full sync's result beside the
// Maildir, so that a Snapshot of an unchanged Maildir (a POP3 client polling
// a mailbox that got no new mail) reads one file instead of listing new/ and
// cur/ and matching every name to the uidlist. Format, version 1, text:
//
//	mailroom-listing 1
//	V<uidvalidity> N<nextuid> C<count>
//	U<uidlist size> <uidlist CRC-32C, 8 hex digits>
//	D<new/ ino> <size> <mtime ns> <ctime ns> <stated ns>
//	D<cur/ ino> <size> <mtime ns> <ctime ns> <stated ns>
//	<uid> <n|c>[ S<size>][ W<vsize>] :<file name>      (count lines, ascending UID)
//	E<CRC-32C of every byte above, 8 hex digits>
//
// S and W are written only when the name's base does not carry them. The
// cache is used only when it is intact (the E line), both directories have
// exactly the recorded inode, size, mtime and ctime, and were stated more
// than syncDirtyWindow after their last change (so a later change cannot
// have kept the same times), and the uidlist's content has the recorded size
// and CRC. It is written under dovecot-uidlist.lock after a clean listing, as
// a temporary file renamed into place, without fsync: it is never the only
// copy of anything, a torn or stale one is rejected by the checks above, and
// deleting it at any time is harmless. A login reads it twice through a
// pooled buffer (check, then emit) rather than holding it whole.

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// ListingName is the listing cache's file in a Maildir.
const ListingName = "mailroom-listing"

// listingMagic is the first line of version 1.
const listingMagic = "mailroom-listing 1\n"

// listingMaxSize bounds the cache file read at a login (about 20 million
// messages' worth); a bigger one is ignored.
const listingMaxSize = 1 << 30

// listingCRC is CRC-32C, computed in hardware on amd64 and arm64.
var listingCRC = crc32.MakeTable(crc32.Castagnoli)

// errListing is wrapped by every reason a cache file is not used.
var errListing = errors.New("maildir: listing cache unusable")

// listing is a cache file's header.
type listing struct {
	UIDValidity, UIDNext uint32
	count                int
	ulSize               int64
	ulSum                uint32
	dirs                 [2]syncStamp // new/, cur/
}

// listingEntry is one message line.
type listingEntry struct {
	uid         uint32
	inNew       bool
	size, vsize int64 // from the line; -1 if absent
	name        string
}

// listingMaxLine bounds a line: a file name is at most 255 bytes.
const listingMaxLine = 1024

// listingBufs are read buffers for the cache and the uidlist's checksum: a
// login reads both through one of these instead of holding either whole.
var listingBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// listingWalk reads and checks a whole cache file from r: every line well
// formed, UIDs ascending, the count as the header says, the E line last and
// its CRC right. fn, if not nil, gets each message as it is read; its name
// is valid only during the call. An error from fn is returned as is; any
// fault of the file wraps errListing.
func listingWalk(r io.Reader, fn func(listingEntry) error) (*listing, error) {
	l := &listing{}
	var sum uint32
	n, got, prev := 0, 0, uint32(0)
	ended := false
	err := listingLines(r, func(line string) error {
		if ended {
			return fmt.Errorf("%w: text after the end line", errListing)
		}
		switch {
		case n == 0:
			if line+"\n" != listingMagic {
				return fmt.Errorf("%w: not version 1", errListing)
			}
		case n <= 4:
			if err := l.parseHeader(n-1, line); err != nil {
				return err
			}
		case strings.HasPrefix(line, "E"):
			want, err := strconv.ParseUint(line[1:], 16, 32)
			if len(line) != 9 || err != nil || uint32(want) != sum {
				return fmt.Errorf("%w: checksum", errListing)
			}
			ended = true
		default:
			e, ok := parseListingLine(line)
			if !ok || e.uid <= prev || e.uid >= l.UIDNext {
				return fmt.Errorf("%w: line %q", errListing, line)
			}
			prev = e.uid
			got++
			if fn != nil {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		n++
		sum = listingUpdateSum(sum, line)
		sum = crc32.Update(sum, listingCRC, listingNewline)
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case !ended:
		return nil, fmt.Errorf("%w: no end line", errListing)
	case got != l.count:
		return nil, fmt.Errorf("%w: %d messages, header says %d", errListing, got, l.count)
	}
	return l, nil
}

// listingLines calls fn with each line of r (without its '\n'), read
// through a pooled buffer; a line is valid only during the call.
func listingLines(r io.Reader, fn func(line string) error) error {
	bufp := listingBufs.Get().(*[]byte)
	defer listingBufs.Put(bufp)
	buf := *bufp
	have, total := 0, int64(0)
	for {
		n, rerr := r.Read(buf[have:])
		have += n
		total += int64(n)
		if total > listingMaxSize {
			return fmt.Errorf("%w: over %d bytes", errListing, listingMaxSize)
		}
		start := 0
		for {
			i := bytes.IndexByte(buf[start:have], '\n')
			if i < 0 {
				break
			}
			if i > listingMaxLine {
				return fmt.Errorf("%w: line too long", errListing)
			}
			if err := fn(unsafe.String(unsafe.SliceData(buf[start:]), i)); err != nil {
				return err
			}
			start += i + 1
		}
		have = copy(buf, buf[start:have])
		if have > listingMaxLine {
			return fmt.Errorf("%w: line too long", errListing)
		}
		if errors.Is(rerr, io.EOF) {
			if have > 0 {
				return fmt.Errorf("%w: unterminated line", errListing)
			}
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("maildir: read %s: %w", ListingName, rerr)
		}
	}
}

// listingNewline ends every line; a package variable so the checksum of
// each line's end allocates nothing.
var listingNewline = []byte{'\n'}

// listingUpdateSum adds s to a CRC-32C without copying it to a []byte.
func listingUpdateSum(sum uint32, s string) uint32 {
	if s == "" {
		return sum
	}
	return crc32.Update(sum, listingCRC, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// parseHeader parses header line n (after the magic line).
func (l *listing) parseHeader(n int, line string) error {
	f := strings.Split(line, " ")
	bad := fmt.Errorf("%w: header line %q", errListing, line)
	switch n {
	case 0:
		if len(f) != 3 || !strings.HasPrefix(f[0], "V") || !strings.HasPrefix(f[1], "N") || !strings.HasPrefix(f[2], "C") {
			return bad
		}
		l.UIDValidity, l.UIDNext = uidlistAtoi(f[0][1:]), uidlistAtoi(f[1][1:])
		c, err := strconv.ParseUint(f[2][1:], 10, 31)
		if err != nil || l.UIDValidity == 0 || l.UIDNext == 0 {
			return bad
		}
		l.count = int(c)
	case 1:
		if len(f) != 2 || !strings.HasPrefix(f[0], "U") || len(f[1]) != 8 {
			return bad
		}
		size, err1 := strconv.ParseInt(f[0][1:], 10, 64)
		sum, err2 := strconv.ParseUint(f[1], 16, 32)
		if err1 != nil || err2 != nil || size < 0 {
			return bad
		}
		l.ulSize, l.ulSum = size, uint32(sum)
	default:
		if len(f) != 5 || !strings.HasPrefix(f[0], "D") {
			return bad
		}
		var v [5]int64
		for k := range f {
			s := f[k]
			if k == 0 {
				s = s[1:]
			}
			x, err := strconv.ParseInt(s, 10, 64)
			if err != nil || x < 0 {
				return bad
			}
			v[k] = x
		}
		l.dirs[n-2] = syncStamp{exists: true, ino: uint64(v[0]), size: v[1],
			mtime: time.Unix(0, v[2]), ctime: time.Unix(0, v[3]), statedAt: time.Unix(0, v[4])}
	}
	return nil
}

// parseListingLine parses "<uid> <n|c>[ S<size>][ W<vsize>] :<name>".
func parseListingLine(line string) (listingEntry, bool) {
	e := listingEntry{size: -1, vsize: -1}
	uid, rest, ok := strings.Cut(line, " ")
	if !ok {
		return e, false
	}
	e.uid = uidlistAtoi(uid)
	if e.uid == 0 || !listingCanonical(uid) || len(rest) < 3 {
		return e, false
	}
	switch rest[:2] {
	case "n ":
		e.inNew = true
	case "c ":
	default:
		return e, false
	}
	rest = rest[2:]
	for _, key := range [2]byte{'S', 'W'} {
		if rest == "" || rest[0] != key {
			continue
		}
		var f string
		f, rest, ok = strings.Cut(rest, " ")
		v, vok := syncDecimal(f[1:])
		if !ok || !vok || !listingCanonical(f[1:]) {
			return e, false
		}
		if key == 'S' {
			e.size = v
		} else {
			e.vsize = v
		}
	}
	name, ok := strings.CutPrefix(rest, ":")
	if !ok || !listingValidName(name) {
		return e, false
	}
	// A size the base carries is not repeated (one spelling per file).
	base := syncBase(name)
	if _, has := syncBaseField(base, 'S'); has && e.size >= 0 {
		return e, false
	}
	if _, has := syncBaseField(base, 'W'); has && e.vsize >= 0 {
		return e, false
	}
	e.name = name
	return e, true
}

// listingCanonical reports whether s is a decimal number as strconv
// formats it (no sign, no leading zero), so a file has one spelling.
func listingCanonical(s string) bool {
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// listingValidName accepts what addEntry lets into a listing.
func listingValidName(name string) bool {
	if name == "" || name[0] == '.' {
		return false
	}
	return !strings.ContainsAny(name, "\n\r/\x00")
}

// appendListingLine formats one message line; size and vsize are what a
// Snapshot reports, written only when the base does not say them.
func appendListingLine(b []byte, uid uint32, inNew bool, size, vsize int64, name string) []byte {
	return appendListingLineOf(b, uid, inNew, size, vsize, syncBaseSizesOf(syncBase(name)), name)
}

// appendListingLineOf is appendListingLine with the base's own sizes
// already parsed (bs).
func appendListingLineOf(b []byte, uid uint32, inNew bool, size, vsize int64, bs syncBaseSizes, name string) []byte {
	b = strconv.AppendUint(b, uint64(uid), 10)
	if inNew {
		b = append(b, " n"...)
	} else {
		b = append(b, " c"...)
	}
	if !bs.hasS && size >= 0 {
		b = append(b, " S"...)
		b = strconv.AppendInt(b, size, 10)
	}
	if !bs.hasW && vsize >= 0 {
		b = append(b, " W"...)
		b = strconv.AppendInt(b, vsize, 10)
	}
	b = append(b, " :"...)
	b = append(b, name...)
	return append(b, '\n')
}

// appendListingHeader formats everything before the message lines.
func appendListingHeader(b []byte, info SnapshotInfo, ulSize int64, ulSum uint32, dirs [2]syncStamp) []byte {
	b = append(b, listingMagic...)
	b = fmt.Appendf(b, "V%d N%d C%d\nU%d %08x\n", info.UIDValidity, info.UIDNext, info.Count, ulSize, ulSum)
	for _, d := range dirs {
		b = fmt.Appendf(b, "D%d %d %d %d %d\n", d.ino, d.size, d.mtime.UnixNano(), d.ctime.UnixNano(), d.statedAt.UnixNano())
	}
	return b
}

// sizes are what a Snapshot reports for the entry: the base's fields, else
// the line's.
func (e listingEntry) sizes() (size, vsize int64) {
	size, vsize = e.size, e.vsize
	base := syncBase(e.name)
	if v, ok := syncBaseField(base, 'S'); ok {
		size = v
	}
	if v, ok := syncBaseField(base, 'W'); ok {
		vsize = v
	}
	return size, vsize
}

// listingFileSum returns the size and CRC-32C of the file at path.
func listingFileSum(path string) (int64, uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("maildir: %w", err)
	}
	defer f.Close()
	bufp := listingBufs.Get().(*[]byte)
	defer listingBufs.Put(bufp)
	var size int64
	var sum uint32
	for {
		n, err := f.Read(*bufp)
		size += int64(n)
		sum = crc32.Update(sum, listingCRC, (*bufp)[:n])
		if errors.Is(err, io.EOF) {
			return size, sum, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("maildir: read %s: %w", path, err)
		}
	}
}

// readListing returns the Maildir's cache, open and checked, if it is
// usable now: intact, and new/, cur/ and the uidlist as it records them.
// (nil, nil, nil) means "list"; the caller closes the file.
func readListing(path string) (*listing, *os.File, error) {
	f, err := os.Open(filepath.Join(path, ListingName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("maildir: %w", err)
	}
	l, err := listingWalk(f, nil)
	if err == nil {
		err = listingCurrent(path, l)
	}
	if err != nil {
		f.Close()
		if errors.Is(err, errListing) {
			return nil, nil, nil // a bad or stale cache is no error: list instead
		}
		return nil, nil, err
	}
	return l, f, nil
}

// listingCurrent checks that the Maildir is as l recorded it.
func listingCurrent(path string, l *listing) error {
	for i, dir := range syncDirNames {
		st, err := syncStampOf(filepath.Join(path, dir))
		if err != nil {
			return err
		}
		if !l.dirs[i].same(st) {
			return fmt.Errorf("%w: %s/ changed", errListing, dir)
		}
	}
	size, sum, err := listingFileSum(filepath.Join(path, UidlistName))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: no uidlist", errListing)
	}
	if err != nil {
		return err
	}
	if size != l.ulSize || sum != l.ulSum {
		return fmt.Errorf("%w: uidlist changed", errListing)
	}
	return nil
}

// emitListing passes a usable cache, read again from f, to v.
func emitListing(l *listing, f *os.File, v SnapshotVisitor) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	if err := v.Begin(SnapshotInfo{UIDValidity: l.UIDValidity, UIDNext: l.UIDNext, Count: l.count}); err != nil {
		return err
	}
	// The file is only ever replaced, never rewritten in place, so this
	// second read finds what the first checked; it checks again anyway.
	_, err := listingWalk(f, func(e listingEntry) error {
		size, vsize := e.sizes()
		return v.Message(SnapshotMessage{UID: e.uid, InNew: e.inNew, Name: e.name, Size: size, VSize: vsize})
	})
	return err
}

// writeListing writes the cache for a scan; the caller holds the uidlist
// lock, so the uidlist read here is the one the scan left. It writes
// nothing when the listing was not clean or a directory was too recently
// changed for its stamp ever to be trusted.
func (d *syncDisk) writeListing(sc syncScan) error {
	for _, st := range sc.files.stamps {
		if !st.settled() {
			return nil // changed within syncDirtyWindow of its listing
		}
	}
	if !sc.files.clean || sc.files.passes != 1 {
		// Only one clean listing is exactly the directories as stamped:
		// merged listings may keep a file removed between them, which the
		// cache would then show until the next change.
		return nil
	}
	ulSize, ulSum, ok := d.ul.writtenSum()
	if !ok {
		var err error
		if ulSize, ulSum, err = listingFileSum(d.ul.path); err != nil {
			return err
		}
	}
	u := d.ul.u
	info := SnapshotInfo{UIDValidity: u.UIDValidity, UIDNext: u.NextUID}
	for i, ei := range sc.recEntry {
		if sc.live(i, ei) {
			info.Count++
		}
	}
	final := filepath.Join(d.path, ListingName)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, syncFileMode(d.path))
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	err = d.formatListing(f, sc, info, ulSize, ulSum)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}

// formatListing writes the cache file's content to w a line at a time
// through a pooled buffer: for 10,000 messages it is about 560 KB, which a
// login that lists should not allocate on top of the listing itself.
func (d *syncDisk) formatListing(w io.Writer, sc syncScan, info SnapshotInfo, ulSize int64, ulSum uint32) error {
	bufp := listingBufs.Get().(*[]byte)
	defer listingBufs.Put(bufp)
	buf := (*bufp)[:0]
	var sum uint32
	flush := func(force bool) error {
		if len(buf) < cap(buf)-listingMaxLine && !force {
			return nil
		}
		sum = crc32.Update(sum, listingCRC, buf)
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	buf = appendListingHeader(buf, info, ulSize, ulSum, sc.files.stamps)
	u := d.ul.u
	for i, ei := range sc.recEntry {
		if !sc.live(i, ei) {
			continue
		}
		e := &sc.files.entries[ei]
		// One pass over the base: syncSizes's and appendListingLine's
		// lookups of ,S= and ,W= are the same.
		bs := syncBaseSizesOf(e.base())
		size, vsize := int64(-1), int64(-1)
		if !bs.hasS {
			if v, ok := u.Records[i].Field('S'); ok {
				size = int64(uidlistAtoi(v))
			}
		}
		if !bs.hasW {
			if v, ok := u.Records[i].Field('W'); ok {
				vsize = int64(uidlistAtoi(v))
			}
		}
		buf = appendListingLineOf(buf, u.Records[i].UID, e.dir == syncNew, size, vsize, bs, e.name)
		if err := flush(false); err != nil {
			return err
		}
	}
	if err := flush(true); err != nil {
		return err
	}
	buf = fmt.Appendf(buf, "E%08x\n", sum)
	return flush(true)
}
