package imapd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"mailroom/internal/fsx"
	"mailroom/maildir"
)

// MULTIAPPEND (RFC 3502) and the all-or-nothing writes of APPEND and COPY.
// Every message of a command is first written to tmp/ and fsync'd
// (staged); only when all are there, the quota allows them and nothing
// failed are they linked into cur/, followed by one fsync of cur/
// (commit). A failure before the commit leaves nothing but tmp/ files,
// which are removed; a failure during it removes the links already made.
// Maildir has no transactions: a process syncing the folder during a
// commit that then fails may see those messages come and go.

const (
	// multiAppendMaxMessages bounds the messages of one APPEND command.
	multiAppendMaxMessages = 1000
	// multiAppendFactor: the messages of one APPEND command may add up to
	// this many times APPENDLIMIT (each one is bounded by APPENDLIMIT
	// itself), which bounds the tmp/ space one command can hold.
	multiAppendFactor = 4
)

// multiAppendLimit bounds the octets of all the messages of one APPEND.
func (s *Server) multiAppendLimit() int64 { return multiAppendFactor * s.appendLimit() }

// stagedMessage is a message written to tmp/ and fsync'd, not yet seen.
type stagedMessage struct {
	tmp  string // its file in tmp/
	base string // the base name, with ,S= and ,W=
	name string // its name in cur/ (base and flags)
	size int64  // octets on disk (,S=), what the quota counts
}

// stagedBatch is the messages a command writes into one Maildir.
type stagedBatch struct {
	dir    string // the target Maildir
	host   string
	msgs   []stagedMessage
	linked int // messages linked into cur/ by commit
	done   bool
}

func newStagedBatch(dir string) *stagedBatch {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return &stagedBatch{dir: dir, host: host}
}

// size returns the octets staged so far.
func (b *stagedBatch) size() int64 {
	var n int64
	for _, m := range b.msgs {
		n += m.size
	}
	return n
}

// stage writes r into tmp/ with the mtime set to date (its INTERNALDATE;
// now if zero), to become a message with flags f and keywords k. check,
// if set, may refuse the data once it is read (a NUL in a non-binary
// APPEND literal).
func (b *stagedBatch) stage(r io.Reader, f maildir.Flags, k maildir.Keywords, date time.Time, check func() error) error {
	base := maildir.UniqueBase(time.Now(), b.host)
	tmp := filepath.Join(b.dir, "tmp", base)
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create message: %w", err)
	}
	// Known at once, so that discard removes it whatever happens next.
	b.msgs = append(b.msgs, stagedMessage{tmp: tmp})
	m := &b.msgs[len(b.msgs)-1]
	var cnt maildir.SizeCounter
	_, err = io.Copy(io.MultiWriter(fh, &cnt), r)
	if err == nil && check != nil {
		err = check()
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write message: %w", cerr)
	}
	if err != nil {
		return err
	}
	if date.IsZero() {
		date = time.Now()
	}
	// INTERNALDATE is the mtime; it is set before the file is visible,
	// since a visible message's file never changes.
	if err := os.Chtimes(tmp, date, date); err != nil {
		return fmt.Errorf("set internal date: %w", err)
	}
	m.base = maildir.WithSizes(base, cnt.Size, cnt.VSize)
	m.name = maildir.Name{Base: m.base, HasInfo: true, Flags: f, Keywords: k}.String()
	m.size = cnt.Size
	return nil
}

// commit links every staged message into cur/ and fsyncs cur/ once; on
// failure none stays linked. It returns the bases in staging order.
func (b *stagedBatch) commit() ([]string, error) {
	if b.done {
		return nil, errors.New("staged messages already committed")
	}
	cur := filepath.Join(b.dir, "cur")
	for i := range b.msgs {
		m := &b.msgs[i]
		if err := os.Link(m.tmp, filepath.Join(cur, m.name)); err != nil {
			return nil, b.unlink(fmt.Errorf("link message: %w", err))
		}
		b.linked++
	}
	if err := fsx.SyncDir(cur); err != nil {
		return nil, b.unlink(err)
	}
	b.done = true
	bases := make([]string, len(b.msgs))
	for i, m := range b.msgs {
		bases[i] = m.base
	}
	return bases, nil
}

// unlink takes the messages linked so far out of cur/ again after cause.
func (b *stagedBatch) unlink(cause error) error {
	errs := []error{cause}
	cur := filepath.Join(b.dir, "cur")
	for _, m := range b.msgs[:b.linked] {
		if err := os.Remove(filepath.Join(cur, m.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("undo: %w", err))
		}
	}
	if b.linked > 0 {
		if err := fsx.SyncDir(cur); err != nil {
			errs = append(errs, fmt.Errorf("undo: %w", err))
		}
	}
	b.linked = 0
	return errors.Join(errs...)
}

// discard removes the tmp/ files; after a commit they are the second
// names of delivered messages, before it the only trace of the command.
// It returns what could not be removed (maildir(5) readers clean tmp/
// of files older than 36 hours, so a leftover costs only space).
func (b *stagedBatch) discard() error {
	var errs []error
	for _, m := range b.msgs {
		if err := os.Remove(m.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	b.msgs = nil
	return errors.Join(errs...)
}

// uidsOfBases syncs v once and returns the UIDs the engine gave bases.
func (v *view) uidsOfBases(bases []string) ([]uint32, error) {
	if err := v.sync(); err != nil {
		return nil, err
	}
	uids := make([]uint32, len(bases))
	for i, base := range bases {
		m, ok := v.mbox.LookupBase(base)
		if !ok {
			return nil, fmt.Errorf("new message %s not found after sync", base)
		}
		uids[i] = m.UID
	}
	return uids, nil
}
