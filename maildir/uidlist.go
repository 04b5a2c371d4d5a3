package maildir

// dovecot-uidlist, version 3, as Dovecot 1.1 and later read and write it:
//
//	3 V<uidvalidity> N<nextuid> G<mailbox guid, 32 hex digits>[ <other fields>]
//	<uid>[ <key><value>...] :<file name>
//
// Header fields are a key letter and a value, in any order; unknown ones are
// kept. Record fields have upper-case keys (S physical size, W virtual size,
// P POP3 UIDL, O POP3 order, G message GUID); unknown ones are kept too.
// Records are in ascending UID order; the file name is the base (Dovecot
// writes the name up to ':'), and matching to files is by base. New records
// may be appended at the end without rewriting the header, so the real next
// UID is max(N, last UID + 1). Anything else is written as a new file
// renamed over the old one, under dovecot-uidlist.lock.
//
// Version 1 (Courier's courierimapuiddb layout, "1 <uidvalidity> <nextuid>"
// then "<uid> <file name>") is read and rewritten as version 3.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mailroom/internal/fsx"
)

// UidlistName is the file holding UIDs, next to new/ and cur/.
const UidlistName = "dovecot-uidlist"

// uidlistVersion is the only version mailroom writes.
const uidlistVersion = 3

// Uidlist is the content of a dovecot-uidlist file.
type Uidlist struct {
	Version     int    // 3, or 1 for a Courier-style file read from disk
	UIDValidity uint32 // header V
	NextUID     uint32 // header N, raised to last UID + 1 on parse
	GUID        string // header G, the mailbox GUID in hex; "" if absent
	// HeaderExtra keeps other header fields ("<key><value>") in order.
	HeaderExtra []string
	Records     []UidlistRecord // ascending UID
	// Dropped counts record lines that were unusable (bad UID, out of
	// order, no file name). A file with Dropped > 0 should be rewritten.
	Dropped int
}

// UidlistRecord is one message line.
type UidlistRecord struct {
	UID uint32
	// Fields are the extension fields ("<key><value>"), kept verbatim.
	Fields []string
	Name   string // file name as recorded; compare with Base()
}

// Base returns the record's file name up to the first ':'.
func (r UidlistRecord) Base() string {
	base, _, _ := strings.Cut(r.Name, ":")
	return base
}

// Field returns the value of extension field key.
func (r UidlistRecord) Field(key byte) (string, bool) {
	for _, f := range r.Fields {
		if f != "" && f[0] == key {
			return f[1:], true
		}
	}
	return "", false
}

// ErrUidlistHeader means the first line is not a usable uidlist header;
// Dovecot then discards the file and assigns new UIDs.
var ErrUidlistHeader = errors.New("maildir: unusable dovecot-uidlist header")

// ParseUidlist parses a whole dovecot-uidlist file. Only a bad header is an
// error; bad record lines are skipped and counted in Dropped.
func ParseUidlist(data []byte) (*Uidlist, error) {
	return parseUidlistText(string(data))
}

// parseUidlistText is ParseUidlist on text the records may keep slices of.
func parseUidlistText(text string) (*Uidlist, error) {
	line, rest, ok := strings.Cut(text, "\n")
	if !ok && len(line) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrUidlistHeader)
	}
	u, err := uidlistParseHeader(line)
	if err != nil {
		return nil, err
	}
	u.parseRecords(rest)
	return u, nil
}

// uidlistParseHeader parses the first line.
func uidlistParseHeader(line string) (*Uidlist, error) {
	line = strings.TrimSuffix(line, "\r")
	if len(line) < 2 || line[0] < '0' || line[0] > '9' || line[1] != ' ' {
		return nil, fmt.Errorf("%w: bad version", ErrUidlistHeader)
	}
	u := &Uidlist{Version: int(line[0] - '0')}
	switch u.Version {
	case 1:
		f := strings.Fields(line[2:])
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: version 1 needs uidvalidity and next uid", ErrUidlistHeader)
		}
		u.UIDValidity = uidlistAtoi(f[0])
		u.NextUID = uidlistAtoi(f[1])
	case uidlistVersion:
		for _, f := range strings.Fields(line[2:]) {
			switch f[0] {
			case 'V':
				u.UIDValidity = uidlistAtoi(f[1:])
			case 'N':
				u.NextUID = uidlistAtoi(f[1:])
			case 'G':
				if !uidlistValidGUID(f[1:]) {
					return nil, fmt.Errorf("%w: bad mailbox GUID %q", ErrUidlistHeader, f[1:])
				}
				u.GUID = f[1:]
			default:
				u.HeaderExtra = append(u.HeaderExtra, f)
			}
		}
	default:
		return nil, fmt.Errorf("%w: unsupported version %d", ErrUidlistHeader, u.Version)
	}
	if u.UIDValidity == 0 || u.NextUID == 0 {
		return nil, fmt.Errorf("%w: uidvalidity %d, next uid %d", ErrUidlistHeader, u.UIDValidity, u.NextUID)
	}
	return u, nil
}

// uidlistAtoi parses a decimal uint32, 0 on any error (0 is never valid).
func uidlistAtoi(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// uidlistValidGUID accepts 32 hex digits, as guid_128_from_string does.
func uidlistValidGUID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// parseRecords appends the complete lines of data as records. It returns
// the number of bytes consumed: a trailing line without '\n' is left for a
// later read, since a writer may be appending it.
//
// Every record's Name and Fields are slices of data, which the caller read
// into one string: a 10,000-line file costs a few allocations, not tens of
// thousands (pop3d parses it at every login).
func (u *Uidlist) parseRecords(data string) int {
	end := strings.LastIndexByte(data, '\n') + 1
	if end == 0 {
		return 0
	}
	text := data[:end]
	if len(u.Records) == 0 {
		u.Records = make([]UidlistRecord, 0, strings.Count(text, "\n"))
	}
	var arena []string // backing store of the records' Fields
	for text != "" {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		rec, ok := u.parseRecord(strings.TrimSuffix(line, "\r"), &arena)
		if !ok {
			u.Dropped++
			continue
		}
		u.addRecord(rec)
	}
	return end
}

// parseRecord parses one record line of the file's version. Fields are
// appended to *arena and the record gets a capped slice of it, so records
// share one backing array and appending to one never touches another.
func (u *Uidlist) parseRecord(line string, arena *[]string) (UidlistRecord, bool) {
	uidStr, rest, ok := strings.Cut(line, " ")
	if !ok {
		return UidlistRecord{}, false
	}
	uid := uidlistAtoi(uidStr)
	if uid == 0 || uid == ^uint32(0) {
		return UidlistRecord{}, false
	}
	if n := len(u.Records); n > 0 && uid <= u.Records[n-1].UID {
		return UidlistRecord{}, false // Dovecot: "UIDs not ordered"
	}
	rec := UidlistRecord{UID: uid}
	rest = strings.TrimLeft(rest, " ")
	if u.Version == uidlistVersion {
		first := len(*arena)
		for rest != "" && rest[0] != ':' {
			var f string
			f, rest, _ = strings.Cut(rest, " ")
			rest = strings.TrimLeft(rest, " ")
			if f[0] >= 'A' && f[0] <= 'Z' {
				if len(*arena) == cap(*arena) {
					// A fresh block; records already made keep the old one.
					*arena = append(make([]string, 0, max(64, 2*(len(*arena)-first+1))), (*arena)[first:]...)
					first = 0
				}
				*arena = append(*arena, f)
			}
			// Dovecot drops fields with other keys; so do we.
		}
		if n := len(*arena); n > first {
			rec.Fields = (*arena)[first:n:n]
		}
		rest = strings.TrimPrefix(rest, ":")
	}
	if rest == "" || rest[0] == ':' || strings.ContainsAny(rest, "/\x00") {
		return UidlistRecord{}, false // no base to match a file by
	}
	rec.Name = rest
	return rec, true
}

// addRecord appends rec. A base already listed under another UID means the
// file was expunged and came back; the later line wins, as in Dovecot.
func (u *Uidlist) addRecord(rec UidlistRecord) {
	base := rec.Base()
	for i := len(u.Records) - 1; i >= 0 && i >= len(u.Records)-uidlistDupWindow; i-- {
		if uidlistHasBase(u.Records[i].Name, base) {
			u.Records = append(u.Records[:i], u.Records[i+1:]...)
			break
		}
	}
	u.Records = append(u.Records, rec)
	if u.NextUID <= rec.UID {
		u.NextUID = rec.UID + 1
	}
}

// uidlistHasBase reports whether a recorded name has the given base. It
// is Base() == base without a search for ':', and rejects on length and
// the last byte first: it runs 64 times per line parsed.
func uidlistHasBase(name, base string) bool {
	n := len(base)
	if len(name) < n || n == 0 || name[n-1] != base[n-1] {
		return false
	}
	if len(name) > n && name[n] != ':' {
		return false
	}
	return name[:n] == base
}

// uidlistDupWindow bounds the duplicate search in addRecord so parsing stays
// linear; the mailbox's by-base index catches duplicates further apart.
const uidlistDupWindow = 64

// Marshal returns the file content in version 3, as Dovecot writes it.
// Every record is appended to one buffer sized up front: a 100,000-line
// uidlist costs one allocation, not one or more per line.
func (u *Uidlist) Marshal() []byte {
	n := 64
	for _, f := range u.HeaderExtra {
		n += 1 + len(f)
	}
	for i := range u.Records {
		n += uidlistRecordLen(&u.Records[i])
	}
	b := make([]byte, 0, n)
	b = u.appendHeader(b)
	for i := range u.Records {
		b = appendUidlistRecord(b, &u.Records[i])
	}
	return b
}

// appendHeader appends the header line, ending in '\n'.
func (u *Uidlist) appendHeader(b []byte) []byte {
	b = strconv.AppendInt(b, uidlistVersion, 10)
	b = append(b, " V"...)
	b = strconv.AppendUint(b, uint64(u.UIDValidity), 10)
	b = append(b, " N"...)
	b = strconv.AppendUint(b, uint64(u.NextUID), 10)
	b = append(b, " G"...)
	b = append(b, u.GUID...)
	for _, f := range u.HeaderExtra {
		b = append(b, ' ')
		b = append(b, f...)
	}
	return append(b, '\n')
}

// uidlistRecordLen bounds the length of r's line.
func uidlistRecordLen(r *UidlistRecord) int {
	n := 10 + 2 + len(r.Name) + 1
	for _, f := range r.Fields {
		n += 1 + len(f)
	}
	return n
}

// appendUidlistRecord appends one record line, ending in '\n'. Like
// Dovecot it writes only the base: the info part changes with every flag
// change.
func appendUidlistRecord(b []byte, r *UidlistRecord) []byte {
	b = strconv.AppendUint(b, uint64(r.UID), 10)
	for _, f := range r.Fields {
		b = append(b, ' ')
		b = append(b, f...)
	}
	b = append(b, " :"...)
	b = append(b, r.Base()...)
	return append(b, '\n')
}

// newUidlistGUID returns a random mailbox GUID in hex.
func newUidlistGUID() (string, error) {
	var g [16]byte
	if _, err := rand.Read(g[:]); err != nil {
		return "", fmt.Errorf("maildir: mailbox guid: %w", err)
	}
	return hex.EncodeToString(g[:]), nil
}

// uidlistFile caches the parsed dovecot-uidlist of one Maildir across
// syncs. It re-reads only when the file's inode, size or mtime changed, and
// reads only the appended tail when the same file grew.
type uidlistFile struct {
	path   string
	u      *Uidlist // nil until the file exists or is created
	dev    uint64
	ino    uint64
	size   int64
	mtime  time.Time
	offset int64 // bytes parsed; equals size unless a line was partial
	// needRewrite is set when the file must be recreated rather than
	// appended to (old version, no GUID, dropped lines, changed header).
	needRewrite bool
	// written is the CRC-32C (listingCRC) of the whole file as rewrite
	// last wrote it, valid while the file's identity is still writtenAt:
	// the listing cache records it, and a cold open should not read back
	// the 5 MB it just wrote to learn it.
	written   uint32
	writtenAt uidlistIdentity
}

// uidlistIdentity is what tells one state of the uidlist file from another.
type uidlistIdentity struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

// identity is the file's identity as last stated.
func (f *uidlistFile) identity() uidlistIdentity {
	return uidlistIdentity{dev: f.dev, ino: f.ino, size: f.size, mtime: f.mtime}
}

// writtenSum returns the CRC-32C and size of the file when it is exactly
// as rewrite left it (same inode, size and mtime as then, as last stated
// under the lock); ok is false otherwise and the caller reads the file.
func (f *uidlistFile) writtenSum() (size int64, sum uint32, ok bool) {
	if f.writtenAt == (uidlistIdentity{}) || f.writtenAt != f.identity() {
		return 0, 0, false
	}
	return f.size, f.written, true
}

// uidlistStat returns the identity of the file, or ok=false if absent.
func uidlistStat(path string) (st syscall.Stat_t, ok bool, err error) {
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return st, false, nil
		}
		return st, false, fmt.Errorf("maildir: stat %s: %w", path, err)
	}
	return st, true, nil
}

// refresh brings the cache up to date with the file. The caller holds the
// uidlist lock, so the file cannot change while it is read.
func (f *uidlistFile) refresh() error {
	st, ok, err := uidlistStat(f.path)
	if err != nil {
		return err
	}
	if !ok {
		f.reset()
		return nil
	}
	mtime := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	same := f.u != nil && uint64(st.Dev) == f.dev && st.Ino == f.ino
	if same && st.Size == f.size && mtime.Equal(f.mtime) {
		return nil
	}
	if same && st.Size > f.offset && f.offset > 0 {
		return f.readTail(st, mtime)
	}
	return f.readAll()
}

// reset forgets the file.
func (f *uidlistFile) reset() {
	*f = uidlistFile{path: f.path}
}

// readAll parses the whole file.
func (f *uidlistFile) readAll() error {
	fh, err := os.Open(f.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			f.reset()
			return nil
		}
		return fmt.Errorf("maildir: %w", err)
	}
	defer fh.Close()
	st, err := uidlistFstat(fh)
	if err != nil {
		return err
	}
	data, err := uidlistReadString(fh, st.Size)
	if err != nil {
		return fmt.Errorf("maildir: read %s: %w", f.path, err)
	}
	old := f.u
	f.reset()
	u, err := parseUidlistText(data)
	if err != nil {
		// Like Dovecot: a broken file is replaced on the next write. Keep
		// the old UIDVALIDITY and next UID if we knew them, so UIDs never
		// go backwards within this process.
		f.needRewrite = true
		if old != nil {
			f.u = &Uidlist{Version: uidlistVersion, UIDValidity: old.UIDValidity, NextUID: old.NextUID, GUID: old.GUID}
		}
		return nil
	}
	if old != nil && old.UIDValidity == u.UIDValidity && u.NextUID < old.NextUID {
		u.NextUID = old.NextUID // never lower next_uid (Dovecot does the same)
		f.needRewrite = true
	}
	_, trailingPartial := uidlistLastLine(data)
	f.u = u
	f.setStat(st)
	f.offset = int64(len(data) - trailingPartial)
	f.needRewrite = f.needRewrite || u.Version != uidlistVersion || u.GUID == "" || u.Dropped > 0
	return nil
}

// uidlistLastLine returns the length of an unterminated last line.
func uidlistLastLine(data string) (int, int) {
	i := strings.LastIndexByte(data, '\n')
	return i, len(data) - (i + 1)
}

// uidlistReadString reads r to the end into a string, reading straight
// into its final storage when size (from fstat) is right: the records keep
// slices of it, so there is no []byte copy to throw away.
func uidlistReadString(r io.Reader, size int64) (string, error) {
	var b strings.Builder
	if size > 0 && size < 1<<30 {
		b.Grow(int(size) + 1) // +1: see EOF without growing
	}
	_, err := io.Copy(&b, r)
	return b.String(), err
}

// readTail parses what was appended since the last read.
func (f *uidlistFile) readTail(st syscall.Stat_t, mtime time.Time) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	defer fh.Close()
	fst, err := uidlistFstat(fh)
	if err != nil {
		return err
	}
	if fst.Ino != f.ino {
		return f.readAll() // replaced between stat and open
	}
	data, err := uidlistReadString(io.NewSectionReader(fh, f.offset, fst.Size-f.offset), fst.Size-f.offset)
	if err != nil {
		return fmt.Errorf("maildir: read %s: %w", f.path, err)
	}
	before := f.u.Dropped
	f.offset += int64(f.u.parseRecords(data))
	if f.u.Dropped != before {
		f.needRewrite = true
	}
	f.setStat(fst)
	return nil
}

// uidlistFstat stats an open file.
func uidlistFstat(fh *os.File) (syscall.Stat_t, error) {
	fi, err := fh.Stat()
	if err != nil {
		return syscall.Stat_t{}, fmt.Errorf("maildir: %w", err)
	}
	return *fi.Sys().(*syscall.Stat_t), nil
}

// setStat remembers the identity of what was read or written.
func (f *uidlistFile) setStat(st syscall.Stat_t) {
	f.dev, f.ino, f.size = uint64(st.Dev), st.Ino, st.Size
	f.mtime = time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
}

// create initialises an empty uidlist in memory: UIDVALIDITY is the current
// time, as Dovecot's mailbox_uidvalidity_next() starts from time(NULL).
func (f *uidlistFile) create() error {
	guid, err := newUidlistGUID()
	if err != nil {
		return err
	}
	f.u = &Uidlist{Version: uidlistVersion, UIDValidity: uint32(time.Now().Unix()), NextUID: 1, GUID: guid}
	f.needRewrite = true
	return nil
}

// appendRecords adds records with fresh UIDs at the end of the file. The
// caller holds the lock and has refreshed; the header is left alone, as
// Dovecot does, because readers raise next UID past the last record.
func (f *uidlistFile) appendRecords(recs []UidlistRecord) error {
	if f.needRewrite || f.offset != f.size {
		return f.rewrite()
	}
	n := 0
	for i := range recs {
		n += uidlistRecordLen(&recs[i])
	}
	b := make([]byte, 0, n)
	for i := range recs {
		b = appendUidlistRecord(b, &recs[i])
	}
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return f.rewrite()
		}
		return fmt.Errorf("maildir: %w", err)
	}
	_, err = fh.Write(b)
	if err == nil {
		err = fh.Sync()
	}
	var st syscall.Stat_t
	if err == nil {
		st, err = uidlistFstat(fh)
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir: append %s: %w", f.path, err)
	}
	f.setStat(st)
	f.offset = st.Size
	return nil
}

// rewrite writes the whole uidlist to dovecot-uidlist.tmp and renames it
// over the file, as Dovecot's maildir_uidlist_recreate does.
func (f *uidlistFile) rewrite() error {
	if f.u.GUID == "" {
		guid, err := newUidlistGUID()
		if err != nil {
			return err
		}
		f.u.GUID = guid
	}
	f.u.Version = uidlistVersion
	tmp := f.path + ".tmp"
	f.writtenAt = uidlistIdentity{}
	// Written as Marshal formats it, through a pooled buffer; n and sum
	// are the bytes and their CRC-32C (listingCRC).
	var n int64
	var sum uint32
	err := uidlistWriteSync(tmp, syncFileMode(filepath.Dir(f.path)), func(w io.Writer) (err error) {
		n, sum, err = f.u.writeTo(w)
		return err
	})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, f.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir: %w", err)
	}
	if err := fsx.SyncDir(filepath.Dir(f.path)); err != nil {
		return err
	}
	st, ok, err := uidlistStat(f.path)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("maildir: %s vanished after rename", f.path)
	}
	f.setStat(st)
	f.offset = n
	if st.Size == n {
		f.written, f.writtenAt = sum, f.identity()
	}
	f.u.Dropped = 0
	f.needRewrite = false
	return nil
}

// uidlistWriteSync creates path (truncating), lets write fill it and
// fsyncs it; on failure the file is removed.
func uidlistWriteSync(path string, perm os.FileMode, write func(io.Writer) error) error {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	err = write(fh)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("maildir: write %s: %w", path, err)
	}
	return nil
}

// writeTo writes what Marshal returns to w through a pooled buffer, and
// returns its length and CRC-32C: a 100,000-message uidlist is 5 MB,
// which a cold open should not allocate (and fault in) a second time.
func (u *Uidlist) writeTo(w io.Writer) (n int64, sum uint32, err error) {
	bufp := listingBufs.Get().(*[]byte)
	defer listingBufs.Put(bufp)
	buf := (*bufp)[:0]
	flush := func() error {
		sum = crc32.Update(sum, listingCRC, buf)
		m, err := w.Write(buf)
		n += int64(m)
		buf = buf[:0]
		return err
	}
	buf = u.appendHeader(buf)
	for i := range u.Records {
		buf = appendUidlistRecord(buf, &u.Records[i])
		if len(buf) >= cap(*bufp)-listingMaxLine {
			if err := flush(); err != nil {
				return n, sum, err
			}
		}
	}
	if len(buf) > 0 {
		err = flush()
	}
	return n, sum, err
}

// syncFileMode derives the mode for metadata files from the Maildir's own
// directory mode without execute bits, as Dovecot does, so a Maildir shared
// by group stays shared.
func syncFileMode(dir string) os.FileMode {
	fi, err := os.Stat(dir)
	if err != nil {
		return 0o600
	}
	return fi.Mode().Perm() & 0o666
}
