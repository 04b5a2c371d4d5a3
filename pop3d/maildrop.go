package pop3d

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"mailroom/maildir"
)

// LockName is the file in a Maildir whose flock(2) marks a POP3 session.
const LockName = "pop3.lock"

// errLocked means another session holds the maildrop.
var errLocked = errors.New("maildrop locked by another session")

// maildrop is a logged-in user's INBOX as the session sees it: the
// snapshot taken at login, the session's marks, and the lock.
//
// The snapshot is compact because it lives as long as the session and a
// server holds many: per message about 20 bytes in a dropList (UID, CRLF
// size and file name) and one byte of marks. UIDLs are derived when asked
// (the base name, or Dovecot's format from the UID), not stored. The
// snapshot comes from maildir.Snapshot; a maildir.Mailbox is opened only
// when a file moved under us, or at QUIT.
type maildrop struct {
	root        string
	uidlFormat  string
	uidValidity uint32
	mbox        *maildir.Mailbox // nil except after a lookup or update
	lock        *os.File
	log         *slog.Logger
	list        dropList       // message number n is record n-1
	msgs        []dropState    // per message, its marks (message number n is msgs[n-1])
	moved       map[int]string // file names that changed since login, by index
	buf         []byte         // for decoding records

	count  int   // messages not marked deleted
	octets int64 // their total size
}

// dropState holds a message's marks and where its file was last seen.
type dropState uint8

const (
	dropDeleted   dropState = 1 << iota // DELE: expunge at QUIT
	dropRetrieved                       // RETR: mark \Seen at QUIT
	dropInNew                           // the file is in new/, not cur/
)

// openMaildrop locks the Maildir at root and takes the snapshot. A missing
// Maildir is created, as for a user who never received mail.
func openMaildrop(root, uidlFormat string, log *slog.Logger) (*maildrop, error) {
	if err := maildir.Create(root); err != nil {
		return nil, err
	}
	lock, err := lockMaildir(root)
	if err != nil {
		return nil, err
	}
	d := &maildrop{root: root, uidlFormat: uidlFormat, lock: lock, log: log}
	if err := d.snapshot(); err != nil {
		return nil, errors.Join(err, d.release())
	}
	return d, nil
}

// lockMaildir takes the session lock without waiting.
func lockMaildir(root string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(root, LockName), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pop3d: lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		return nil, errors.Join(errLocked, f.Close())
	case err != nil:
		return nil, errors.Join(fmt.Errorf("pop3d: lock: %w", err), f.Close())
	}
	return f, nil
}

// release drops the lock (closing the file releases the flock).
func (d *maildrop) release() error {
	if d.lock == nil {
		return nil
	}
	err := d.lock.Close()
	d.lock = nil
	return err
}

// snapshot syncs INBOX and fixes the message list for the session. It
// uses maildir.Snapshot, not a Mailbox: the session keeps only its own
// compact copy, built here as the messages stream by.
func (d *maildrop) snapshot() error {
	err := maildir.Snapshot(d.root, (*dropBuilder)(d))
	d.list.finish() // also on an error: the scratch buffer goes back
	if err != nil {
		return err
	}
	d.msgs = slices.Clip(d.msgs)
	d.count = d.list.len()
	return nil
}

// dropBuilder fills a maildrop from a maildir.Snapshot.
type dropBuilder maildrop

// Begin sizes the snapshot for info.Count messages.
func (b *dropBuilder) Begin(info maildir.SnapshotInfo) error {
	b.uidValidity = info.UIDValidity
	b.msgs = make([]dropState, 0, info.Count)
	b.list.begin(info.Count)
	return nil
}

// Message adds one message. One whose name and uidlist record do not say
// its CRLF size is read to count it (maildir.Snapshot holds no lock
// now); one expunged by another program since the sync is left out.
func (b *dropBuilder) Message(m maildir.SnapshotMessage) error {
	var state dropState
	dir := "cur"
	if m.InNew {
		state, dir = dropInNew, "new"
	}
	size := m.VSize
	if size < 0 {
		var err error
		size, err = crlfSize(filepath.Join(b.root, dir, m.Name))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		b.log.Debug("size", "uid", m.UID, "vsize", size, "reason", "no W= in the name")
	}
	b.list.add(m.UID, m.Name, size)
	b.msgs = append(b.msgs, state)
	b.octets += size
	return nil
}

// entry decodes message index i (its name valid until the next call).
func (d *maildrop) entry(i int) dropEntry {
	e := d.list.at(i, d.buf)
	d.buf = e.name[:0]
	if name, ok := d.moved[i]; ok {
		e.name = []byte(name)
	}
	return e
}

// uid is message index i's UID.
func (d *maildrop) uid(i int) uint32 { return d.entry(i).uid }

// size is message index i's CRLF size, what LIST and STAT count.
func (d *maildrop) size(i int) int64 { return d.entry(i).size }

// path is message index i's file as last seen.
func (d *maildrop) path(i int) string {
	return d.pathOf(i, d.entry(i).name)
}

// pathOf is the path of message index i's file called name.
func (d *maildrop) pathOf(i int, name []byte) string {
	dir := "cur"
	if d.msgs[i]&dropInNew != 0 {
		dir = "new"
	}
	return filepath.Join(d.root, dir, string(name))
}

// uidl is message index i's unique-id listing (RFC 1939 §7).
func (d *maildrop) uidl(i int) string {
	return d.uidlOf(d.entry(i))
}

// uidlOf is the unique-id listing of a decoded entry.
func (d *maildrop) uidlOf(e dropEntry) string {
	if d.uidlFormat == "dovecot" {
		// Dovecot's pop3_uidl_format = %08Xu%08Xv.
		return fmt.Sprintf("%08X%08X", e.uid, d.uidValidity)
	}
	name := e.name
	if j := bytes.IndexByte(name, ':'); j >= 0 {
		name = name[:j]
	}
	return uidlOfBase(string(name))
}

// each calls fn for every message not marked deleted, in order, decoding
// the list once (LIST and UIDL without an argument).
func (d *maildrop) each(fn func(i int, e dropEntry)) {
	d.list.each(func(i int, e dropEntry) bool {
		if d.msgs[i]&dropDeleted != 0 {
			return true
		}
		if name, ok := d.moved[i]; ok {
			e.name = []byte(name)
		}
		fn(i, e)
		return true
	})
}

// uidlOfBase is the default unique-id: the Maildir base name, unless RFC
// 1939 §7 forbids it (1–70 octets in 0x21–0x7E), then a stable hash.
func uidlOfBase(base string) string {
	ok := len(base) > 0 && len(base) <= 70
	for i := 0; ok && i < len(base); i++ {
		ok = base[i] >= 0x21 && base[i] <= 0x7e
	}
	if ok {
		return base
	}
	sum := sha256.Sum256([]byte(base))
	return "H" + hex.EncodeToString(sum[:])
}

// crlfSize counts a message's size with CRLF line ends by reading it.
func crlfSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var c maildir.SizeCounter
	if _, err := io.Copy(&c, f); err != nil {
		return 0, fmt.Errorf("pop3d: size of %s: %w", path, err)
	}
	return c.VSize, nil
}

// message returns the index of message number n (1-based) if it exists
// and is not marked deleted.
func (d *maildrop) message(n int) (int, bool) {
	if n < 1 || n > len(d.msgs) || d.msgs[n-1]&dropDeleted != 0 {
		return 0, false
	}
	return n - 1, true
}

// mailbox returns the Mailbox, opened again (a full sync) or synced.
func (d *maildrop) mailbox() (*maildir.Mailbox, error) {
	if d.mbox == nil {
		mbox, err := maildir.OpenMailbox(d.root)
		if err != nil {
			return nil, err
		}
		d.mbox = mbox
		return mbox, nil
	}
	if _, err := d.mbox.Sync(); err != nil {
		return nil, err
	}
	return d.mbox, nil
}

// open opens message index i's file, following it if another program
// renamed it (a flag change from IMAP) since the snapshot.
func (d *maildrop) open(i int) (*os.File, error) {
	f, err := os.Open(d.path(i))
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	mbox, err := d.mailbox()
	if err != nil {
		return nil, err
	}
	uid := d.uid(i)
	cur, ok := mbox.Lookup(uid)
	if !ok {
		return nil, fmt.Errorf("uid %d: %w", uid, maildir.ErrExpunged)
	}
	if d.moved == nil {
		d.moved = map[int]string{}
	}
	d.moved[i] = filepath.Base(cur.Path)
	d.msgs[i] &^= dropInNew
	if cur.Dir == "new" {
		d.msgs[i] |= dropInNew
	}
	return os.Open(cur.Path)
}

// update is RFC 1939 §6's UPDATE state: expunge what was marked deleted,
// mark what was retrieved \Seen (moving it from new/ to cur/). It returns
// how many messages were deleted.
func (d *maildrop) update() (int, error) {
	marked := false
	for _, st := range d.msgs {
		marked = marked || st&(dropDeleted|dropRetrieved) != 0
	}
	if !marked {
		return 0, nil // a session that only looked: nothing to decode
	}
	var del []uint32
	var seen []uint32
	d.list.each(func(i int, e dropEntry) bool {
		switch {
		case d.msgs[i]&dropDeleted != 0:
			del = append(del, e.uid)
		case d.msgs[i]&dropRetrieved != 0:
			seen = append(seen, e.uid)
		}
		return true
	})
	if len(del) == 0 && len(seen) == 0 {
		return 0, nil
	}
	// Flags may have changed since login (an IMAP client): start from the
	// current ones.
	mbox, err := d.mailbox()
	if err != nil {
		return 0, err
	}
	var errs []error
	freed := diskBytes(mbox, del)
	// One batch: every read message moves new/ → cur/ with S, then cur/ and
	// new/ are flushed once, not once per message.
	var batch []maildir.FlagChange
	for _, uid := range seen {
		m, ok := mbox.Lookup(uid)
		if !ok || m.Name.Flags&maildir.FlagSeen != 0 && m.Dir == "cur" {
			continue
		}
		batch = append(batch, maildir.FlagChange{UID: uid, Flags: m.Name.Flags | maildir.FlagSeen, Keywords: m.Name.Keywords})
	}
	if err := mbox.SetFlagsMany(batch); err != nil {
		errs = append(errs, err)
	}
	if err := mbox.Expunge(del...); err != nil {
		errs = append(errs, err)
		return 0, errors.Join(errs...)
	}
	if len(del) > 0 {
		// Maildir++ quota (maildirsize): deliver counts additions, the
		// reader that removes counts removals.
		if err := maildir.AddQuotaUsage(mbox.Path(), -freed, -int64(len(del))); err != nil {
			errs = append(errs, err)
		}
	}
	return len(del), errors.Join(errs...)
}

// diskBytes is the size on disk of the messages uids, for the quota.
func diskBytes(mbox *maildir.Mailbox, uids []uint32) int64 {
	var total int64
	for _, uid := range uids {
		m, ok := mbox.Lookup(uid)
		if !ok {
			continue
		}
		if m.Size >= 0 {
			total += m.Size
		} else if fi, err := os.Stat(m.Path); err == nil {
			total += fi.Size()
		}
	}
	return total
}
