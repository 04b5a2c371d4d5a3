package spool

import (
	"errors"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// The spool's hot paths (smtpd's commit, the queue daemon's read and
// removal of every message) use descriptors directly. os.OpenFile spends
// up to five more system calls per file registering a regular file with
// the runtime's poller, which refuses it every time; on a path run once
// per message, in two processes, those calls and their scheduler wake-ups
// were a measurable share of the CPU per message (docs/benchmarks.md,
// SMTP).

// openFd is open(2), retried on EINTR, with a *fs.PathError on failure
// (so errors.Is(err, fs.ErrNotExist) and friends work as with os.Open).
func openFd(path string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, mode)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// openNoPoll opens path as an *os.File without the poller's set-up
// (os.NewFile on a blocking descriptor skips it).
func openNoPoll(path string, flags int, mode uint32) (*os.File, error) {
	fd, err := openFd(path, flags&^unix.O_NONBLOCK, mode)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// rawFile is a descriptor read with pread(2) only: an io.ReaderAt and
// io.Closer without an *os.File around it.
type rawFile struct {
	fd   int
	path string
}

// ReadAt reads len(p) bytes at off, as io.ReaderAt: fewer only at the end
// of the file (with io.EOF) or on an error.
func (r *rawFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(r.fd, p[n:], off+int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "read", Path: r.path, Err: err}
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// Close closes the descriptor once; a second Close reports fs.ErrClosed.
func (r *rawFile) Close() error {
	if r.fd < 0 {
		return &fs.PathError{Op: "close", Path: r.path, Err: fs.ErrClosed}
	}
	err := unix.Close(r.fd)
	r.fd = -1
	if err != nil {
		return &fs.PathError{Op: "close", Path: r.path, Err: err}
	}
	return nil
}
