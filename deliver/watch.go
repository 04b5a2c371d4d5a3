package deliver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/spool"
)

// watchKind is what an inotify event means for the daemon.
type watchKind int

const (
	evQueued   watchKind = iota // a message appeared in queue/
	evDropped                   // a maildrop file was written, completed or moved in
	evOverflow                  // events were lost: rescan
	evPoll                      // the poller's tick: rescan quietly
)

// spoolWatcher is what Run needs to hear of new mail: the inotify watcher,
// or the poller standing in for it.
type spoolWatcher interface {
	run(handle func(watchEvent)) error
	close()
}

// inotifyInit is unix.InotifyInit1; tests replace it to see the daemon
// without inotify.
var inotifyInit = unix.InotifyInit1

// pollInterval is how often the poller rescans the spool.
var pollInterval = time.Second

// openWatcher returns an inotify watcher or, when the kernel refuses an
// inotify instance or watch (EMFILE, ENFILE, ENOSPC, ENOMEM: the per-user
// limits fs.inotify.max_user_instances and max_user_watches are shared by
// every process of the uid, so a busy Dovecot as vmail can spend them), a
// poller that rescans the spool every pollInterval. Mail then waits up to
// that long instead of milliseconds; nothing else changes. Any other error
// (a missing queue/, say) is returned.
func openWatcher(spoolDir string) (spoolWatcher, bool, error) {
	w, err := newWatcher(spoolDir)
	if err == nil {
		return w, false, nil
	}
	for _, limit := range []error{unix.EMFILE, unix.ENFILE, unix.ENOSPC, unix.ENOMEM} {
		if errors.Is(err, limit) {
			return newPoller(pollInterval), true, nil
		}
	}
	return nil, false, err
}

// poller reports a tick every interval until closed.
type poller struct {
	interval  time.Duration
	stop      chan struct{}
	closeOnce sync.Once
}

func newPoller(interval time.Duration) *poller {
	return &poller{interval: interval, stop: make(chan struct{})}
}

func (p *poller) run(handle func(watchEvent)) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return nil
		case <-t.C:
			handle(watchEvent{kind: evPoll})
		}
	}
}

func (p *poller) close() { p.closeOnce.Do(func() { close(p.stop) }) }

type watchEvent struct {
	kind watchKind
	id   spool.ID
}

// watcher reads inotify events for queue/ and maildrop/. Its descriptor
// is non-blocking and read through the runtime's poller, so close makes a
// blocked run return.
type watcher struct {
	f         *os.File
	queueWD   int32
	dropWD    int32
	closeOnce sync.Once
}

// newWatcher watches queue/ for IN_MOVED_TO (the commit's rename, and
// Pickup's) and maildrop/ for IN_CLOSE_WRITE, IN_ATTRIB (the chmod to
// 0644 that completes a drop) and IN_MOVED_TO.
func newWatcher(spoolDir string) (*watcher, error) {
	fd, err := inotifyInit(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("deliver: inotify: %w", err)
	}
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify")}
	qwd, err := unix.InotifyAddWatch(fd, filepath.Join(spoolDir, "queue"), unix.IN_MOVED_TO|unix.IN_ONLYDIR)
	if err != nil {
		w.close()
		return nil, fmt.Errorf("deliver: inotify on queue/: %w", err)
	}
	dwd, err := unix.InotifyAddWatch(fd, filepath.Join(spoolDir, "maildrop"),
		unix.IN_ATTRIB|unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_ONLYDIR)
	if err != nil {
		w.close()
		return nil, fmt.Errorf("deliver: inotify on maildrop/: %w", err)
	}
	w.queueWD, w.dropWD = int32(qwd), int32(dwd)
	return w, nil
}

func (w *watcher) close() {
	w.closeOnce.Do(func() { w.f.Close() })
}

// run delivers events to handle until the watcher is closed (nil) or
// fails.
func (w *watcher) run(handle func(watchEvent)) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if errors.Is(err, os.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("deliver: inotify: %w", err)
		}
		for _, ev := range w.parse(buf[:n]) {
			handle(ev)
		}
	}
}

// parse decodes a buffer of struct inotify_event records (inotify(7)).
func (w *watcher) parse(b []byte) []watchEvent {
	var out []watchEvent
	for len(b) >= unix.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:4]))
		mask := binary.NativeEndian.Uint32(b[4:8])
		nameLen := int(binary.NativeEndian.Uint32(b[12:16]))
		end := unix.SizeofInotifyEvent + nameLen
		if end > len(b) {
			break
		}
		name := string(b[unix.SizeofInotifyEvent:end])
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		b = b[end:]
		if mask&unix.IN_Q_OVERFLOW != 0 {
			out = append(out, watchEvent{kind: evOverflow})
			continue
		}
		id, err := spool.ParseID(name)
		if err != nil {
			continue // not a message: a temporary name, "refused.<id>"
		}
		switch wd {
		case w.queueWD:
			out = append(out, watchEvent{kind: evQueued, id: id})
		case w.dropWD:
			out = append(out, watchEvent{kind: evDropped, id: id})
		}
	}
	return out
}
