package textindex

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// Index is the open text index of one mailbox. It is not safe for
// concurrent use; processes (and Index values) share the file safely
// through flock(2).
type Index struct {
	path        string
	uidValidity uint32
	f           *os.File
	data        []byte // the file, mapped read-only up to the last good segment
	segs        []segment
	covered     []uint32 // ascending, unique
	// appendMu orders the appends of one process's goroutines (a fold's
	// builders): flock(2) does not, since they share the descriptor.
	appendMu sync.Mutex
}

// Open opens (creating it when missing) the index of the Maildir at dir
// for UIDVALIDITY uidValidity. A file of another UIDVALIDITY or version,
// or a foreign one, is started over; a damaged segment and whatever
// follows it are cut off.
func Open(dir string, uidValidity uint32) (*Index, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("textindex: %w", err)
	}
	ix := &Index{path: path, uidValidity: uidValidity, f: f}
	if err := ix.withLock(ix.load); err != nil {
		_ = ix.Close()
		return nil, err
	}
	return ix, nil
}

// Close releases the file.
func (ix *Index) Close() error {
	ix.unmap()
	if ix.f == nil {
		return nil
	}
	err := ix.f.Close()
	ix.f = nil
	return err
}

func (ix *Index) withLock(fn func() error) error {
	fd := int(ix.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("textindex: lock: %w", err)
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	return fn()
}

func (ix *Index) unmap() {
	if ix.data != nil {
		_ = syscall.Munmap(ix.data)
		ix.data = nil
	}
	ix.segs, ix.covered = nil, nil
}

// load maps the file and reads its segments; call with the lock held.
func (ix *Index) load() error {
	ix.unmap()
	fi, err := ix.f.Stat()
	if err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	size := fi.Size()
	if size > 0 {
		ix.data, err = syscall.Mmap(int(ix.f.Fd()), 0, int(size), syscall.PROT_READ, mapFlags)
		if err != nil {
			return fmt.Errorf("textindex: mmap: %w", err)
		}
	}
	if !checkHeader(ix.data, ix.uidValidity) {
		return ix.startOver()
	}
	off := headerLen
	for off < len(ix.data) {
		seg, n, err := nextSegment(ix.data[off:])
		if err != nil {
			// A torn append or damage: what follows is lost, and the
			// messages it covered are simply indexed again.
			return ix.cut(int64(off))
		}
		ix.segs = append(ix.segs, seg)
		ix.covered = append(ix.covered, seg.covered...)
		off += n
	}
	slices.Sort(ix.covered)
	ix.covered = slices.Compact(ix.covered)
	return nil
}

// startOver empties the file and writes a fresh header.
func (ix *Index) startOver() error {
	ix.unmap()
	if err := ix.f.Truncate(0); err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	if _, err := ix.f.WriteAt(fileHeader(ix.uidValidity), 0); err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	return nil
}

// cut truncates the file at off and reloads it.
func (ix *Index) cut(off int64) error {
	ix.unmap()
	if err := ix.f.Truncate(off); err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	return ix.load()
}

// ErrChanged reports that another process cut the file under the
// mapping: the caller drops this Index (and scans) instead of reading it.
var ErrChanged = errors.New("textindex: index file changed")

// readLocked runs fn, which reads the mapping, under a shared lock: the
// file cannot be cut meanwhile (cutting takes the exclusive lock), and a
// cut made since the mapping was taken is noticed first, since reading
// mapped pages beyond the end of a file is a SIGBUS.
func (ix *Index) readLocked(fn func() error) error {
	fd := int(ix.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_SH); err != nil {
		return fmt.Errorf("textindex: lock: %w", err)
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	fi, err := ix.f.Stat()
	if err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	if fi.Size() < int64(len(ix.data)) {
		return ErrChanged
	}
	return fn()
}

// Reset empties the index: the caller found it inconsistent.
func (ix *Index) Reset() error {
	return ix.withLock(ix.startOver)
}

// Covered reports whether the message is in the index.
func (ix *Index) Covered(uid uint32) bool {
	_, ok := slices.BinarySearch(ix.covered, uid)
	return ok
}

// CoveredCount is the number of UIDs the index covers.
func (ix *Index) CoveredCount() int { return len(ix.covered) }

// Segments is the number of segments in the file.
func (ix *Index) Segments() int { return len(ix.segs) }

// appendSegment writes one framed segment at the end of the file. If
// another process replaced the file meanwhile (Compact), the segment is
// dropped: the messages are indexed again by a later search.
func (ix *Index) appendSegment(seg []byte) error {
	ix.appendMu.Lock()
	defer ix.appendMu.Unlock()
	return ix.withLock(func() error {
		replaced, err := ix.replaced()
		if err != nil || replaced {
			return err
		}
		fi, err := ix.f.Stat()
		if err != nil {
			return fmt.Errorf("textindex: %w", err)
		}
		if _, err := ix.f.WriteAt(seg, fi.Size()); err != nil {
			return fmt.Errorf("textindex: append: %w", err)
		}
		return nil
	})
}

// replaced reports whether the path now names another file than ix.f.
func (ix *Index) replaced() (bool, error) {
	a, err := ix.f.Stat()
	if err != nil {
		return false, fmt.Errorf("textindex: %w", err)
	}
	b, err := os.Stat(ix.path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("textindex: %w", err)
	}
	return !os.SameFile(a, b), nil
}

// reopen follows a file replaced by Compact and reloads.
func (ix *Index) reopen() error {
	replaced, err := ix.replaced()
	if err != nil {
		return err
	}
	if replaced {
		f, err := os.OpenFile(ix.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("textindex: %w", err)
		}
		ix.unmap()
		_ = ix.f.Close()
		ix.f = f
	}
	return ix.withLock(ix.load)
}
