package maildir

// Syncing a Maildir with its dovecot-uidlist, the way Dovecot does it:
//
//  1. Take dovecot-uidlist.lock, so UID assignment is serialised with every
//     other mailroom or Dovecot process, then re-read the uidlist if its
//     inode, size or mtime changed (only the appended tail if it grew).
//  2. List new/ then cur/ (names only; no stat per message). In that order a
//     message moved new/ → cur/ between the two listings is seen at least
//     once. Files are matched to records by base (name up to ':').
//  3. readdir(3) may skip an entry renamed while the directory is read. If a
//     message we knew is missing, or a directory changed while it was being
//     listed, list again (a bounded number of times) and merge, so a flag
//     change racing with us is neither an expunge nor a new UID.
//  4. Files without a record get UIDs from next UID in Dovecot's order
//     (time stamp, microseconds, name) and are appended to the uidlist.
//
// A sync is skipped without taking the lock when new/, cur/, the uidlist
// and the keywords file are unchanged and their mtimes are older than the
// one-second window in which a change could have left the mtime unchanged
// (Dovecot's MAILDIR_SYNC_SECS).

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"mailroom/internal/fsx"
)

// syncScans counts full syncs (listings of new/ and cur/) in this process,
// so tests can tell a sync that listed from one that was skipped.
var syncScans atomic.Uint64

// syncMaxScans bounds the listings per sync when racing renames are seen.
const syncMaxScans = 4

// syncDirtyWindow is how recent an mtime must be for a directory to count
// as possibly changed again within the same timestamp.
const syncDirtyWindow = time.Second

// syncEntry is one file found by a listing.
type syncEntry struct {
	name string // the file name; its base is the part before the first ':'
	dir  uint8  // syncNew or syncCur
	rec  int32  // 1 + index of the uidlist record it is matched to; 0: none
	// baseLen is len(syncBase(name)), found once when the entry is made:
	// a cold open of 100,000 files needs the base four times per file.
	baseLen int32
}

// newSyncEntry makes the entry of file name in dir.
func newSyncEntry(dir uint8, name string) syncEntry {
	return syncEntry{dir: dir, name: name, baseLen: int32(len(syncBase(name)))}
}

// base is the entry's base: its name up to the first ':'.
func (e *syncEntry) base() string { return e.name[:e.baseLen] }

// Directory numbers of a syncEntry, in listing order.
const (
	syncNew uint8 = iota
	syncCur
)

// syncDirNames are the directories of syncNew and syncCur.
var syncDirNames = [...]string{syncNew: "new", syncCur: "cur"}

// syncFiles is what the listings found: one entry per base, and the index
// of each base in entries. Entries are small (no parsed Name) because a
// fresh open lists every message; Names are parsed only for the view.
type syncFiles struct {
	entries []syncEntry
	byBase  map[string]int32
	// stamps are new/ and cur/ as stated before their last listing, and
	// clean reports that neither changed during it.
	stamps [2]syncStamp
	clean  bool
	// passes counts the listings merged into entries. After more than
	// one, entries may hold a file that only an earlier listing saw.
	passes int
	// room is how many bases byBase was made for (see reserve).
	room int
}

// newSyncFiles makes room for n files, so listing a big Maildir does not
// rehash the index as it grows.
func newSyncFiles(n int) *syncFiles {
	return &syncFiles{entries: make([]syncEntry, 0, n), byBase: make(map[string]int32, n), room: n}
}

// reserve makes room for n more files. A first sync has no uidlist to
// size newSyncFiles by: growing entries and byBase by doubling to 100,000
// files cost a cold open more than its sort.
func (f *syncFiles) reserve(n int) {
	want := len(f.entries) + n
	if want <= f.room || f.passes > 0 {
		return // a listing again mostly finds the files already there
	}
	f.entries = slices.Grow(f.entries, n)
	m := make(map[string]int32, want)
	for k, v := range f.byBase {
		m[k] = v
	}
	f.byBase, f.room = m, want
}

// lookup returns the entry for base.
func (f *syncFiles) lookup(base string) (*syncEntry, bool) {
	i, ok := f.byBase[base]
	if !ok {
		return nil, false
	}
	return &f.entries[i], true
}

// add records a new base.
func (f *syncFiles) add(e syncEntry) {
	f.byBase[e.base()] = int32(len(f.entries))
	f.entries = append(f.entries, e)
}

// syncBase is the base of a file name: the part before the first ':'.
func syncBase(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// syncQuickState remembers what the last full sync saw.
type syncQuickState struct {
	valid    bool
	stamp    [4]syncStamp // new/, cur/, uidlist, keywords
	listedAt time.Time    // when that sync ended
}

// syncRepeatWindow is how soon after a full sync another Sync that finds
// every stamp exactly as that sync did returns its view instead of listing
// again: OpenMailbox followed at once by Sync (an IMAP SELECT) lists the
// directories once. A change within the window that left a directory's
// times unchanged (same clock tick) is missed only until the next Sync
// after the window, since the recorded stamps stay unsettled; the listing
// it repeats took about as long as the window on a big Maildir anyway.
const syncRepeatWindow = 20 * time.Millisecond

// syncStamp identifies a file's state.
type syncStamp struct {
	exists   bool
	ino      uint64
	size     int64
	mtime    time.Time
	ctime    time.Time
	statedAt time.Time
}

// Sync brings the mailbox up to date with the disk and returns what changed
// since the previous Sync.
func (m *Mailbox) Sync() (Changes, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.syncLocked(); err != nil {
		return Changes{}, err
	}
	ch := m.pending
	m.pending = Changes{}
	return ch, nil
}

// syncStampOf stats path.
func syncStampOf(path string) (syncStamp, error) {
	now := time.Now()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return syncStamp{statedAt: now}, nil
		}
		return syncStamp{}, fmt.Errorf("maildir: stat %s: %w", path, err)
	}
	return syncStamp{
		exists: true, ino: st.Ino, size: st.Size,
		mtime:    time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
		ctime:    time.Unix(st.Ctim.Sec, st.Ctim.Nsec),
		statedAt: now,
	}, nil
}

// settled reports whether s was stated long enough after the file's last
// change that a later change must move its times.
func (s syncStamp) settled() bool {
	return s.exists && s.statedAt.Sub(s.ctime) > syncDirtyWindow && s.statedAt.Sub(s.mtime) > syncDirtyWindow
}

// equal reports whether s and o record the same file times, however
// recently stated.
func (s syncStamp) equal(o syncStamp) bool {
	return s.exists == o.exists && s.ino == o.ino && s.size == o.size && s.mtime.Equal(o.mtime) && s.ctime.Equal(o.ctime)
}

// same reports whether s and o describe the same unchanged file, and s was
// old enough when stated that a later change must have moved its times.
func (s syncStamp) same(o syncStamp) bool {
	if s.exists != o.exists {
		return false
	}
	if !s.exists {
		return true
	}
	return s.ino == o.ino && s.size == o.size && s.mtime.Equal(o.mtime) && s.ctime.Equal(o.ctime) &&
		s.statedAt.Sub(s.ctime) > syncDirtyWindow && s.statedAt.Sub(s.mtime) > syncDirtyWindow
}

// syncStamps stats the four things a sync depends on.
func (m *Mailbox) syncStamps() ([4]syncStamp, error) {
	var out [4]syncStamp
	paths := [4]string{
		filepath.Join(m.path, "new"), filepath.Join(m.path, "cur"),
		m.ul.path, m.kw.path,
	}
	for i, p := range paths {
		st, err := syncStampOf(p)
		if err != nil {
			return out, err
		}
		out[i] = st
	}
	return out, nil
}

// syncDisk is the part of a sync that touches the disk, shared by a
// Mailbox (which builds its view from the result) and Snapshot (which
// streams it to its caller): the Maildir, its cached uidlist, and the
// records that had no file at the previous sync.
type syncDisk struct {
	path    string
	lockOpt fsx.DotLockOptions
	ul      uidlistFile
	// absentPrev holds the bases of uidlist records that had no file at
	// the previous sync; only those may be compressed away.
	absentPrev map[string]bool
}

// newSyncDisk is the disk side of the Maildir at path, nothing read yet.
func newSyncDisk(path string) syncDisk {
	return syncDisk{
		path:    path,
		lockOpt: defaultLockOptions(),
		ul:      uidlistFile{path: filepath.Join(path, UidlistName)},
	}
}

// syncScan is what one locked pass over the Maildir found: every listed
// file, each uidlist record's file, and the uidlist's stamp as this pass
// left it.
type syncScan struct {
	files    *syncFiles
	recEntry []int32 // per record of d.ul.u.Records: index in files.entries, or -1
	ulStamp  syncStamp
	ulStated bool // ulStamp was taken (under the lock, after any write)
}

// syncScanOptions is what a caller adds to a pass.
type syncScanOptions struct {
	// sizeHint is how many files the caller expects (its current view).
	sizeHint int
	// missing reports whether a message the caller knows has no file in
	// a listing, which makes the listing run again (a racing rename).
	missing func(*syncFiles) bool
	// underLock runs right after the uidlist is refreshed (the keywords
	// file, which shares the lock).
	underLock func() error
	// done runs at the end, still under the lock (the listing cache).
	done func(syncScan)
}

// live reports whether record i with entry ei is a message: it has a file,
// and no later record claims the same base.
func (sc syncScan) live(i int, ei int32) bool {
	return ei >= 0 && sc.files.entries[ei].rec == int32(i)+1
}

// scan takes dovecot-uidlist.lock, brings the uidlist up to date (creating
// it in memory if absent), lists new/ and cur/, gives new files UIDs and
// writes the uidlist: steps 1–4 of a sync.
func (d *syncDisk) scan(opt syncScanOptions) (sc syncScan, err error) {
	syncScans.Add(1)
	lk, err := uidlistLockAcquire(d.path, d.lockOpt)
	if err != nil {
		return syncScan{}, err
	}
	defer func() {
		if rerr := lk.release(); err == nil && rerr != nil {
			sc, err = syncScan{}, rerr
		}
	}()
	if err := d.ul.refresh(); err != nil {
		return syncScan{}, err
	}
	if d.ul.u == nil {
		if err := d.ul.create(); err != nil {
			return syncScan{}, err
		}
	}
	if opt.underLock != nil {
		if err := opt.underLock(); err != nil {
			return syncScan{}, err
		}
	}
	files, clean, err := d.listAll(opt)
	if err != nil {
		return syncScan{}, err
	}
	recEntry, err := d.assign(files, clean)
	if err != nil {
		return syncScan{}, err
	}
	sc = syncScan{files: files, recEntry: recEntry}
	if st, err := syncStampOf(d.ul.path); err == nil {
		sc.ulStamp, sc.ulStated = st, true
	}
	if opt.done != nil {
		opt.done(sc)
	}
	return sc, nil
}

// resyncLocked lists again whatever the stamps say: an operation that
// just lost a rename race knows the view is stale, even if the race left
// the directory's times as the last sync saw them.
func (m *Mailbox) resyncLocked() error {
	m.quick.valid = false
	return m.syncLocked()
}

// syncLocked syncs; the caller holds m.mu. Changes go to m.pending.
func (m *Mailbox) syncLocked() error {
	before, err := m.syncStamps()
	if err != nil {
		return err
	}
	if m.quick.valid && m.ul.u != nil {
		unchanged, exact := true, true
		for i := range before {
			unchanged = unchanged && m.quick.stamp[i].same(before[i])
			exact = exact && m.quick.stamp[i].equal(before[i])
		}
		if unchanged || exact && time.Since(m.quick.listedAt) < syncRepeatWindow {
			full, err := m.modseqQuickLocked()
			if err != nil || !full {
				return err
			}
		}
	}
	m.quick.valid = false
	opt := syncScanOptions{sizeHint: len(m.msgs), missing: m.syncMissingKnown, underLock: m.kw.refresh}
	if !m.opened {
		// OpenMailbox: from the listing cache when it is usable, and
		// otherwise leave one for the next open (as Snapshot does).
		if ok, err := m.openFromListingLocked(before); ok || err != nil {
			return err
		}
		// The listing is a cache: failing to write one only means the
		// next open lists the directories.
		opt.done = func(sc syncScan) { _ = m.writeListing(sc) }
	}
	sc, err := m.scan(opt)
	if err != nil {
		return err
	}
	msgs := m.syncView(m.ul.u.Records, sc.recEntry, sc.files)
	if err := m.modseqSyncLocked(msgs); err != nil {
		return err
	}
	m.syncRecordChanges(msgs)
	m.msgs = msgs
	m.reindexLocked()
	// Remember the state as of the start of this sync: anything that
	// changed after it makes the stamps differ next time.
	m.quick = syncQuickState{valid: true, stamp: before, listedAt: time.Now()}
	if sc.ulStated && !before[2].same(sc.ulStamp) {
		m.quick.stamp[2] = sc.ulStamp // our own uidlist write is not a change
	}
	return nil
}

// listAll lists new/ and cur/, re-listing while known messages are
// missing or a directory changed during the listing. clean reports that the
// last listing saw neither directory change, so it cannot have skipped a
// file (readdir misses only entries renamed while it runs).
func (d *syncDisk) listAll(opt syncScanOptions) (files *syncFiles, clean bool, err error) {
	// The uidlist was just read: its record count is the best guess of
	// how many files there are, also on the first sync of a fresh open.
	files = newSyncFiles(max(opt.sizeHint, len(d.ul.u.Records)) + 16)
	for scan := 0; scan < syncMaxScans; scan++ {
		changed, err := d.listOnce(files)
		if err != nil {
			return nil, false, err
		}
		clean = !changed
		files.clean, files.passes = clean, scan+1
		if !changed && (opt.missing == nil || !opt.missing(files)) {
			break
		}
	}
	return files, clean, nil
}

// syncMissingKnown reports whether a message in the current view has no
// file in the listing.
func (m *Mailbox) syncMissingKnown(files *syncFiles) bool {
	for _, msg := range m.msgs {
		if _, ok := files.byBase[msg.Name.Base]; !ok {
			return true
		}
	}
	return false
}

// listOnce lists new/ then cur/ into files (later listings win) and
// reports whether either directory changed while it was being read.
func (d *syncDisk) listOnce(files *syncFiles) (bool, error) {
	changed := false
	// The uidlist holds every base once (plus a UID): with room for the
	// info parts it bounds what a listing of the known files needs.
	// Without records (a first sync) there is no bound but the
	// directory's size, which syncReadDir uses when hint is 0.
	hint := 0
	if len(d.ul.u.Records) > 0 {
		hint = int(d.ul.size) + 8*len(d.ul.u.Records) + 4096
	}
	for _, dir := range []uint8{syncNew, syncCur} {
		path := filepath.Join(d.path, syncDirNames[dir])
		before, err := syncStampOf(path)
		if err != nil {
			return false, err
		}
		names, err := syncReadDir(path, hint)
		if err != nil {
			return false, err
		}
		after, err := syncStampOf(path)
		if err != nil {
			return false, err
		}
		if !before.mtime.Equal(after.mtime) || !before.ctime.Equal(after.ctime) {
			changed = true
		}
		files.stamps[dir] = before
		files.reserve(len(names))
		for _, name := range names {
			if err := d.addEntry(files, dir, name); err != nil {
				return false, err
			}
		}
	}
	return changed, nil
}

// addEntry records one listed file, resolving two names with one base.
func (d *syncDisk) addEntry(files *syncFiles, dir uint8, name string) error {
	if name == "" || name[0] == '.' {
		return nil // maildir(5): readers skip dot files
	}
	baseLen := -1
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\n', '\r':
			return nil // cannot be written to the uidlist; Dovecot ignores it too
		case '/', 0:
			return nil // not a name ParseName accepts
		case ':':
			if baseLen < 0 {
				baseLen = i
			}
		}
	}
	if baseLen < 0 {
		baseLen = len(name)
	}
	e := syncEntry{dir: dir, name: name, baseLen: int32(baseLen)}
	old, dup := files.lookup(e.base())
	if !dup {
		files.add(e)
		return nil
	}
	if old.dir == e.dir && old.name == e.name {
		return nil
	}
	// Same base twice: a rename seen half-way, a new/ → cur/ move seen in
	// both listings, or a real duplicate. Keep the name that exists.
	oldExists := syncExists(filepath.Join(d.path, syncDirNames[old.dir], old.name))
	newExists := syncExists(filepath.Join(d.path, syncDirNames[dir], name))
	switch {
	case !oldExists:
		*old = e
	case !newExists:
	default:
		// Two files, one base (e.g. a restored backup). Give the second a
		// base of its own so both are kept, as Dovecot does.
		n, err := ParseName(name)
		if err != nil {
			return nil
		}
		n.Base = mailboxUniqueBase(n.Base)
		n.HasInfo = true
		if err := os.Rename(filepath.Join(d.path, syncDirNames[dir], name), filepath.Join(d.path, "cur", n.String())); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("maildir: rename duplicate: %w", err)
		}
		files.add(newSyncEntry(syncCur, n.String()))
	}
	return nil
}

// syncExists reports whether path exists (one lstat, only for conflicts).
func syncExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// assign matches files to records, assigns UIDs to new files and writes
// the uidlist. It returns, per record, the index of its file's entry.
func (d *syncDisk) assign(files *syncFiles, clean bool) ([]int32, error) {
	u := d.ul.u
	recEntry, absent := syncMatch(u.Records, files)
	var fresh []int32 // entries without a record
	for i := range files.entries {
		if files.entries[i].rec == 0 {
			fresh = append(fresh, int32(i))
		}
	}
	syncSortFresh(fresh, files.entries)
	// A cold open of a big Maildir adds every file: grow the records and
	// recEntry once, not by doubling (at 100,000 files the copies cost
	// more than the sort).
	u.Records = slices.Grow(u.Records, len(fresh))
	recEntry = slices.Grow(recEntry, len(fresh))
	first := len(u.Records)
	for _, ei := range fresh {
		if u.NextUID == ^uint32(0) {
			return nil, fmt.Errorf("maildir: %s: UIDs exhausted", d.path)
		}
		rec := UidlistRecord{UID: u.NextUID, Name: files.entries[ei].base()}
		u.NextUID++
		files.entries[ei].rec = int32(len(u.Records)) + 1
		u.Records = append(u.Records, rec)
		recEntry = append(recEntry, ei)
	}
	// The new records are the tail of u.Records; writeUidlist only
	// reads them, before any compression reorders the records.
	added := slices.Clip(u.Records[first:])
	compressed, err := d.writeUidlist(absent, added, clean)
	if err != nil {
		return nil, err
	}
	if compressed { // record indices moved
		recEntry, _ = syncMatch(u.Records, files)
	}
	return recEntry, nil
}

// syncMatch matches records to files by base: entries[].rec and, per
// record, the index of its entry (-1 if none). Of two records for one base
// the later wins, as in Dovecot. absent lists the bases of records without
// a file.
func syncMatch(recs []UidlistRecord, files *syncFiles) (recEntry []int32, absent []string) {
	for i := range files.entries {
		files.entries[i].rec = 0
	}
	recEntry = make([]int32, len(recs), len(recs)+len(files.entries)/8+16)
	for i, r := range recs {
		base := r.Base()
		ei, ok := files.byBase[base]
		if !ok {
			recEntry[i] = -1
			absent = append(absent, base)
			continue
		}
		recEntry[i] = ei
		files.entries[ei].rec = int32(i) + 1
	}
	return recEntry, absent
}

// messagePathRoot splits the part of a message's path before its
// directory (new/ or cur/) into the Maildir's path and the separator to
// put after it, so that root+sep+dir+"/"+name is the very string
// filepath.Join(path, dir, name) makes, without allocating here.
func messagePathRoot(path string) (root, sep string) {
	root = filepath.Clean(path)
	switch {
	case root == ".":
		return "", ""
	case strings.HasSuffix(root, "/"):
		return root, ""
	}
	return root, "/"
}

// syncView builds the view, in record (UID) order. The paths of all
// messages are one string and each Path and Name.Base a slice of it: one
// allocation for the whole Maildir instead of one or two per message.
func (m *Mailbox) syncView(recs []UidlistRecord, recEntry []int32, files *syncFiles) []Message {
	root, sep := messagePathRoot(m.path)
	n, total := 0, 0
	for i, ei := range recEntry {
		if ei >= 0 && files.entries[ei].rec == int32(i)+1 {
			n++
			total += len(root) + len(sep) + len("cur/") + len(files.entries[ei].name)
		}
	}
	var b strings.Builder
	b.Grow(total)
	for i, ei := range recEntry {
		if ei >= 0 && files.entries[ei].rec == int32(i)+1 {
			e := files.entries[ei]
			b.WriteString(root)
			b.WriteString(sep)
			b.WriteString(syncDirNames[e.dir])
			b.WriteByte('/')
			b.WriteString(e.name)
		}
	}
	paths := b.String()
	msgs := make([]Message, 0, n)
	off := 0
	for i, ei := range recEntry {
		if ei < 0 || files.entries[ei].rec != int32(i)+1 {
			continue // no file, or an older record for the same base
		}
		e := files.entries[ei]
		dirLen := len(root) + len(sep) + len(syncDirNames[e.dir]) + 1
		path := paths[off : off+dirLen+len(e.name)]
		off += len(path)
		msgs = append(msgs, syncMessage(recs[i], e.dir, path, path[dirLen:]))
	}
	return msgs
}

// writeUidlist persists new records: appended when that is all that
// changed, or a full rewrite when the file needs one, or when records of
// vanished files make up a quarter of it (Dovecot's 75% compress rule). It
// reports whether records were dropped.
//
// Dropping a record whose file was only hidden by a racing rename would
// give that file a second UID later, so a record is dropped only if its
// file was missing from a clean listing now and from the previous sync.
func (d *syncDisk) writeUidlist(absentBases []string, added []UidlistRecord, clean bool) (bool, error) {
	u := d.ul.u
	var absent map[string]bool
	if len(absentBases) > 0 {
		absent = make(map[string]bool, len(absentBases))
	}
	droppable := 0
	for _, base := range absentBases {
		absent[base] = true
		if clean && d.absentPrev[base] {
			droppable++
		}
	}
	prev := d.absentPrev
	d.absentPrev = absent
	if droppable >= 8 && droppable*4 >= len(u.Records) {
		u.Records = slices.DeleteFunc(u.Records, func(r UidlistRecord) bool {
			return absent[r.Base()] && prev[r.Base()]
		})
		return true, d.ul.rewrite()
	}
	if d.ul.needRewrite || d.ul.size == 0 {
		return false, d.ul.rewrite()
	}
	if len(added) > 0 {
		return false, d.ul.appendRecords(added)
	}
	return false, nil
}

// syncMessage builds a Message from its record and file; name is the file
// name, a suffix of path.
func syncMessage(r UidlistRecord, dir uint8, path, name string) Message {
	n, _ := ParseName(name) // addEntry let only valid names through
	size, vsize := syncSizes(r, n.Base)
	return Message{UID: r.UID, Name: n, Dir: syncDirNames[dir], Path: path, Size: size, VSize: vsize}
}

// syncSizes are a message's size on disk and CRLF size from its base's
// ,S= and ,W= or else its record's S and W fields; -1 if neither says.
func syncSizes(r UidlistRecord, base string) (size, vsize int64) {
	size, vsize = -1, -1
	bs := syncBaseSizesOf(base)
	if bs.hasS {
		size = bs.s
	} else if v, ok := r.Field('S'); ok {
		size = int64(uidlistAtoi(v))
	}
	if bs.hasW {
		vsize = bs.w
	} else if v, ok := r.Field('W'); ok {
		vsize = int64(uidlistAtoi(v))
	}
	return size, vsize
}

// syncBaseSizes are a base's ,S= and ,W= fields as syncBaseField reads
// them; has says whether the field was there and valid.
type syncBaseSizes struct {
	s, w       int64
	hasS, hasW bool
}

// syncBaseSizesOf is syncBaseField for 'S' and for 'W' in one pass over
// base: the first field of each key decides, as there.
func syncBaseSizesOf(base string) syncBaseSizes {
	var out syncBaseSizes
	seenS, seenW := false, false
	for i := strings.IndexByte(base, ','); i >= 0 && !(seenS && seenW); {
		f := base[i+1:]
		next := strings.IndexByte(f, ',')
		if next >= 0 {
			f = f[:next]
		}
		if len(f) >= 2 && f[1] == '=' {
			switch {
			case f[0] == 'S' && !seenS:
				seenS = true
				out.s, out.hasS = syncDecimal(f[2:])
			case f[0] == 'W' && !seenW:
				seenW = true
				out.w, out.hasW = syncDecimal(f[2:])
			}
		}
		if next < 0 {
			break
		}
		i += 1 + next
	}
	if !out.hasS {
		out.s = 0
	}
	if !out.hasW {
		out.w = 0
	}
	return out
}

// syncBaseField is Name.Size and Name.VSize (",<key>=<digits>" in the
// base) without allocating: it runs for every message at every open.
func syncBaseField(base string, key byte) (int64, bool) {
	for i := strings.IndexByte(base, ','); i >= 0; {
		f := base[i+1:]
		next := strings.IndexByte(f, ',')
		if next >= 0 {
			f = f[:next]
		}
		if len(f) >= 2 && f[0] == key && f[1] == '=' {
			v, ok := syncDecimal(f[2:])
			if ok {
				return v, true
			}
			return 0, false
		}
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return 0, false
}

// syncDecimal parses a non-negative decimal int64 exactly as
// strconv.ParseInt(s, 10, 64) with a check for v >= 0 would, with a fast
// path for plain digits.
func syncDecimal(s string) (int64, bool) {
	plain := s != "" && len(s) <= 18
	for i := 0; plain && i < len(s); i++ {
		plain = s[i] >= '0' && s[i] <= '9'
	}
	if !plain {
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil && v >= 0
	}
	var v int64
	for i := 0; i < len(s); i++ {
		v = v*10 + int64(s[i]-'0')
	}
	return v, true
}

// syncRecordChanges adds the differences between the view and msgs to
// m.pending. Both are in ascending UID order, so one merge pass finds them.
// The first sync of OpenMailbox has nothing to compare with.
func (m *Mailbox) syncRecordChanges(msgs []Message) {
	if !m.opened {
		return
	}
	var ch Changes
	old := m.msgs
	i := 0
	for _, msg := range msgs {
		for i < len(old) && old[i].UID < msg.UID {
			ch.Expunged = append(ch.Expunged, old[i].UID)
			i++
		}
		if i == len(old) || old[i].UID != msg.UID {
			ch.New = append(ch.New, msg.UID)
			continue
		}
		if old[i].Name.Flags != msg.Name.Flags || old[i].Name.Keywords != msg.Name.Keywords || old[i].ModSeq != msg.ModSeq {
			ch.FlagsChanged = append(ch.FlagsChanged, msg.UID)
		}
		i++
	}
	for ; i < len(old); i++ {
		ch.Expunged = append(ch.Expunged, old[i].UID)
	}
	m.pending = syncMergeChanges(m.pending, ch)
}

// syncMergeChanges folds later changes b into earlier a: a message that
// came and went between two Syncs is not reported at all.
func syncMergeChanges(a, b Changes) Changes {
	if a.Empty() {
		slices.Sort(b.New)
		slices.Sort(b.Expunged)
		slices.Sort(b.FlagsChanged)
		return b
	}
	isNew := map[uint32]bool{}
	for _, u := range a.New {
		isNew[u] = true
	}
	for _, u := range b.New {
		isNew[u] = true
	}
	gone := map[uint32]bool{}
	var out Changes
	for _, u := range append(a.Expunged, b.Expunged...) {
		if gone[u] {
			continue
		}
		gone[u] = true
		if isNew[u] {
			continue // never reported as new: nothing to report
		}
		out.Expunged = append(out.Expunged, u)
	}
	for u := range isNew {
		if !gone[u] {
			out.New = append(out.New, u)
		}
	}
	flagged := map[uint32]bool{}
	for _, u := range append(a.FlagsChanged, b.FlagsChanged...) {
		if !flagged[u] && !gone[u] && !isNew[u] {
			flagged[u] = true
			out.FlagsChanged = append(out.FlagsChanged, u)
		}
	}
	slices.Sort(out.New)
	slices.Sort(out.Expunged)
	slices.Sort(out.FlagsChanged)
	return out
}

// syncFreshKey is a new file's sort key for syncSortFresh: syncNameLess's
// numbers, parsed once per file instead of once per comparison. It holds
// no pointer (the base is looked up by ei on a tie), so 100,000 keys are
// neither zeroed nor scanned by the garbage collector.
type syncFreshKey struct {
	secs, usecs uint64
	ei          int32
	hasUsecs    bool
}

// syncSortFresh sorts the entries fresh indexes as syncNameLess orders
// their bases, the order Dovecot assigns UIDs in.
func syncSortFresh(fresh []int32, entries []syncEntry) {
	if len(fresh) < 2 {
		return
	}
	keys := make([]syncFreshKey, len(fresh))
	for i, ei := range fresh {
		secs, rest := syncLeadingNumber(entries[ei].base())
		usecs, ok := syncUsecs(rest)
		keys[i] = syncFreshKey{secs: secs, usecs: usecs, hasUsecs: ok, ei: ei}
	}
	slices.SortFunc(keys, func(a, b syncFreshKey) int {
		// syncNameLess as a three-way compare.
		if a.secs != b.secs {
			return cmp.Compare(a.secs, b.secs)
		}
		if a.hasUsecs && b.hasUsecs && a.usecs != b.usecs {
			return cmp.Compare(a.usecs, b.usecs)
		}
		return strings.Compare(entries[a.ei].base(), entries[b.ei].base())
	})
	for i := range keys {
		fresh[i] = keys[i].ei
	}
}

// syncNameLess orders new files as Dovecot assigns them UIDs: by the time
// stamp at the start of the name, then the microseconds after ".M" in the
// unique part, then by base.
func syncNameLess(a, b string) bool {
	sa, ra := syncLeadingNumber(a)
	sb, rb := syncLeadingNumber(b)
	if sa != sb {
		return sa < sb
	}
	ua, oka := syncUsecs(ra)
	ub, okb := syncUsecs(rb)
	if oka && okb && ua != ub {
		return ua < ub
	}
	return a < b
}

// syncLeadingNumber parses the decimal digits at the start of s.
func syncLeadingNumber(s string) (uint64, string) {
	var n uint64
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && i < 19 {
		n = n*10 + uint64(s[i]-'0')
		i++
	}
	return n, s[i:]
}

// syncUsecs finds "M<digits>" in the unique part ".<unique>.<host>".
func syncUsecs(rest string) (uint64, bool) {
	if rest == "" || rest[0] != '.' {
		return 0, false
	}
	for i := 1; i < len(rest) && rest[i] != '.' && rest[i] != ':'; i++ {
		if rest[i] == 'M' {
			n, _ := syncLeadingNumber(rest[i+1:])
			return n, true
		}
	}
	return 0, false
}
