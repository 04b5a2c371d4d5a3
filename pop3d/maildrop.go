package pop3d

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

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
// server holds many: per message 16 bytes plus the file name in one shared
// blob. UIDLs are derived when asked (the base name, or Dovecot's format
// from the UID), not stored. The maildir.Mailbox used to take the snapshot
// is dropped after login and opened again only when a file moved under us
// or at QUIT.
type maildrop struct {
	root        string
	uidlFormat  string
	uidValidity uint32
	mbox        *maildir.Mailbox // nil except after a lookup or update
	lock        *os.File
	log         *slog.Logger
	msgs        []dropMessage    // message number n is msgs[n-1]
	names       nameBlob         // the file names of msgs
	bigSizes    map[uint32]int64 // sizes that do not fit dropMessage.size, by UID

	count  int   // messages not marked deleted
	octets int64 // their total size
}

// dropMessage is one message of the snapshot.
type dropMessage struct {
	uid   uint32
	size  uint32 // CRLF size (W=); dropBigSize: in maildrop.bigSizes
	name  uint32 // the file name's offset in maildrop.names
	state dropState
}

// dropState holds a message's marks and where its file was last seen.
type dropState uint8

const (
	dropDeleted   dropState = 1 << iota // DELE: expunge at QUIT
	dropRetrieved                       // RETR: mark \Seen at QUIT
	dropInNew                           // the file is in new/, not cur/
)

// dropBigSize marks a size of 4 GiB or more, kept in bigSizes.
const dropBigSize = ^uint32(0)

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

// snapshot syncs INBOX and fixes the message list for the session.
func (d *maildrop) snapshot() error {
	mbox, err := maildir.OpenMailbox(d.root)
	if err != nil {
		return err
	}
	d.uidValidity = mbox.UIDValidity()
	n := mbox.Len()
	d.msgs = make([]dropMessage, 0, n)
	d.names.data = make([]byte, 0, n*24)
	var unsized []int // indices of messages without W= in name or uidlist
	var paths []string
	mbox.Range(func(m maildir.Message) bool {
		name := filepath.Base(m.Path)
		dm := dropMessage{uid: m.UID, name: d.names.add(name)}
		if m.Dir == "new" {
			dm.state |= dropInNew
		}
		d.msgs = append(d.msgs, dm)
		if m.VSize < 0 {
			unsized = append(unsized, len(d.msgs)-1)
			paths = append(paths, m.Path)
		} else {
			d.setSize(len(d.msgs)-1, m.VSize)
		}
		return true
	})
	// mbox is not kept: its view of every message is several times the
	// size of this snapshot.
	d.names.compact()
	if len(unsized) > 0 {
		if err := d.sizeUnsized(unsized, paths); err != nil {
			return err
		}
	}
	for i := range d.msgs {
		d.octets += d.size(i)
	}
	d.count = len(d.msgs)
	return nil
}

// sizeUnsized counts the CRLF size of messages whose names do not say it,
// and drops from the snapshot those another program expunged since the
// sync.
func (d *maildrop) sizeUnsized(idx []int, paths []string) error {
	gone := map[int]bool{}
	for k, i := range idx {
		size, err := crlfSize(paths[k])
		if errors.Is(err, os.ErrNotExist) {
			gone[i] = true
			continue
		}
		if err != nil {
			return err
		}
		d.log.Debug("size", "uid", d.msgs[i].uid, "vsize", size, "reason", "no W= in the name")
		d.setSize(i, size)
	}
	if len(gone) > 0 {
		kept := d.msgs[:0]
		for i, m := range d.msgs {
			if !gone[i] {
				kept = append(kept, m)
			}
		}
		d.msgs = kept
	}
	return nil
}

// setSize records message index i's CRLF size.
func (d *maildrop) setSize(i int, size int64) {
	if size >= int64(dropBigSize) {
		if d.bigSizes == nil {
			d.bigSizes = map[uint32]int64{}
		}
		d.bigSizes[d.msgs[i].uid] = size
		d.msgs[i].size = dropBigSize
		return
	}
	d.msgs[i].size = uint32(size)
}

// size is message index i's CRLF size, what LIST and STAT count.
func (d *maildrop) size(i int) int64 {
	if s := d.msgs[i].size; s != dropBigSize {
		return int64(s)
	}
	return d.bigSizes[d.msgs[i].uid]
}

// name is message index i's file name as last seen.
func (d *maildrop) name(i int) string {
	return string(d.names.appendName(nil, d.msgs[i].name))
}

// path is message index i's file as last seen.
func (d *maildrop) path(i int) string {
	dir := "cur"
	if d.msgs[i].state&dropInNew != 0 {
		dir = "new"
	}
	return filepath.Join(d.root, dir, d.name(i))
}

// uidl is message index i's unique-id listing (RFC 1939 §7).
func (d *maildrop) uidl(i int) string {
	if d.uidlFormat == "dovecot" {
		// Dovecot's pop3_uidl_format = %08Xu%08Xv.
		return fmt.Sprintf("%08X%08X", d.msgs[i].uid, d.uidValidity)
	}
	name := d.names.appendName(nil, d.msgs[i].name)
	if j := bytes.IndexByte(name, ':'); j >= 0 {
		name = name[:j]
	}
	return uidlOfBase(string(name))
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
	if n < 1 || n > len(d.msgs) || d.msgs[n-1].state&dropDeleted != 0 {
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
	m := &d.msgs[i]
	cur, ok := mbox.Lookup(m.uid)
	if !ok {
		return nil, fmt.Errorf("uid %d: %w", m.uid, maildir.ErrExpunged)
	}
	m.name = d.names.add(filepath.Base(cur.Path)) // the old one stays: the blob only grows
	m.state &^= dropInNew
	if cur.Dir == "new" {
		m.state |= dropInNew
	}
	return os.Open(cur.Path)
}

// update is RFC 1939 §6's UPDATE state: expunge what was marked deleted,
// mark what was retrieved \Seen (moving it from new/ to cur/). It returns
// how many messages were deleted.
func (d *maildrop) update() (int, error) {
	var del []uint32
	var seen []uint32
	for _, m := range d.msgs {
		switch {
		case m.state&dropDeleted != 0:
			del = append(del, m.uid)
		case m.state&dropRetrieved != 0:
			seen = append(seen, m.uid)
		}
	}
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

// nameBlob holds many Maildir file names in little space, for a snapshot
// that lives as long as its session. A name is a sequence of tokens, each
// a uvarint x:
//
//	x&1 == 1    a run of 1–18 decimal digits not starting with '0': x>>1
//	x&3 == 0    text number x>>2 of texts; text 0 ends the name
//	x&3 == 2    x>>2 bytes of text inline, which follow
//
// Text is what lies between the numbers: ".M", "P", ".<host>,S=", ",W=",
// ":2,S" repeat in every name of a Maildir and are stored once in texts.
// A 47-byte name in Dovecot's form takes about 21 bytes.
type nameBlob struct {
	data  []byte
	texts []string          // texts[0] is "" and ends a name
	index map[string]uint64 // texts -> number, while names are added
}

// nameTextsMax bounds the text table: names with random text (no repeats)
// get it inline instead.
const nameTextsMax = 1024

// add appends name and returns its offset.
func (b *nameBlob) add(name string) uint32 {
	off := uint32(len(b.data))
	for i := 0; i < len(name); {
		j := i
		if c := name[i]; c >= '1' && c <= '9' {
			var v uint64
			for j < len(name) && j-i < 18 && name[j] >= '0' && name[j] <= '9' {
				v = v*10 + uint64(name[j]-'0')
				j++
			}
			b.data = binary.AppendUvarint(b.data, v<<1|1)
		} else {
			for j < len(name) && (name[j] < '1' || name[j] > '9') {
				j++
			}
			b.appendText(name[i:j])
		}
		i = j
	}
	b.data = append(b.data, 0)
	return off
}

// appendText appends a token for the non-empty text t.
func (b *nameBlob) appendText(t string) {
	if b.index == nil {
		if len(b.texts) == 0 {
			b.texts = []string{""}
		}
		b.index = make(map[string]uint64, len(b.texts))
		for k, s := range b.texts[1:] {
			b.index[s] = uint64(k + 1)
		}
	}
	k, ok := b.index[t]
	if !ok && len(b.texts) < nameTextsMax {
		k, ok = uint64(len(b.texts)), true
		t = strings.Clone(t) // t may be a slice of a much larger string
		b.texts = append(b.texts, t)
		b.index[t] = k
	}
	if ok {
		b.data = binary.AppendUvarint(b.data, k<<2)
		return
	}
	b.data = binary.AppendUvarint(b.data, uint64(len(t))<<2|2)
	b.data = append(b.data, t...)
}

// compact drops what only adding needs, and the slack of growing.
func (b *nameBlob) compact() {
	b.index = nil
	if cap(b.data)-len(b.data) > len(b.data)/8 {
		b.data = slices.Clone(b.data)
	}
}

// appendName appends the name at off to dst.
func (b *nameBlob) appendName(dst []byte, off uint32) []byte {
	p := b.data[off:]
	for {
		x, n := binary.Uvarint(p)
		if n <= 0 {
			return dst // not reached for an offset add returned
		}
		p = p[n:]
		switch {
		case x&1 == 1:
			dst = strconv.AppendUint(dst, x>>1, 10)
		case x == 0:
			return dst
		case x&3 == 0:
			dst = append(dst, b.texts[x>>2]...)
		default:
			dst = append(dst, p[:x>>2]...)
			p = p[x>>2:]
		}
	}
}
