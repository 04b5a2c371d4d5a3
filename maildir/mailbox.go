package maildir

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/internal/fsx"
)

// ErrExpunged is returned for a UID whose message no longer exists.
var ErrExpunged = errors.New("maildir: message expunged")

// ErrNotMaildir is returned by OpenMailbox for a directory without new/
// and cur/.
var ErrNotMaildir = errors.New("maildir: not a Maildir")

// Message is one message of a synced Mailbox.
type Message struct {
	UID  uint32
	Name Name
	Dir  string // "new" or "cur"
	Path string // full path of the file as last seen
	// Size is the size on disk and VSize the size with CRLF line endings,
	// from the file name's ,S= and ,W= or the uidlist's S and W fields;
	// -1 if neither says (the caller may stat Path).
	Size, VSize int64
	// ModSeq is the message's mod-sequence (RFC 7162): the modseq of the
	// last change to its flags or keywords, by any process, or of its
	// arrival. It is kept in mailroom-modseq (see modseq.go).
	ModSeq uint64
}

// Changes lists what a Sync found changed since the previous Sync, other
// than changes this Mailbox made itself (SetFlags, Expunge, MoveTo). Each
// list is in ascending UID order. FlagsChanged also lists messages whose
// ModSeq moved because another process changed them, even when their flags
// are back to what this Mailbox last saw.
type Changes struct {
	New          []uint32
	Expunged     []uint32
	FlagsChanged []uint32
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.New) == 0 && len(c.Expunged) == 0 && len(c.FlagsChanged) == 0
}

// Mailbox is one Maildir (INBOX or a folder) with its UIDs. Its methods are
// safe for concurrent use; other processes may use the same Maildir at the
// same time, coordinating through dovecot-uidlist.lock as Dovecot does.
type Mailbox struct {
	mu sync.Mutex
	syncDisk
	kw   keywordsFile
	msgs []Message // ascending UID, so found by binary search
	// byBase maps base -> index in msgs. It is built on the first
	// LookupBase after the view changed: only MoveTo's callers need it,
	// and a login should not pay for a map of every message.
	byBase  map[string]int
	pending Changes        // found by internal syncs, not yet returned
	quick   syncQuickState // to skip a sync when nothing changed
	opened  bool           // the first sync is done; later ones record Changes
	ms      modseqState    // MODSEQs and \Recent (modseq.go)
}

// OpenMailbox opens the Maildir at path and syncs it once.
func OpenMailbox(path string) (*Mailbox, error) {
	if err := checkMaildir(path); err != nil {
		return nil, err
	}
	m := &Mailbox{
		syncDisk: newSyncDisk(path),
		kw:       keywordsFile{path: filepath.Join(path, KeywordsName)},
	}
	m.ms.file.path = filepath.Join(path, ModSeqName)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.syncLocked(); err != nil {
		return nil, err
	}
	m.pending = Changes{}
	m.opened = true
	return m, nil
}

// checkMaildir reports ErrNotMaildir unless path has new/ and cur/.
func checkMaildir(path string) error {
	for _, d := range []string{"new", "cur"} {
		fi, err := os.Stat(filepath.Join(path, d))
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrNotMaildir, path, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s/%s is not a directory", ErrNotMaildir, path, d)
		}
	}
	return nil
}

// Path returns the Maildir's directory.
func (m *Mailbox) Path() string { return m.path }

// Messages returns the messages as of the last sync, by UID.
func (m *Mailbox) Messages() []Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Message(nil), m.msgs...)
}

// Len returns the number of messages as of the last sync.
func (m *Mailbox) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.msgs)
}

// Range calls fn for each message as of the last sync, in UID order, until
// fn returns false. Unlike Messages it copies no list, for callers that
// keep their own compact form of it (pop3d's per-session snapshot). It
// holds the Mailbox's lock while fn runs: fn must not call methods of m.
func (m *Mailbox) Range(fn func(msg Message) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range m.msgs {
		if !fn(msg) {
			return
		}
	}
}

// Lookup returns the message with uid.
func (m *Mailbox) Lookup(uid uint32) (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.indexLocked(uid)
	if !ok {
		return Message{}, false
	}
	return m.msgs[i], true
}

// indexLocked finds uid in msgs.
func (m *Mailbox) indexLocked(uid uint32) (int, bool) {
	return slices.BinarySearchFunc(m.msgs, uid, func(msg Message, uid uint32) int {
		return cmp.Compare(msg.UID, uid)
	})
}

// LookupBase returns the message whose file name has the given base, e.g.
// the one MoveTo returned, after the destination synced.
func (m *Mailbox) LookupBase(base string) (Message, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byBase == nil {
		m.byBase = make(map[string]int, len(m.msgs))
		for i, msg := range m.msgs {
			m.byBase[msg.Name.Base] = i
		}
	}
	i, ok := m.byBase[base]
	if !ok {
		return Message{}, false
	}
	return m.msgs[i], true
}

// UIDValidity returns the mailbox's UIDVALIDITY.
func (m *Mailbox) UIDValidity() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ul.u.UIDValidity
}

// UIDNext returns the UID the next new message will get.
func (m *Mailbox) UIDNext() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ul.u.NextUID
}

// KeywordNames returns the keyword names indexed by slot ("" for a free
// slot), up to the last defined slot.
func (m *Mailbox) KeywordNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := m.kw.list[:]
	for len(names) > 0 && names[len(names)-1] == "" {
		names = names[:len(names)-1]
	}
	return append([]string(nil), names...)
}

// KeywordList returns the slot table as of the last sync.
func (m *Mailbox) KeywordList() KeywordList {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kw.list
}

// KeywordSlot returns the slot of keyword name, or -1 if it has none and
// create is false. With create it assigns the lowest free slot, writing
// dovecot-keywords under the uidlist lock.
func (m *Mailbox) KeywordSlot(name string, create bool) (int, error) {
	if !ValidKeyword(name) {
		return -1, fmt.Errorf("%w: %q", ErrBadKeyword, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keywordSlotLocked(name, create)
}

func (m *Mailbox) keywordSlotLocked(name string, create bool) (slot int, err error) {
	if err := m.kw.refresh(); err != nil {
		return -1, err
	}
	if slot := m.kw.list.Slot(name); slot >= 0 || !create {
		return slot, nil
	}
	lk, err := uidlistLockAcquire(m.path, m.lockOpt)
	if err != nil {
		return -1, err
	}
	defer func() {
		if rerr := lk.release(); err == nil && rerr != nil {
			slot, err = -1, rerr
		}
	}()
	if err := m.kw.refresh(); err != nil { // another writer may have added it
		return -1, err
	}
	if slot := m.kw.list.Slot(name); slot >= 0 {
		return slot, nil
	}
	list := m.kw.list
	for i := range list {
		if list[i] == "" {
			list[i] = name
			if err := m.kw.write(list); err != nil {
				return -1, err
			}
			return i, nil
		}
	}
	return -1, ErrTooManyKeywords
}

// mailboxRetries bounds how often an operation that lost a rename race is
// retried after a resync.
const mailboxRetries = 5

// SetFlags replaces the flags and keywords of uid. The file is renamed to
// cur/<base>:2,<flags> (from new/ or within cur/); the base never changes.
// If another process renamed the file first, the mailbox is resynced and
// the rename retried; ErrExpunged means the message is gone.
func (m *Mailbox) SetFlags(uid uint32, f Flags, k Keywords) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, err := m.setFlagsLocked(uid, f, k)
	if err != nil || dir == "" {
		return err
	}
	if setFlagsRenamedHook != nil {
		setFlagsRenamedHook(uid)
	}
	if err := m.modseqFlagsLocked([]uint32{uid}); err != nil {
		return err
	}
	// Destination first: once new/ forgets the name, cur/ must already
	// hold it durably.
	return mailboxSyncDirs(m.path, "cur", dir)
}

// setFlagsRenamedHook, when set (by tests), runs in SetFlags between the
// rename and the modseq record: the window in which another Mailbox's
// conditional store must not take the message for unchanged.
var setFlagsRenamedHook func(uid uint32)

// FlagChange is one message's new flags and keywords, for SetFlagsMany.
type FlagChange struct {
	UID      uint32
	Flags    Flags
	Keywords Keywords
}

// SetFlagsMany applies SetFlags to every change, renaming all the files
// first and then syncing cur/ (and new/, if a file left it) once, so that
// an IMAP STORE on 100,000 messages costs two directory flushes, not
// 100,000. Messages already expunged are skipped. On an error the renames
// done so far are still synced, and the error names the failing UID.
func (m *Mailbox) SetFlagsMany(changes []FlagChange) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var touched touchedDirs
	var firstErr error
	var changed []uint32
	for _, c := range changes {
		dir, err := m.setFlagsLocked(c.UID, c.Flags, c.Keywords)
		if errors.Is(err, ErrExpunged) {
			continue
		}
		if err != nil {
			firstErr = err
			break
		}
		if dir != "" {
			touched.renamed(dir)
			changed = append(changed, c.UID)
		}
	}
	// The modseq records are written and fsync'd before the directories,
	// so both are durable when the caller answers OK.
	if err := m.modseqFlagsLocked(changed); err != nil && firstErr == nil {
		firstErr = err
	}
	if err := touched.sync(m.path); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// SetFlagsManyIf is SetFlagsMany with RFC 7162 §3.1.3's UNCHANGEDSINCE,
// made exact across processes: under the flock of mailroom-modseq, in the
// critical section that assigns the new modseq, each message's modseq is
// checked against the log (which holds every other Mailbox's changes) and
// its file renamed only if it is ≤ unchangedSince; otherwise its UID is in
// modified (ascending) and it is left alone. change computes the new flags
// and keywords from the message's current ones, as checked, so no change
// another process made in between is overwritten. A file that another
// process renamed without writing the log (Dovecot, a mail client) makes
// its rename fail; the mailbox is then resynced, which records that change
// at a new modseq, and the message checked again. changed lists the UIDs
// whose files got new flags; expunged messages are skipped.
func (m *Mailbox) SetFlagsManyIf(uids []uint32, unchangedSince uint64, change func(Flags, Keywords) (Flags, Keywords)) (changed, modified []uint32, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var touched touchedDirs
	pending := uids
	for round := 0; len(pending) > 0; round++ {
		if round == mailboxRetries {
			err = fmt.Errorf("maildir: set flags of uid %d: file keeps moving", pending[0])
			break
		}
		if round > 0 {
			if err = m.resyncLocked(); err != nil {
				break
			}
		}
		var r setFlagsIfRound
		r, err = m.setFlagsIfLocked(pending, unchangedSince, change)
		changed, modified = append(changed, r.changed...), append(modified, r.modified...)
		touched.cur, touched.new = touched.cur || r.dirs.cur, touched.new || r.dirs.new
		pending = r.retry
		if err != nil {
			break
		}
	}
	if serr := touched.sync(m.path); serr != nil && err == nil {
		err = serr
	}
	slices.Sort(changed)
	slices.Sort(modified)
	return changed, slices.Compact(modified), err
}

// renameFile is rename(2) for a message file. os.Rename first lstats the
// new name, so that a directory is never renamed over an empty one: one
// more system call per message, which a STORE of 1:* pays 100,000 times.
// A message file is not a directory, and rename(2) itself refuses to put
// a file over one (EISDIR).
func renameFile(from, to string) error {
	if err := unix.Rename(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// setFlagsLocked renames uid's file for f and k and returns the directory
// it came from ("new" or "cur"), or "" when nothing had to change. The
// caller syncs the directories.
func (m *Mailbox) setFlagsLocked(uid uint32, f Flags, k Keywords) (string, error) {
	for attempt := 0; attempt < mailboxRetries; attempt++ {
		i, ok := m.indexLocked(uid)
		if !ok {
			return "", fmt.Errorf("%w: uid %d", ErrExpunged, uid)
		}
		msg := m.msgs[i]
		n := msg.Name
		if strings.HasPrefix(n.Other, ":") {
			n.Other = "" // an experimental ":1," info gives way to ":2,"
		}
		n.HasInfo, n.Flags, n.Keywords = true, f, k
		name := n.String()
		if msg.Dir == "cur" && filepath.Base(msg.Path) == name {
			return "", nil
		}
		dst := filepath.Join(m.path, "cur", name)
		err := renameFile(msg.Path, dst)
		if err == nil {
			from := msg.Dir
			m.msgs[i].Name, m.msgs[i].Dir, m.msgs[i].Path = n, "cur", dst
			return from, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("maildir: set flags: %w", err)
		}
		// Lost a race (another process renamed or expunged it): resync.
		if err := m.resyncLocked(); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("maildir: set flags of uid %d: file keeps moving", uid)
}

// Expunge deletes the messages. UIDs already gone are not an error.
func (m *Mailbox) Expunge(uids ...uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var touched touchedDirs
	// Removed files leave the view in one pass, not one reindex each:
	// expunging most of a 100,000-message mailbox must stay linear.
	gone := map[uint32]bool{}
	defer func() { m.dropLocked(gone) }()
	var removed []uint32 // every UID this call removed, across resyncs
	for _, uid := range uids {
		for attempt := 0; ; attempt++ {
			i, ok := m.indexLocked(uid)
			if !ok || gone[uid] {
				break
			}
			msg := m.msgs[i]
			err := os.Remove(msg.Path)
			if err == nil {
				touched.removed(msg.Dir)
				gone[uid] = true
				removed = append(removed, uid)
				break
			}
			if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("maildir: expunge: %w", err)
			}
			if attempt == mailboxRetries {
				return fmt.Errorf("maildir: expunge uid %d: file keeps moving", uid)
			}
			// Our own removals must not be reported by the resync, and
			// are recorded before it could take them for a foreign
			// expunge.
			m.dropLocked(gone)
			clear(gone)
			if err := m.modseqExpungeLocked(removed); err != nil {
				return err
			}
			removed = removed[:0]
			if err := m.resyncLocked(); err != nil {
				return err
			}
		}
	}
	if err := m.modseqExpungeLocked(removed); err != nil {
		return err
	}
	return touched.sync(m.path)
}

// MoveTo moves uid into dst's cur/ by rename, keeping flags and the mtime
// (INTERNALDATE) and carrying keywords over by name. The file gets a new
// base, so dst assigns a fresh UID on its next Sync (an old record for the
// same base there could otherwise resurrect a stale UID); MoveTo returns
// that base for dst.LookupBase. Keywords dst has no slot left for are
// dropped.
func (m *Mailbox) MoveTo(uid uint32, dst *Mailbox) (string, error) {
	if dst == m || filepath.Clean(dst.path) == filepath.Clean(m.path) {
		return "", fmt.Errorf("maildir: move uid %d: source and destination are the same mailbox", uid)
	}
	m.mu.Lock()
	i, ok := m.indexLocked(uid)
	var names []string
	if ok {
		names = m.kw.list.Names(m.msgs[i].Name.Keywords)
	}
	m.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("%w: uid %d", ErrExpunged, uid)
	}
	var kw Keywords
	for _, name := range names {
		slot, err := dst.KeywordSlot(name, true)
		if errors.Is(err, ErrTooManyKeywords) || errors.Is(err, ErrBadKeyword) {
			continue
		}
		if err != nil {
			return "", err
		}
		kw = kw.With(slot)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for attempt := 0; attempt < mailboxRetries; attempt++ {
		i, ok := m.indexLocked(uid)
		if !ok {
			return "", fmt.Errorf("%w: uid %d", ErrExpunged, uid)
		}
		msg := m.msgs[i]
		base := mailboxUniqueBase(msg.Name.Base)
		n := Name{Base: base, HasInfo: true, Flags: msg.Name.Flags, Keywords: kw}
		err := os.Rename(msg.Path, filepath.Join(dst.path, "cur", n.String()))
		if err == nil {
			if err := syncDir(filepath.Join(dst.path, "cur")); err != nil {
				return "", err
			}
			m.dropLocked(map[uint32]bool{uid: true})
			if err := m.modseqExpungeLocked([]uint32{uid}); err != nil {
				return "", err
			}
			if err := syncDir(filepath.Join(m.path, msg.Dir)); err != nil {
				return "", err
			}
			return base, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("maildir: move: %w", err)
		}
		if err := m.resyncLocked(); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("maildir: move uid %d: file keeps moving", uid)
}

// dropLocked removes the UIDs in gone from the view without reporting
// them, in one pass.
func (m *Mailbox) dropLocked(gone map[uint32]bool) {
	if len(gone) == 0 {
		return
	}
	m.msgs = slices.DeleteFunc(m.msgs, func(msg Message) bool { return gone[msg.UID] })
	m.reindexLocked()
}

// reindexLocked drops the by-base index after msgs changed; LookupBase
// rebuilds it when asked.
func (m *Mailbox) reindexLocked() {
	m.byBase = nil
}

// touchedDirs is which of a Maildir's new/ and cur/ a batch of renames or
// removals changed, each fsync'd once at the end (a STORE of 1:* renames
// one file per message: two booleans, not a set).
type touchedDirs struct{ new, cur bool }

// renamed notes a file renamed from from/ into cur/.
func (t *touchedDirs) renamed(from string) {
	t.cur = true
	t.new = t.new || from == "new"
}

// removed notes a file removed from dir/ ("new" or "cur").
func (t *touchedDirs) removed(dir string) {
	t.cur = t.cur || dir == "cur"
	t.new = t.new || dir == "new"
}

// sync fsyncs the directories touched: cur/ first, where the files are.
func (t touchedDirs) sync(path string) error {
	if t.cur {
		if err := syncDir(filepath.Join(path, "cur")); err != nil {
			return err
		}
	}
	if t.new {
		return syncDir(filepath.Join(path, "new"))
	}
	return nil
}

// mailboxSyncDirs fsyncs the named subdirectories of a Maildir, once each.
func mailboxSyncDirs(path string, dirs ...string) error {
	done := map[string]bool{}
	for _, d := range dirs {
		if done[d] {
			continue
		}
		done[d] = true
		if err := syncDir(filepath.Join(path, d)); err != nil {
			return err
		}
	}
	return nil
}

// mailboxUniqueBase returns a new unique base for a message moved or split
// off under a new name: a UniqueBase (same Q counter as deliveries, so the
// two can never coincide) followed by the ",S=" / ",W=" fields of the old
// base so sizes stay known without a stat.
func mailboxUniqueBase(old string) string {
	host, err := deliverHostname()
	if err != nil {
		host = "" // EscapeHost makes it "localhost"
	}
	var fields string
	if i := strings.IndexByte(old, ','); i >= 0 {
		fields = old[i:]
	}
	return UniqueBase(time.Now(), host) + fields
}

// syncDir is fsx.SyncDir; a variable so tests can observe fsync order.
var syncDir = fsx.SyncDir
