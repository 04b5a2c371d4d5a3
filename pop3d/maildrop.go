package pop3d

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"mailroom/maildir"
)

// LockName is the file in a Maildir whose flock(2) marks a POP3 session.
const LockName = "pop3.lock"

// errLocked means another session holds the maildrop.
var errLocked = errors.New("maildrop locked by another session")

// maildrop is a logged-in user's INBOX as the session sees it: the
// snapshot taken at login, the session's marks, and the lock.
type maildrop struct {
	mbox *maildir.Mailbox
	lock *os.File
	log  *slog.Logger
	msgs []dropMessage // message number n is msgs[n-1]

	count  int   // messages not marked deleted
	octets int64 // their total size
}

// dropMessage is one message of the snapshot.
type dropMessage struct {
	uid       uint32
	size      int64  // CRLF size (W=)
	path      string // as last seen; re-looked-up by UID if it moved
	uidl      string
	deleted   bool
	retrieved bool
}

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
	d := &maildrop{lock: lock, log: log}
	if err := d.snapshot(root, uidlFormat); err != nil {
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

// snapshot syncs INBOX and fixes the message list for the session.
func (d *maildrop) snapshot(root, uidlFormat string) error {
	mbox, err := maildir.OpenMailbox(root)
	if err != nil {
		return err
	}
	d.mbox = mbox
	all := mbox.Messages()
	d.msgs = make([]dropMessage, 0, len(all))
	for _, m := range all {
		size := m.VSize
		if size < 0 {
			size, err = crlfSize(m.Path)
			if errors.Is(err, os.ErrNotExist) {
				continue // expunged by another program since the sync
			}
			if err != nil {
				return err
			}
			d.log.Debug("size", "uid", m.UID, "vsize", size, "reason", "no W= in the name")
		}
		dm := dropMessage{uid: m.UID, size: size, path: m.Path}
		if uidlFormat == "dovecot" {
			// Dovecot's pop3_uidl_format = %08Xu%08Xv.
			dm.uidl = fmt.Sprintf("%08X%08X", m.UID, mbox.UIDValidity())
		} else {
			dm.uidl = uidlOfBase(m.Name.Base)
		}
		d.msgs = append(d.msgs, dm)
		d.octets += size
	}
	d.count = len(d.msgs)
	return nil
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

// message returns message number n (1-based) if it exists and is not
// marked deleted.
func (d *maildrop) message(n int) (*dropMessage, bool) {
	if n < 1 || n > len(d.msgs) || d.msgs[n-1].deleted {
		return nil, false
	}
	return &d.msgs[n-1], true
}

// open opens a message's file, following it if another program renamed it
// (a flag change from IMAP) since the snapshot.
func (d *maildrop) open(m *dropMessage) (*os.File, error) {
	f, err := os.Open(m.path)
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	if _, err := d.mbox.Sync(); err != nil {
		return nil, err
	}
	cur, ok := d.mbox.Lookup(m.uid)
	if !ok {
		return nil, fmt.Errorf("uid %d: %w", m.uid, maildir.ErrExpunged)
	}
	m.path = cur.Path
	return os.Open(m.path)
}

// update is RFC 1939 §6's UPDATE state: expunge what was marked deleted,
// mark what was retrieved \Seen (moving it from new/ to cur/). It returns
// how many messages were deleted.
func (d *maildrop) update() (int, error) {
	var del []uint32
	var seen []uint32
	for _, m := range d.msgs {
		switch {
		case m.deleted:
			del = append(del, m.uid)
		case m.retrieved:
			seen = append(seen, m.uid)
		}
	}
	if len(del) == 0 && len(seen) == 0 {
		return 0, nil
	}
	// Flags may have changed since login (an IMAP client): start from the
	// current ones.
	if _, err := d.mbox.Sync(); err != nil {
		return 0, err
	}
	var errs []error
	freed := d.diskBytes(del)
	for _, uid := range seen {
		m, ok := d.mbox.Lookup(uid)
		if !ok || m.Name.Flags&maildir.FlagSeen != 0 && m.Dir == "cur" {
			continue
		}
		err := d.mbox.SetFlags(uid, m.Name.Flags|maildir.FlagSeen, m.Name.Keywords)
		if err != nil && !errors.Is(err, maildir.ErrExpunged) {
			errs = append(errs, err)
		}
	}
	if err := d.mbox.Expunge(del...); err != nil {
		errs = append(errs, err)
		return 0, errors.Join(errs...)
	}
	if len(del) > 0 {
		// Maildir++ quota (maildirsize): deliver counts additions, the
		// reader that removes counts removals.
		if err := maildir.AddQuotaUsage(d.mbox.Path(), -freed, -int64(len(del))); err != nil {
			errs = append(errs, err)
		}
	}
	return len(del), errors.Join(errs...)
}

// diskBytes is the size on disk of the messages uids, for the quota.
func (d *maildrop) diskBytes(uids []uint32) int64 {
	var total int64
	for _, uid := range uids {
		m, ok := d.mbox.Lookup(uid)
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
