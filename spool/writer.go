package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/internal/fsx"
)

// ErrIDTaken is wrapped when a commit finds its id already in queue/.
// For Create that means two random 45-bit suffixes met in the same
// microsecond: the caller answers 451 and the client retries.
var ErrIDTaken = errors.New("spool: queue id already in use")

// Writer receives one message's content. Write streams it to
// tmp/<id>/data; Commit makes it visible; Abort throws it away. Exactly
// one of Commit and Abort must be called. A Writer is not safe for
// concurrent use.
type Writer struct {
	s    *Spool
	id   ID
	env  Envelope
	dir  string // tmp/<id>
	f    *os.File
	bw   *bufio.Writer
	n    int64
	err  error // the first write error; Commit then fails with it
	done bool
}

// Create starts a message with envelope env (validated now, Size filled in
// at Commit; a zero Arrived becomes the id's time). The id is known at
// once, so that every log line about the transaction can carry it.
func (s *Spool) Create(env Envelope) (*Writer, error) {
	id := NewID()
	if env.Arrived.IsZero() {
		env.Arrived = id.Time()
	}
	return s.create(env, id)
}

// create starts a message with a given id.
func (s *Spool) create(env Envelope, id ID) (*Writer, error) {
	env.Size = 0
	if err := env.Validate(); err != nil {
		return nil, err
	}
	dir := s.path(dirTmp, string(id))
	if err := os.Mkdir(dir, modeDir); err != nil {
		return nil, fmt.Errorf("spool %s: %w", id, err)
	}
	// Whatever the writer's umask: the consumer, another uid in the
	// group, must be able to unlink in it and rename it to trash/ (moving
	// a directory rewrites its "..", which needs write permission on it).
	if err := os.Chmod(dir, modeDir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spool %s: %w", id, err)
	}
	f, err := createFile(filepath.Join(dir, fileData))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("spool %s: %w", id, err)
	}
	return &Writer{s: s, id: id, env: env, dir: dir, f: f, bw: bufio.NewWriterSize(f, 64<<10)}, nil
}

// createFile makes a new file with modeFile whatever the umask.
func createFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, modeFile)
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

// Commit makes the message durable and visible: fsync data, write and
// fsync envelope, fsync the message directory, rename it into queue/ and
// fsync queue/. When Commit returns the id and nil, the message may be
// acknowledged (250, exit 0). On error nothing is visible and the caller
// answers with a temporary failure.
func (w *Writer) Commit() (ID, error) {
	if w.done {
		return "", fmt.Errorf("spool %s: commit after commit or abort", w.id)
	}
	w.done = true
	if err := w.commit(); err != nil {
		w.f.Close()
		os.RemoveAll(w.dir)
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
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	w.env.Size = w.n
	text, err := w.env.MarshalText()
	if err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	if err := writeSynced(filepath.Join(w.dir, fileEnvelope), text); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	// The directory's own entries (data, envelope) must be durable before
	// the directory becomes visible under its new name.
	if err := fsx.SyncDir(w.dir); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	crashPoint("commit-before-rename")
	queue := w.s.path(dirQueue)
	if err := renameNoReplace(w.dir, filepath.Join(queue, string(w.id))); err != nil {
		return fmt.Errorf("spool %s: %w", w.id, err)
	}
	crashPoint("commit-after-rename")
	if err := fsx.SyncDir(queue); err != nil {
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
	cerr := w.f.Close()
	if err := os.RemoveAll(w.dir); err != nil {
		return fmt.Errorf("spool %s: abort: %w", w.id, err)
	}
	if cerr != nil && !errors.Is(cerr, fs.ErrClosed) {
		return fmt.Errorf("spool %s: abort: %w", w.id, cerr)
	}
	return nil
}

// writeSynced creates path with data and fsyncs it.
func writeSynced(path string, data []byte) error {
	f, err := createFile(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// renameNoReplace renames from to to, failing with ErrIDTaken if to
// exists. RENAME_NOREPLACE (Linux 3.15; ext4, xfs, btrfs, tmpfs) makes the
// check atomic; where the file system lacks it, a plain rename still
// refuses, because a message directory is never empty and rename(2) will
// not replace a non-empty directory.
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = os.Rename(from, to)
	}
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("%w: %s", ErrIDTaken, filepath.Base(to))
	}
	if err != nil {
		return fmt.Errorf("rename %s: %w", from, err)
	}
	return nil
}

// SweepTmp removes what crashed writers and removals left behind: message
// directories in tmp/ and incomplete maildrop files (mode 0600) whose
// modification time is older than olderThan (a day is the usual choice;
// a writer that has not written for that long is dead), and everything in
// trash/. It returns how many entries it removed.
func (s *Spool) SweepTmp(olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	var errs []error
	removed := 0
	sweep := func(dir string, stale func(fs.FileInfo) bool) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("spool sweep: %w", err))
			return
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			fi, err := os.Lstat(p)
			if err != nil || !stale(fi) {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, fmt.Errorf("spool sweep: %w", err))
				continue
			}
			removed++
		}
	}
	sweep(s.path(dirTmp), func(fi fs.FileInfo) bool {
		// A writer appends to data, which does not touch the directory's
		// own mtime: both must be old.
		data, err := os.Lstat(filepath.Join(s.path(dirTmp), fi.Name(), fileData))
		if err == nil && !data.ModTime().Before(cutoff) {
			return false
		}
		return fi.ModTime().Before(cutoff)
	})
	sweep(s.path(dirTrash), func(fs.FileInfo) bool { return true })
	sweep(s.path(dirMaildrop), func(fi fs.FileInfo) bool {
		return fi.Mode().IsRegular() && fi.Mode().Perm() == dropModeWriting && fi.ModTime().Before(cutoff)
	})
	return removed, errors.Join(errs...)
}
