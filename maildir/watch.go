package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watcher signals changes to a Maildir: files arriving in, leaving or being
// renamed within new/ and cur/, and dovecot-uidlist or dovecot-keywords
// being replaced or appended to. It only says "something changed"; the
// receiver calls Mailbox.Sync to learn what. IMAP IDLE (RFC 2177) is its
// intended user.
type Watcher struct {
	// C receives a value after changes. Bursts are coalesced: at most one
	// signal is pending. C is closed when the watcher stops.
	C <-chan struct{}

	c    chan struct{}
	file *os.File // the inotify fd, non-blocking, so Close interrupts Read
	done chan struct{}
	// rootWd is the watch on the Maildir itself, whose events matter
	// only for the metadata files.
	rootWd int32
	once   sync.Once
	err    error
}

// watchDirMask are the events on new/ and cur/ that mean a message came,
// went or was renamed.
const watchDirMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// watchRootMask are the events on the Maildir itself that can concern the
// metadata files (both are replaced by rename; the uidlist is also
// appended to).
const watchRootMask = unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_DELETE

// Watch starts watching the Maildir at path.
func Watch(path string) (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("maildir: inotify: %w", err)
	}
	watches := []struct {
		path string
		mask uint32
	}{
		{filepath.Join(path, "new"), watchDirMask},
		{filepath.Join(path, "cur"), watchDirMask},
		{path, watchRootMask},
	}
	var rootWd int32
	for _, w := range watches {
		wd, err := unix.InotifyAddWatch(fd, w.path, w.mask|unix.IN_ONLYDIR)
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("maildir: watch %s: %w", w.path, err)
		}
		if w.path == path {
			rootWd = int32(wd)
		}
	}
	c := make(chan struct{}, 1)
	w := &Watcher{C: c, c: c, file: os.NewFile(uintptr(fd), "inotify"), done: make(chan struct{}), rootWd: rootWd}
	go w.loop()
	return w, nil
}

// Watch starts a Watcher on the mailbox's Maildir.
func (m *Mailbox) Watch() (*Watcher, error) { return Watch(m.path) }

// loop reads events until the file is closed.
func (w *Watcher) loop() {
	defer close(w.done)
	defer close(w.c)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.file.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.err = fmt.Errorf("maildir: watch: %w", err)
			}
			return
		}
		if w.relevant(buf[:n]) {
			select {
			case w.c <- struct{}{}:
			default: // a signal is already pending
			}
		}
	}
}

// relevant reports whether a batch of events concerns messages or the
// metadata files. Events on the root for other names (Dovecot's index
// files, our own temporary files) are ignored.
func (w *Watcher) relevant(buf []byte) bool {
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		nameStart := off + unix.SizeofInotifyEvent
		nameEnd := nameStart + int(ev.Len)
		if nameEnd > len(buf) || ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			return true // lost events: assume a change
		}
		if ev.Wd != w.rootWd {
			return true // new/ or cur/
		}
		name := strings.TrimRight(string(buf[nameStart:nameEnd]), "\x00")
		if name == UidlistName || name == KeywordsName {
			return true
		}
		off = nameEnd
	}
	return false
}

// Close stops the watcher; C is closed once the reader has exited. It
// returns any error the reader met.
func (w *Watcher) Close() error {
	var cerr error
	w.once.Do(func() { cerr = w.file.Close() })
	<-w.done
	if w.err != nil {
		return w.err
	}
	if cerr != nil {
		return fmt.Errorf("maildir: watch close: %w", cerr)
	}
	return nil
}
