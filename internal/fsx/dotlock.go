package fsx

// Dot-locks compatible with Dovecot's file-dotlock (src/lib/file-dotlock.c,
// dotlock_use_excl = yes, the default since 2.0):
//
//   - The lock for file F is the file "F.lock", created with O_CREAT|O_EXCL,
//     which NFSv3 and later make atomic.
//   - It holds "<pid>:<hostname>" (no newline), so a waiter on the same host
//     can tell a lock whose owner died from a live one.
//   - A lock is stale, and may be removed, when either its owner is a dead
//     process on this host (checked only once the lock is older than 2s, so
//     a lock that was just created is not read half-written), or neither the
//     lock nor the protected file F changed for StaleTimeout.
//   - Release unlinks the lock only if it is still the file we created; if
//     someone overrode it in the meantime the caller is told.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrLockTimeout is returned when a dot-lock could not be taken in time.
var ErrLockTimeout = errors.New("dotlock: timed out waiting for lock")

// ErrLockOverridden is returned by Release when the lock file was replaced
// by another process that judged it stale: the caller's critical section
// was not exclusive.
var ErrLockOverridden = errors.New("dotlock: lock was overridden by another process")

// dotlockPIDCheckAge is how old a lock must be before its pid is checked
// (Dovecot's STALE_PID_CHECK_SECS).
const dotlockPIDCheckAge = 2 * time.Second

// DotLockOptions configures CreateDotLock.
type DotLockOptions struct {
	// Timeout bounds the wait for the lock; 0 means try once.
	Timeout time.Duration
	// StaleTimeout: a lock whose file and protected file stayed unchanged
	// this long is overridden. 0 disables age-based override.
	StaleTimeout time.Duration
	// Now returns the current time; nil means time.Now. Tests set it to
	// exercise stale detection without waiting.
	Now func() time.Time
}

// DotLock is a held dot-lock.
type DotLock struct {
	path     string // the lock file, target + ".lock"
	dev, ino uint64
	content  string // what we wrote; a freed inode number can be reused
}

// dotlockChange remembers what a file looked like, to notice changes.
type dotlockChange struct {
	seen         bool
	dev, ino     uint64
	size         int64
	ctime, mtime time.Time
}

// CreateDotLock takes the dot-lock for target, waiting up to opt.Timeout.
func CreateDotLock(target string, opt DotLockOptions) (*DotLock, error) {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	lockPath := target + ".lock"
	deadline := time.Now().Add(opt.Timeout)
	var w dotlockWaiter
	w.target, w.lockPath, w.opt, w.now = target, lockPath, opt, now
	backoff := time.Millisecond
	// Bounded in time by the deadline and in count by dotlockMaxAttempts,
	// so two processes overriding each other's locks cannot spin forever.
	for attempt := 0; attempt < dotlockMaxAttempts; attempt++ {
		l, err := dotlockTryCreate(lockPath)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		overridden, err := w.checkStale()
		if err != nil {
			return nil, err
		}
		if overridden {
			continue
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("%w: %s", ErrLockTimeout, lockPath)
		}
		// Back off: the holder of a uidlist lock usually keeps it for
		// milliseconds, so start small and grow to at most 100ms.
		time.Sleep(backoff)
		if backoff < 100*time.Millisecond {
			backoff *= 2
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrLockTimeout, lockPath)
}

// dotlockMaxAttempts caps lock attempts independently of the timeout.
const dotlockMaxAttempts = 100000

// dotlockTryCreate makes one O_EXCL attempt.
func dotlockTryCreate(lockPath string) (*DotLock, error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, fmt.Errorf("dotlock %s: %w", lockPath, err)
	}
	host, _ := os.Hostname()
	content := strconv.Itoa(os.Getpid()) + ":" + host
	_, werr := f.WriteString(content)
	fi, serr := f.Stat()
	cerr := f.Close()
	for _, e := range []error{werr, serr, cerr} {
		if e != nil {
			os.Remove(lockPath)
			return nil, fmt.Errorf("dotlock %s: %w", lockPath, e)
		}
	}
	st := fi.Sys().(*syscall.Stat_t)
	return &DotLock{path: lockPath, dev: uint64(st.Dev), ino: st.Ino, content: content}, nil
}

// dotlockWaiter tracks one contended lock across attempts.
type dotlockWaiter struct {
	target, lockPath string
	opt              DotLockOptions
	now              func() time.Time
	lock, file       dotlockChange
	lastChange       time.Time
}

// observe records st into c and moves lastChange forward when the file
// changed. On the first look the file's own timestamp counts, so a lock left
// behind long ago is recognised as stale at once.
func (w *dotlockWaiter) observe(c *dotlockChange, st *syscall.Stat_t, now time.Time) bool {
	mtime := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	ctime := time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
	if c.seen && c.dev == uint64(st.Dev) && c.ino == st.Ino && c.size == st.Size &&
		c.mtime.Equal(mtime) && c.ctime.Equal(ctime) {
		return false
	}
	changed := now
	if !c.seen {
		changed = ctime
		if !mtime.After(now) && mtime.After(ctime) {
			changed = mtime
		}
	}
	if changed.After(w.lastChange) {
		w.lastChange = changed
	}
	*c = dotlockChange{seen: true, dev: uint64(st.Dev), ino: st.Ino, size: st.Size, ctime: ctime, mtime: mtime}
	return true
}

// checkStale looks at the existing lock and removes it if it is stale. It
// reports whether the caller should retry at once.
func (w *dotlockWaiter) checkStale() (bool, error) {
	now := w.now()
	var st syscall.Stat_t
	if err := syscall.Lstat(w.lockPath, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return true, nil // released between our attempt and now
		}
		return false, fmt.Errorf("dotlock: lstat %s: %w", w.lockPath, err)
	}
	w.observe(&w.lock, &st, now)
	if now.Sub(w.lock.mtime) > dotlockPIDCheckAge {
		if pid, ok := dotlockLocalPID(w.lockPath); ok && !dotlockProcessAlive(pid) {
			return w.override(st.Ino)
		}
	}
	if w.opt.StaleTimeout <= 0 || now.Sub(w.lastChange) <= w.opt.StaleTimeout {
		return false, nil
	}
	// Possibly stale: a holder that keeps writing the protected file is
	// alive even if it never touches the lock.
	var fst syscall.Stat_t
	if err := syscall.Stat(w.target, &fst); err == nil {
		w.observe(&w.file, &fst, now)
	} else if !errors.Is(err, syscall.ENOENT) {
		return false, fmt.Errorf("dotlock: stat %s: %w", w.target, err)
	}
	if now.Sub(w.lastChange) <= w.opt.StaleTimeout {
		return false, nil
	}
	return w.override(st.Ino)
}

// override removes a stale lock, unless it was replaced meanwhile.
func (w *dotlockWaiter) override(ino uint64) (bool, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(w.lockPath, &st); err != nil || st.Ino != ino {
		return true, nil // gone or replaced: just retry
	}
	if err := os.Remove(w.lockPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("dotlock: override %s: %w", w.lockPath, err)
	}
	w.lock = dotlockChange{}
	return true, nil
}

// dotlockLocalPID reads "<pid>:<host>" and returns the pid if host is ours.
func dotlockLocalPID(lockPath string) (int, bool) {
	data, err := os.ReadFile(lockPath)
	if err != nil || len(data) > 512 {
		return 0, false
	}
	pidStr, host, ok := strings.Cut(strings.TrimSuffix(string(data), "\n"), ":")
	if !ok {
		return 0, false
	}
	if me, err := os.Hostname(); err != nil || me != host {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// dotlockProcessAlive reports whether pid exists. Our own pid counts as
// alive: in-process callers serialise before taking the dot-lock, so a lock
// naming us is held by another goroutine, never stale. (Dovecot, being one
// process per session, instead treats its own pid as stale.)
func dotlockProcessAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || !errors.Is(err, syscall.ESRCH)
}

// Path returns the lock file's path.
func (l *DotLock) Path() string { return l.path }

// Touch refreshes the lock's mtime, telling waiters the holder is alive.
func (l *DotLock) Touch() error {
	now := time.Now()
	if err := os.Chtimes(l.path, now, now); err != nil {
		return fmt.Errorf("dotlock touch: %w", err)
	}
	return nil
}

// Release removes the lock if it is still ours.
func (l *DotLock) Release() error {
	var st syscall.Stat_t
	if err := syscall.Lstat(l.path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w: %s vanished", ErrLockOverridden, l.path)
		}
		return fmt.Errorf("dotlock release: %w", err)
	}
	if uint64(st.Dev) != l.dev || st.Ino != l.ino {
		return fmt.Errorf("%w: %s", ErrLockOverridden, l.path)
	}
	if data, err := os.ReadFile(l.path); err == nil && string(data) != l.content {
		return fmt.Errorf("%w: %s holds %q", ErrLockOverridden, l.path, data)
	}
	if err := os.Remove(l.path); err != nil {
		return fmt.Errorf("dotlock release: %w", err)
	}
	return nil
}
