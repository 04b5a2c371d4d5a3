package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/internal/fsx"
)

// The two modes of a maildrop file: while it is written, only its owner
// can read it (and Pickup, not being root, cannot open it at all); the
// change to dropModeComplete, after the fsync, marks it complete.
const (
	dropModeWriting  = 0o600
	dropModeComplete = 0o644
)

// maxDropHead bounds the envelope at the head of a maildrop file.
const maxDropHead = 16 << 20

// ErrNotReady is wrapped by Pickup when a maildrop file is still being
// written (or its writer died; SweepTmp removes it after a while).
var ErrNotReady = errors.New("spool: maildrop file not complete")

// ErrRefused is wrapped by Pickup's *RefusedError.
var ErrRefused = errors.New("spool: maildrop entry refused")

// RefusedError says why Pickup refused a maildrop entry and what it did
// with it (removed, or moved to corrupt/ for the administrator).
type RefusedError struct {
	ID     ID
	Reason string
	Action string // "removed", "moved to corrupt/", "renamed", "left"
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("spool: maildrop %s refused (%s): %s", e.ID, e.Action, e.Reason)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// DropWriter writes one local submission into maildrop/. It needs no
// privilege: any user may drop, and the file's owner is the submitter.
type DropWriter struct {
	id   ID
	path string
	f    *os.File
	bw   *bufio.Writer
	err  error
	done bool
}

// Drop starts a local submission. env.Origin must be OriginLocal; its UID
// is set to the caller's real uid (a cross-check for Pickup, which trusts
// only the file's owner), Arrived and Size are left to Pickup.
func (s *Spool) Drop(env Envelope) (*DropWriter, error) {
	env.UID = uint32(os.Getuid())
	env.Arrived, env.Size = time.Time{}, 0
	head, err := env.marshal(kindDrop)
	if err != nil {
		return nil, err
	}
	id := NewID()
	path := s.path(dirMaildrop, string(id))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, dropModeWriting)
	if err != nil {
		return nil, fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	w := &DropWriter{id: id, path: path, f: f, bw: bufio.NewWriterSize(f, 64<<10)}
	if err := f.Chmod(dropModeWriting); err != nil {
		w.Abort()
		return nil, fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	if _, err := w.bw.Write(head); err != nil {
		w.Abort()
		return nil, fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	return w, nil
}

// ID returns the id the message will have in the queue.
func (w *DropWriter) ID() ID { return w.id }

// Write appends p to the message content.
func (w *DropWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("spool maildrop %s: write after commit or abort", w.id)
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.bw.Write(p)
	if err != nil {
		w.err = fmt.Errorf("spool maildrop %s: %w", w.id, err)
	}
	return n, w.err
}

// Commit makes the drop durable and complete: fsync, chmod 0644, fsync.
// After it returns nil, sendmail may exit 0.
func (w *DropWriter) Commit() (ID, error) {
	if w.done {
		return "", fmt.Errorf("spool maildrop %s: commit after commit or abort", w.id)
	}
	err := w.commit()
	if err != nil {
		w.Abort()
		return "", err
	}
	w.done = true
	return w.id, nil
}

func (w *DropWriter) commit() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("spool maildrop %s: %w", w.id, err)
	}
	// The content must be durable before the mode says it is complete,
	// or a crash could leave a complete-looking, truncated file.
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("spool maildrop %s: %w", w.id, err)
	}
	crashPoint("drop-synced")
	if err := w.f.Chmod(dropModeComplete); err != nil {
		return fmt.Errorf("spool maildrop %s: %w", w.id, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("spool maildrop %s: %w", w.id, err)
	}
	// A writer idle for longer than the sweep's limit may have had its
	// incomplete file removed; then the fd still works but the name is
	// gone. Now that the mode says complete, no sweep will touch it, so
	// one look settles it.
	if err := w.stillLinked(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("spool maildrop %s: %w", w.id, err)
	}
	return nil
}

// stillLinked checks that the drop's name still names the open file.
func (w *DropWriter) stillLinked() error {
	var fst, pst unix.Stat_t
	if err := unix.Fstat(int(w.f.Fd()), &fst); err != nil {
		return fmt.Errorf("spool maildrop %s: %w", w.id, err)
	}
	if err := unix.Lstat(w.path, &pst); err != nil || pst.Dev != fst.Dev || pst.Ino != fst.Ino {
		return fmt.Errorf("spool maildrop %s: the file was removed while being written (swept as stale?)", w.id)
	}
	return nil
}

// Abort removes the drop. It is a no-op after Commit.
func (w *DropWriter) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool maildrop %s: abort: %w", w.id, err)
	}
	return nil
}

// ListMaildrop returns the ids of the entries in maildrop/, oldest first.
// Only the spool's owner can list maildrop/.
func (s *Spool) ListMaildrop() ([]ID, error) {
	return listIDs(s.path(dirMaildrop))
}

// Pickup moves the complete maildrop file id into the queue under the
// same id and returns that id. The submitter is the file's owner; the
// envelope's uid line must agree with it. Errors: ErrNotReady (skip it
// for now), a *RefusedError (the entry was dealt with; log it), or
// anything else (retry later).
func (s *Spool) Pickup(id ID) (ID, error) {
	if _, err := ParseID(string(id)); err != nil {
		return "", err
	}
	path := s.path(dirMaildrop, string(id))
	f, st, err := s.openDrop(id, path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	env, body, err := readDropHead(f, st)
	if err != nil {
		return "", s.refuse(id, path, err.Error(), true)
	}
	if env.UID != st.Uid {
		return "", s.refuse(id, path, fmt.Sprintf("uid line %d, file owner %d", env.UID, st.Uid), true)
	}
	env.UID = st.Uid
	env.Arrived = time.Unix(st.Ctim.Unix()).UTC()
	w, err := s.createFresh(env, id)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(w, body); err != nil {
		w.Abort()
		return "", fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	if body.N != 0 || !dropUnchanged(f, st) {
		w.Abort()
		return "", s.refuse(id, path, "changed while being picked up", true)
	}
	if _, err := w.Commit(); err != nil {
		if !errors.Is(err, ErrIDTaken) {
			return "", err
		}
		// Picked up before, and the crash came before the unlink below;
		// or another owner's message has this id (then refuse).
		prev, _, perr := s.readEnvelope(id)
		if perr != nil || prev.Origin != OriginLocal || prev.UID != st.Uid {
			return "", s.refuse(id, path, "id already queued by someone else", true)
		}
	}
	if err := os.Remove(path); err != nil {
		return "", fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	if err := fsx.SyncDir(s.path(dirMaildrop)); err != nil {
		return "", fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	return id, nil
}

// createFresh is create, after clearing a tmp/<id> that an earlier,
// interrupted pickup of the same drop left (a file, or an old-layout
// directory).
func (s *Spool) createFresh(env Envelope, id ID) (*Writer, error) {
	if err := os.RemoveAll(s.path(dirTmp, string(id))); err != nil {
		return nil, fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	return s.create(env, id)
}

// openDrop opens a maildrop entry for reading and checks it is a complete
// regular file with one link. Lstat decides first, so that nothing but a
// regular file is ever opened (opening a FIFO or device has effects);
// O_NOFOLLOW and a comparison of the opened inode close the race with a
// swap in between.
func (s *Spool) openDrop(id ID, path string) (*os.File, *unix.Stat_t, error) {
	var lst unix.Stat_t
	if err := unix.Lstat(path, &lst); err != nil {
		return nil, nil, fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	if lst.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nil, s.refuse(id, path, fmt.Sprintf("not a regular file (mode %#o)", lst.Mode), false)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EACCES) {
		return nil, nil, fmt.Errorf("spool maildrop %s: %w", id, ErrNotReady)
	}
	if errors.Is(err, unix.ELOOP) {
		return nil, nil, s.refuse(id, path, "a symbolic link", false)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("spool maildrop %s: %w", id, err)
	}
	var reason string
	keep := false
	switch {
	case st.Dev != lst.Dev || st.Ino != lst.Ino:
		reason = "replaced while being opened"
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		reason = "not a regular file"
	case st.Nlink != 1:
		// A hard link to another user's file would carry that user's uid.
		reason = fmt.Sprintf("%d hard links", st.Nlink)
	case st.Mode&0o7777 == dropModeWriting:
		f.Close()
		return nil, nil, fmt.Errorf("spool maildrop %s: %w", id, ErrNotReady)
	case st.Mode&0o7777 != dropModeComplete:
		reason, keep = fmt.Sprintf("mode %#o", st.Mode&0o7777), true
	default:
		return f, &st, nil
	}
	f.Close()
	return nil, nil, s.refuse(id, path, reason, keep)
}

// readDropHead parses the envelope at the head of a drop file and returns
// a reader for exactly the rest of the file as it was when checked.
func readDropHead(f *os.File, st *unix.Stat_t) (Envelope, *io.LimitedReader, error) {
	br := bufio.NewReaderSize(io.LimitReader(f, st.Size), 64<<10)
	var head bytes.Buffer
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return Envelope{}, nil, fmt.Errorf("envelope line too long")
		}
		if err != nil {
			return Envelope{}, nil, fmt.Errorf("envelope not ended by an empty line")
		}
		if len(line) == 1 {
			break
		}
		if head.Len()+len(line) > maxDropHead {
			return Envelope{}, nil, fmt.Errorf("envelope larger than %d bytes", maxDropHead)
		}
		head.Write(line)
	}
	if head.Len() == 0 {
		return Envelope{}, nil, fmt.Errorf("empty envelope")
	}
	env, err := parseEnvelope(head.Bytes(), kindDrop)
	if err != nil {
		return Envelope{}, nil, err
	}
	rest := st.Size - int64(head.Len()) - 1
	return env, &io.LimitedReader{R: br, N: rest}, nil
}

// dropUnchanged reports whether the open drop file still looks as it did:
// a submitter that keeps writing after the chmod is refused, not copied
// half-way.
func dropUnchanged(f *os.File, was *unix.Stat_t) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return st.Size == was.Size && st.Mtim == was.Mtim && st.Ctim == was.Ctim && st.Nlink == 1
}

// refuse deals with a refused maildrop entry. A regular file of one link
// (keep) is moved to corrupt/ for the administrator. Anything else (a
// symlink, a hard link, a FIFO) is unlinked: removing a name never harms
// what it points to. A directory cannot be moved out (that needs write
// permission on it) or emptied, so it is renamed aside in place, to a
// name that is not an id and so is never looked at again.
func (s *Spool) refuse(id ID, path, reason string, keep bool) error {
	e := &RefusedError{ID: id, Reason: reason}
	var lst unix.Stat_t
	err := unix.Lstat(path, &lst)
	switch {
	case err != nil:
		e.Action = "left"
	case keep:
		e.Action = "moved to corrupt/"
		err = os.Rename(path, s.path(dirCorrupt, string(id)))
	case lst.Mode&unix.S_IFMT == unix.S_IFDIR:
		e.Action = "renamed"
		err = os.Rename(path, filepath.Join(filepath.Dir(path), "refused."+string(id)))
	default:
		e.Action = "removed"
		err = os.Remove(path)
	}
	if err != nil {
		e.Action += " (failed: " + err.Error() + ")"
	}
	return e
}
