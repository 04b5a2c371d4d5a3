package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// modseqFile is a Mailbox's handle on mailroom-modseq: which inode it read
// and how far. The file is opened only while it is locked (no descriptor
// is held between operations, so an idle Mailbox costs no fd), and every
// access, reads included, is under flock(2) LOCK_EX: a reader without the
// lock could see half of an append and take it for a torn tail.
type modseqFile struct {
	path   string
	fh     *os.File // open and locked between lock and unlock
	size   int64    // the file's size when locked
	ino    uint64   // the inode loaded; 0 when nothing is loaded
	dev    uint64
	off    int64 // bytes read and valid: header and whole records
	hdr    modseqHeader
	loaded bool // hdr and off describe inode ino
	// tail is the last 24 bytes read (before off) and mtime the file's
	// mtime when it was last unlocked: a file cut back and appended to
	// again by another process (after a torn append) may have the same
	// inode and size, but not the same bytes there or the same mtime.
	tail  [modseqRecordSize]byte
	mtime unix.Timespec
}

// modseqLockTries bounds how often lock reopens a file renamed over while
// it waited.
const modseqLockTries = 8

// lock opens the file (creating it empty if absent) and takes LOCK_EX. If
// the path now names another inode than the one loaded (compaction or a
// restart renamed a new file over it), loaded becomes false and the caller
// reads the new file from the start. So it does after a failure: the
// caller's change may be missing from the file.
func (mf *modseqFile) lock() (err error) {
	defer func() {
		if err != nil {
			mf.loaded = false
		}
	}()
	for try := 0; try < modseqLockTries; try++ {
		fh, err := os.OpenFile(mf.path, os.O_RDWR|os.O_CREATE, syncFileMode(filepath.Dir(mf.path)))
		if err != nil {
			return fmt.Errorf("maildir: open %s: %w", mf.path, err)
		}
		if err := flockRetry(int(fh.Fd()), unix.LOCK_EX); err != nil {
			fh.Close()
			return fmt.Errorf("maildir: lock %s: %w", mf.path, err)
		}
		var st, pst unix.Stat_t
		if err := unix.Fstat(int(fh.Fd()), &st); err != nil {
			fh.Close()
			return fmt.Errorf("maildir: stat %s: %w", mf.path, err)
		}
		perr := unix.Stat(mf.path, &pst)
		if perr == nil && pst.Ino == st.Ino && pst.Dev == st.Dev {
			if !mf.loaded || mf.ino != st.Ino || mf.dev != st.Dev || st.Size < mf.off {
				mf.loaded = false
			}
			mf.fh, mf.size, mf.ino, mf.dev = fh, st.Size, st.Ino, st.Dev
			if mf.loaded && !mf.tailIntact() {
				mf.loaded = false
			}
			return nil
		}
		// Replaced or removed while we waited: the lock we hold is on a
		// file nobody reads any more.
		fh.Close()
		if perr != nil && !errors.Is(perr, unix.ENOENT) {
			return fmt.Errorf("maildir: stat %s: %w", mf.path, perr)
		}
	}
	return fmt.Errorf("maildir: lock %s: file keeps being replaced", mf.path)
}

// flockRetry is flock(2), retried on EINTR.
func flockRetry(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// tailIntact reports whether the bytes before off are still the ones this
// handle read or wrote there.
func (mf *modseqFile) tailIntact() bool {
	if mf.off < modseqRecordSize {
		return false
	}
	var b [modseqRecordSize]byte
	n, err := mf.fh.ReadAt(b[:], mf.off-modseqRecordSize)
	return n == len(b) && (err == nil || errors.Is(err, io.EOF)) && b == mf.tail
}

// noteTail remembers the last record-sized stretch of data ending at off.
func (mf *modseqFile) noteTail(data []byte) {
	if len(data) >= modseqRecordSize {
		copy(mf.tail[:], data[len(data)-modseqRecordSize:])
	}
}

// unlock closes the file, which drops the lock, noting its mtime for
// changedSince.
func (mf *modseqFile) unlock() error {
	if mf.fh == nil {
		return nil
	}
	var st unix.Stat_t
	if unix.Fstat(int(mf.fh.Fd()), &st) == nil {
		mf.mtime = st.Mtim
	} else {
		mf.mtime = unix.Timespec{} // changedSince will say changed
	}
	err := mf.fh.Close()
	mf.fh = nil
	if err != nil {
		return fmt.Errorf("maildir: close %s: %w", mf.path, err)
	}
	return nil
}

// changedSince reports, with one stat(2) and no lock, whether the file is
// no longer exactly what was loaded: another inode or another size.
func (mf *modseqFile) changedSince() (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(mf.path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return true, nil
		}
		return false, fmt.Errorf("maildir: stat %s: %w", mf.path, err)
	}
	return !mf.loaded || st.Ino != mf.ino || st.Dev != mf.dev || st.Size != mf.off || st.Mtim != mf.mtime, nil
}

// readRange reads [from, to) of the locked file in one pread.
func (mf *modseqFile) readRange(from, to int64) ([]byte, error) {
	if to <= from {
		return nil, nil
	}
	buf := make([]byte, to-from)
	n, err := mf.fh.ReadAt(buf, from)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == to-from) {
		return nil, fmt.Errorf("maildir: read %s: %w", mf.path, err)
	}
	return buf, nil
}

// cutTo truncates the locked file to size: a torn append (a short fragment
// of a record, left by a crash or a full disk) goes before anything is
// appended after it.
func (mf *modseqFile) cutTo(size int64) error {
	if err := mf.fh.Truncate(size); err != nil {
		return fmt.Errorf("maildir: truncate %s: %w", mf.path, err)
	}
	mf.size = size
	return nil
}

// appendRecords writes b (whole records) at the end of the locked file in
// one write and, with durable, fdatasyncs it before the lock is dropped: no
// other process can read a record that a crash could still take away. A
// failed write is cut off again so the file never keeps half of a batch.
func (mf *modseqFile) appendRecords(b []byte, durable bool) error {
	if _, err := mf.fh.WriteAt(b, mf.off); err != nil {
		werr := fmt.Errorf("maildir: append %s: %w", mf.path, err)
		return errors.Join(werr, mf.cutTo(mf.off))
	}
	if durable {
		if err := mf.datasync(); err != nil {
			return err
		}
	}
	mf.off += int64(len(b))
	mf.size = mf.off
	mf.noteTail(b)
	return nil
}

// datasync is fdatasync(2) of the locked file.
func (mf *modseqFile) datasync() error {
	if err := unix.Fdatasync(int(mf.fh.Fd())); err != nil {
		return fmt.Errorf("maildir: fsync %s: %w", mf.path, err)
	}
	return nil
}

// replace writes data as a new file and renames it over the path, while
// the old file stays locked: processes waiting for the old file's lock find
// it replaced and read the new one, which is complete and durable before it
// has its name. The new file becomes the loaded, locked one.
func (mf *modseqFile) replace(data []byte, hdr modseqHeader) error {
	dir := filepath.Dir(mf.path)
	// Built in the Maildir's tmp/, where a crash's leftover is cleaned up
	// as any other (Dovecot deletes old files there); a Maildir without
	// tmp/ gets it at the root, under a name no folder listing takes for
	// a folder.
	tmp, err := os.CreateTemp(filepath.Join(dir, "tmp"), ModSeqName+".*")
	if errors.Is(err, os.ErrNotExist) {
		tmp, err = os.CreateTemp(dir, ModSeqName+".tmp*")
	}
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(syncFileMode(dir)); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("maildir: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("maildir: fsync %s: %w", tmp.Name(), err)
	}
	// Lock the new file before it has its name, so nobody appends to it
	// before this process has finished with it.
	if err := flockRetry(int(tmp.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("maildir: lock %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), mf.path); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	ok = true
	var st unix.Stat_t
	serr := unix.Fstat(int(tmp.Fd()), &st)
	old := mf.fh
	mf.fh = tmp
	if cerr := old.Close(); cerr != nil {
		return fmt.Errorf("maildir: close %s: %w", mf.path, cerr)
	}
	if serr != nil {
		return fmt.Errorf("maildir: stat %s: %w", mf.path, serr)
	}
	mf.ino, mf.dev, mf.size, mf.off = st.Ino, st.Dev, int64(len(data)), int64(len(data))
	mf.hdr, mf.loaded = hdr, true
	mf.noteTail(data)
	return syncDir(dir)
}
