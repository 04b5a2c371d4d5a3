package maildir

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"mailroom/internal/fsx"
)

// The uidlist lock is dovecot-uidlist.lock, a dot-lock compatible with
// Dovecot's: O_EXCL create, "<pid>:<host>" inside, overridden when its owner
// is dead or nothing changed for two minutes.
const (
	// uidlistLockStale is MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT.
	uidlistLockStale = 2 * time.Minute
	// uidlistLockWait is how long Dovecot waits before giving up: the
	// stale timeout plus 2s, so a stale lock is always overridden first.
	uidlistLockWait = uidlistLockStale + 2*time.Second
)

// uidlistLocks serialises lockers inside this process, one mutex per
// Maildir. An imapd serves many sessions from one pid, and the dot-lock
// alone cannot tell two of our goroutines apart.
var uidlistLocks sync.Map // cleaned path -> *sync.Mutex

// uidlistLock is a held uidlist lock.
type uidlistLock struct {
	mu  *sync.Mutex
	dot *fsx.DotLock
}

// uidlistLockAcquire takes the lock of the Maildir at dir.
func uidlistLockAcquire(dir string, opt fsx.DotLockOptions) (*uidlistLock, error) {
	key := filepath.Clean(dir)
	v, _ := uidlistLocks.LoadOrStore(key, new(sync.Mutex))
	mu := v.(*sync.Mutex)
	mu.Lock()
	dot, err := fsx.CreateDotLock(filepath.Join(dir, UidlistName), opt)
	if err != nil {
		mu.Unlock()
		return nil, fmt.Errorf("maildir: lock %s: %w", dir, err)
	}
	return &uidlistLock{mu: mu, dot: dot}, nil
}

// release drops the lock. An overridden lock is reported: what was written
// under it may have raced with another writer.
func (l *uidlistLock) release() error {
	err := l.dot.Release()
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("maildir: unlock: %w", err)
	}
	return nil
}

// defaultLockOptions are Dovecot's settings for the uidlist lock.
func defaultLockOptions() fsx.DotLockOptions {
	return fsx.DotLockOptions{Timeout: uidlistLockWait, StaleTimeout: uidlistLockStale}
}
