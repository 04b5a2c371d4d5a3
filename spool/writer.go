package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrIDTaken is wrapped when a commit finds its id already in queue/.
// For Create that means two random 45-bit suffixes met in the same
// microsecond: the caller answers 451 and the client retries.
var ErrIDTaken = errors.New("spool: queue id already in use")

// Writer receives one message's content. Write streams it into
// tmp/<id>, after the envelope; Commit makes it visible; Abort throws it
// away. Exactly one of Commit and Abort must be called. A Writer is not
// safe for concurrent use.
type Writer struct {
	s    *Spool
	id   ID
	env  Envelope
	path string // tmp/<id>
	f    *os.File
	bw   *bufio.Writer
	n    int64 // bytes of content, the head not counted
	err  error // the first write error; Commit then fails with it
	done bool
}

// Create starts a message with envelope env (validated and written now,
// Size ignored and filled in at Commit; a zero Arrived becomes the id's
// time). The id is known at
// once, so that every log line about the transaction can carry it.
func (s *Spool) Create(env Envelope) (*Writer, error) {
	id := NewID()
	if env.Arrived.IsZero() {
		env.Arrived = id.Time()
	}
	return s.create(env, id)
}

// create starts a message with a given id: tmp/<id> with the envelope at
// its head. Everything in the head is known now; the size is not written
// (the content is the rest of the file), so the head never needs to be
// rewritten or the content copied.
func (s *Spool) create(env Envelope, id ID) (*Writer, error) {
	env.Size = 0
	head, err := env.MarshalText()
	if err != nil {
		return nil, err
	}
	path := s.path(dirTmp, string(id))
	f, err := createFile(path)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", id, err)
	}
	bw := writerBuffers.Get().(*bufio.Writer)
	bw.Reset(f)
	w := &Writer{s: s, id: id, env: env, path: path, f: f, bw: bw}
	if _, err := w.bw.Write(head); err != nil {
		w.Abort()
		return nil, fmt.Errorf("spool %s: %w", id, err)
	}
	return w, nil
}

// writerBuffers recycles the Writers' 64 KB buffers: smtpd starts a
// Writer per message, and a fresh buffer each time was garbage to collect
// and memory to clear.
var writerBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// releaseBuffer returns w's buffer to the pool once w is done with it.
func (w *Writer) releaseBuffer() {
	if w.bw != nil {
		w.bw.Reset(nil)
		writerBuffers.Put(w.bw)
		w.bw = nil
	}
}

// createFile makes a new file with modeFile whatever the umask: the
// consumer, another uid in the group, must be able to read it.
func createFile(path string) (*os.File, error) {
	f, err := openNoPoll(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, uint32(modeFile))
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(modeFile); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ID returns the message's queue id.
func (w *Writer) ID() ID { return w.id }

// Size returns the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Write appends p to the message content.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("spool %s: write after commit or abort", w.id)
	}
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.bw.Write(p)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("spool %s: %w", w.id, err)
		return n, w.err
	}
	return n, nil
}

// Commit makes the message durable and visible: fsync tmp/<id> (envelope
// and content), rename it to queue/<id> without replacing anything, and
// fsync queue/ (shared with concurrent commits, see fsx.DirSyncer). When
// Commit returns the id and nil, the message may be acknowledged (250,
// exit 0). On error the caller answers with a temporary failure: nothing
// is visible, except when only the fsync of queue/ failed, and then a
// retry by the client may duplicate the message, never lose it.
func (w *Writer) Commit() (ID, error) {
	if w.done {
		return "", fmt.Errorf("spool %s: commit after commit or abort", w.id)
	}
	w.done = true
	defer w.releaseBuffer()
	if err := w.commit(); err != nil {
		w.f.Close()
		// After the rename this removes nothing: the message stays queued.
		os.Remove(w.path)
		return "", err
	}
	return w.id, nil
}

func (w *Writer) commit() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	crashPoint("commit-data-written")
	// One fsync makes head and content durable, and with them the inode;
	// the name in tmp/ need not be, since the rename replaces it.
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	w.env.Size = w.n
	crashPoint("commit-before-rename")
	if err := renameNoReplace(w.path, w.s.path(dirQueue, string(w.id))); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	crashPoint("commit-after-rename")
	// Shared with the concurrent commits of this Spool: returns after an
	// fsync of queue/ that started after the rename above.
	if err := w.s.queueSync.Sync(); err != nil {
		// The message is visible and will be delivered, but its name may
		// not survive a crash: report failure so that the client retries
		// (a possible duplicate, never a loss).
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	crashPoint("commit-done")
	return nil
}

// Abort discards the message. It is a no-op after Commit.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.releaseBuffer()
	cerr := w.f.Close()
	if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool %s: abort: %w", w.id, err)
	}
	if cerr != nil && !errors.Is(cerr, fs.ErrClosed) {
		return fmt.Errorf("spool %s: abort: %w", w.id, cerr)
	}
	return nil
}

// renameNoReplace renames the file from to to, failing with ErrIDTaken if
// to exists (as a file or an old-layout directory). RENAME_NOREPLACE
// (Linux 3.15; ext4, xfs, btrfs, tmpfs) makes the check atomic. Where the
// file system lacks it, link(2), which never replaces a name, then an
// unlink of the old one do the same; a crash between them leaves a second
// name in tmp/, which is never read and is swept.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = unix.Link(from, to)
		if err == nil {
			err = unix.Unlink(from)
		}
	}
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("%w: %s", ErrIDTaken, filepath.Base(to))
	}
	if err != nil {
		return fmt.Errorf("rename %s: %w", from, err)
	}
	return nil
}
