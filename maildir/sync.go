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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"time"
)

// syncMaxScans bounds the listings per sync when racing renames are seen.
const syncMaxScans = 4

// syncDirtyWindow is how recent an mtime must be for a directory to count
// as possibly changed again within the same timestamp.
const syncDirtyWindow = time.Second

// syncEntry is one file found by a listing.
type syncEntry struct {
	dir  string // "new" or "cur"
	name string
	n    Name
}

// syncQuickState remembers what the last full sync saw.
type syncQuickState struct {
	valid bool
	stamp [4]syncStamp // new/, cur/, uidlist, keywords
}

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

// syncLocked syncs; the caller holds m.mu. Changes go to m.pending.
func (m *Mailbox) syncLocked() (err error) {
	before, err := m.syncStamps()
	if err != nil {
		return err
	}
	if m.quick.valid && m.ul.u != nil {
		unchanged := true
		for i := range before {
			if !m.quick.stamp[i].same(before[i]) {
				unchanged = false
			}
		}
		if unchanged {
			return nil
		}
	}
	lk, err := uidlistLockAcquire(m.path, m.lockOpt)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := lk.release(); err == nil && rerr != nil {
			err = rerr
			m.quick.valid = false
		}
	}()
	m.quick.valid = false
	if err := m.ul.refresh(); err != nil {
		return err
	}
	if m.ul.u == nil {
		if err := m.ul.create(); err != nil {
			return err
		}
	}
	if err := m.kw.refresh(); err != nil {
		return err
	}
	files, clean, err := m.syncListAll()
	if err != nil {
		return err
	}
	if err := m.syncAssign(files, clean); err != nil {
		return err
	}
	// Remember the state as of the start of this sync: anything that
	// changed after it makes the stamps differ next time.
	m.quick = syncQuickState{valid: true, stamp: before}
	if st, err := syncStampOf(m.ul.path); err == nil && !before[2].same(st) {
		m.quick.stamp[2] = st // our own uidlist write is not a change
	}
	return nil
}

// syncListAll lists new/ and cur/, re-listing while known messages are
// missing or a directory changed during the listing. clean reports that the
// last listing saw neither directory change, so it cannot have skipped a
// file (readdir misses only entries renamed while it runs).
func (m *Mailbox) syncListAll() (files map[string]syncEntry, clean bool, err error) {
	files = make(map[string]syncEntry, len(m.msgs)+16)
	for scan := 0; scan < syncMaxScans; scan++ {
		changed, err := m.syncListOnce(files)
		if err != nil {
			return nil, false, err
		}
		clean = !changed
		if !changed && !m.syncMissingKnown(files) {
			break
		}
	}
	return files, clean, nil
}

// syncMissingKnown reports whether a message in the current view has no
// file in the listing.
func (m *Mailbox) syncMissingKnown(files map[string]syncEntry) bool {
	for _, msg := range m.msgs {
		if _, ok := files[msg.Name.Base]; !ok {
			return true
		}
	}
	return false
}

// syncListOnce lists new/ then cur/ into files (later listings win) and
// reports whether either directory changed while it was being read.
func (m *Mailbox) syncListOnce(files map[string]syncEntry) (bool, error) {
	changed := false
	for _, dir := range []string{"new", "cur"} {
		path := filepath.Join(m.path, dir)
		before, err := syncStampOf(path)
		if err != nil {
			return false, err
		}
		names, err := syncReadDir(path)
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
		for _, name := range names {
			if err := m.syncAddEntry(files, dir, name); err != nil {
				return false, err
			}
		}
	}
	return changed, nil
}

// syncReadDir returns the names in dir, without stat.
func syncReadDir(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	names, err := f.Readdirnames(-1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: read %s: %w", dir, err)
	}
	return names, nil
}

// syncAddEntry records one listed file, resolving two names with one base.
func (m *Mailbox) syncAddEntry(files map[string]syncEntry, dir, name string) error {
	if name == "" || name[0] == '.' {
		return nil // maildir(5): readers skip dot files
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '\n' || name[i] == '\r' {
			return nil // cannot be written to the uidlist; Dovecot ignores it too
		}
	}
	n, err := ParseName(name)
	if err != nil {
		return nil
	}
	e := syncEntry{dir: dir, name: name, n: n}
	old, dup := files[n.Base]
	if !dup || (old.dir == e.dir && old.name == e.name) {
		files[n.Base] = e
		return nil
	}
	// Same base twice: a rename seen half-way, a new/ → cur/ move seen in
	// both listings, or a real duplicate. Keep the name that exists.
	oldExists := syncExists(filepath.Join(m.path, old.dir, old.name))
	newExists := syncExists(filepath.Join(m.path, dir, name))
	switch {
	case !oldExists:
		files[n.Base] = e
	case !newExists:
	default:
		// Two files, one base (e.g. a restored backup). Give the second a
		// base of its own so both are kept, as Dovecot does.
		n2 := n
		n2.Base = mailboxUniqueBase(n.Base)
		n2.HasInfo = true
		if err := os.Rename(filepath.Join(m.path, dir, name), filepath.Join(m.path, "cur", n2.String())); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("maildir: rename duplicate: %w", err)
		}
		files[n2.Base] = syncEntry{dir: "cur", name: n2.String(), n: n2}
	}
	return nil
}

// syncExists reports whether path exists (one lstat, only for conflicts).
func syncExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// syncAssign matches files to records, assigns UIDs to new files, writes
// the uidlist, and replaces the view, recording the differences.
func (m *Mailbox) syncAssign(files map[string]syncEntry, clean bool) error {
	u := m.ul.u
	recByBase := make(map[string]int, len(u.Records))
	for i, r := range u.Records {
		recByBase[r.Base()] = i // a later duplicate wins, as in Dovecot
	}
	var fresh []syncEntry
	for base, e := range files {
		if _, ok := recByBase[base]; !ok {
			fresh = append(fresh, e)
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return syncNameLess(fresh[i].n.Base, fresh[j].n.Base) })
	var added []UidlistRecord
	for _, e := range fresh {
		if u.NextUID == ^uint32(0) {
			return fmt.Errorf("maildir: %s: UIDs exhausted", m.path)
		}
		rec := UidlistRecord{UID: u.NextUID, Name: e.n.Base}
		u.NextUID++
		recByBase[e.n.Base] = len(u.Records)
		u.Records = append(u.Records, rec)
		added = append(added, rec)
	}
	if err := m.syncWriteUidlist(files, added, clean); err != nil {
		return err
	}
	clear(recByBase) // compression may have dropped records
	for i, r := range u.Records {
		recByBase[r.Base()] = i
	}
	msgs := make([]Message, 0, len(files))
	for i, r := range u.Records {
		e, ok := files[r.Base()]
		if !ok || recByBase[r.Base()] != i {
			continue // no file, or an older record for the same base
		}
		msgs = append(msgs, syncMessage(m.path, r, e))
	}
	m.syncRecordChanges(msgs)
	m.msgs = msgs
	m.reindexLocked()
	return nil
}

// syncWriteUidlist persists new records: appended when that is all that
// changed, or a full rewrite when the file needs one, or when records of
// vanished files make up a quarter of it (Dovecot's 75% compress rule).
//
// Dropping a record whose file was only hidden by a racing rename would
// give that file a second UID later, so a record is dropped only if its
// file was missing from a clean listing now and from the previous sync.
func (m *Mailbox) syncWriteUidlist(files map[string]syncEntry, added []UidlistRecord, clean bool) error {
	u := m.ul.u
	absent := make(map[string]bool)
	droppable := 0
	for _, r := range u.Records {
		if _, ok := files[r.Base()]; !ok {
			absent[r.Base()] = true
			if clean && m.absentPrev[r.Base()] {
				droppable++
			}
		}
	}
	prev := m.absentPrev
	m.absentPrev = absent
	if droppable >= 8 && droppable*4 >= len(u.Records) {
		u.Records = slices.DeleteFunc(u.Records, func(r UidlistRecord) bool {
			return absent[r.Base()] && prev[r.Base()]
		})
		return m.ul.rewrite()
	}
	if m.ul.needRewrite || m.ul.size == 0 {
		return m.ul.rewrite()
	}
	if len(added) > 0 {
		return m.ul.appendRecords(added)
	}
	return nil
}

// syncMessage builds a Message from its record and file.
func syncMessage(root string, r UidlistRecord, e syncEntry) Message {
	msg := Message{UID: r.UID, Name: e.n, Dir: e.dir, Path: filepath.Join(root, e.dir, e.name), Size: -1, VSize: -1}
	if v, ok := e.n.Size(); ok {
		msg.Size = v
	} else if v, ok := r.Field('S'); ok {
		msg.Size = int64(uidlistAtoi(v))
	}
	if v, ok := e.n.VSize(); ok {
		msg.VSize = v
	} else if v, ok := r.Field('W'); ok {
		msg.VSize = int64(uidlistAtoi(v))
	}
	return msg
}

// syncRecordChanges adds the differences between the view and msgs to
// m.pending.
func (m *Mailbox) syncRecordChanges(msgs []Message) {
	seen := make(map[uint32]bool, len(msgs))
	var ch Changes
	for _, msg := range msgs {
		seen[msg.UID] = true
		i, ok := m.byUID[msg.UID]
		if !ok {
			ch.New = append(ch.New, msg.UID)
			continue
		}
		old := m.msgs[i].Name
		if old.Flags != msg.Name.Flags || old.Keywords != msg.Name.Keywords {
			ch.FlagsChanged = append(ch.FlagsChanged, msg.UID)
		}
	}
	for _, msg := range m.msgs {
		if !seen[msg.UID] {
			ch.Expunged = append(ch.Expunged, msg.UID)
		}
	}
	m.pending = syncMergeChanges(m.pending, ch)
}

// syncMergeChanges folds later changes b into earlier a: a message that
// came and went between two Syncs is not reported at all.
func syncMergeChanges(a, b Changes) Changes {
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
