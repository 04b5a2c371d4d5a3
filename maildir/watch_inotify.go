package maildir

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchDirMask are the events on new/ and cur/ that mean a message came,
// went or was renamed.
const watchDirMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// watchRootMask are the events on the Maildir itself that can concern the
// metadata files (both are replaced by rename; the uidlist is also
// appended to).
const watchRootMask = unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_DELETE |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// watchMasks are the masks of a Watcher's directories, in wds order.
var watchMasks = [3]uint32{watchRootMask, watchDirMask, watchDirMask}

// inotifyInit opens an inotify instance; a variable so that tests can
// make it fail as an exhausted fs.inotify.max_user_instances does.
var inotifyInit = func() (int, error) {
	return unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
}

// errNoInotify means inotify cannot be had: the Watcher polls instead.
var errNoInotify = errors.New("no inotify")

// watchers is the process's one notifier.
var watchers notifier

// notifier holds every Watcher of the process: those on the shared
// inotify instance and those polling.
type notifier struct {
	mu      sync.Mutex
	inst    *inotifyInstance // nil while no Watcher uses inotify
	polled  map[*Watcher]struct{}
	polling bool // the poll goroutine runs
}

// inotifyInstance is one inotify fd and the Watchers on it.
type inotifyInstance struct {
	file *os.File // non-blocking, so Close interrupts the reader
	fd   int
	// wds maps a watch descriptor to its Watchers. Watchers of the same
	// Maildir share descriptors: the kernel returns the same one for the
	// same inode.
	wds    map[int32][]watchRef
	users  int
	closed bool
}

// watchRef is one Watcher of a descriptor; root says whether the
// descriptor is that Watcher's Maildir root, whose events matter only for
// the metadata files.
type watchRef struct {
	w    *Watcher
	root bool
}

// add starts w on inotify, or on polling when inotify cannot be had.
func (n *notifier) add(w *Watcher) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.addInotifyLocked(w)
	if errors.Is(err, errNoInotify) {
		return n.addPollLocked(w)
	}
	return err
}

func (n *notifier) addInotifyLocked(w *Watcher) error {
	if n.inst == nil {
		fd, err := inotifyInit()
		if err != nil {
			return fmt.Errorf("%w: %w", errNoInotify, err)
		}
		n.inst = &inotifyInstance{file: os.NewFile(uintptr(fd), "inotify"), fd: fd, wds: map[int32][]watchRef{}}
		go n.read(n.inst)
	}
	inst := n.inst
	w.wds = [3]int32{-1, -1, -1}
	for i, p := range w.watchPaths() {
		// IN_MASK_ADD: a descriptor shared with another Watcher keeps
		// the events that one asked for.
		wd, err := unix.InotifyAddWatch(inst.fd, p, watchMasks[i]|unix.IN_ONLYDIR|unix.IN_MASK_ADD)
		if err != nil {
			for _, added := range w.wds {
				inst.unrefLocked(added, w)
			}
			n.closeIfUnusedLocked(inst)
			if errors.Is(err, unix.ENOSPC) { // fs.inotify.max_user_watches
				return fmt.Errorf("%w: %w", errNoInotify, err)
			}
			return fmt.Errorf("maildir: watch %s: %w", p, err)
		}
		w.wds[i] = int32(wd)
		inst.wds[int32(wd)] = append(inst.wds[int32(wd)], watchRef{w, i == watchRoot})
	}
	inst.users++
	return nil
}

// unrefLocked drops w from descriptor wd, and the descriptor with its
// last Watcher.
func (inst *inotifyInstance) unrefLocked(wd int32, w *Watcher) {
	ws := inst.wds[wd]
	i := slices.IndexFunc(ws, func(r watchRef) bool { return r.w == w })
	if wd < 0 || i < 0 {
		return
	}
	ws = slices.Delete(ws, i, i+1)
	if len(ws) > 0 {
		inst.wds[wd] = ws
		return
	}
	delete(inst.wds, wd)
	// EINVAL: the kernel dropped the watch already (the directory was
	// removed); its IN_IGNORED is still queued.
	_, _ = unix.InotifyRmWatch(inst.fd, uint32(wd))
}

// closeIfUnusedLocked closes inst when no Watcher uses it, so an idle
// process holds no instance of the user's limited number.
func (n *notifier) closeIfUnusedLocked(inst *inotifyInstance) error {
	if inst.users > 0 || inst.closed {
		return nil
	}
	inst.closed = true
	if n.inst == inst {
		n.inst = nil
	}
	return inst.file.Close()
}

// remove stops w.
func (n *notifier) remove(w *Watcher) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w.polling {
		delete(n.polled, w)
		return nil
	}
	inst := n.inst
	if inst == nil {
		return nil
	}
	for _, wd := range w.wds {
		inst.unrefLocked(wd, w)
	}
	inst.users--
	return n.closeIfUnusedLocked(inst)
}

// read is the one goroutine reading inst; it ends when inst is closed.
func (n *notifier) read(inst *inotifyInstance) {
	// Room for 64 events with the longest names: a read returns whole
	// events only.
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		nr, err := inst.file.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				n.failed(inst)
			}
			return
		}
		for _, w := range n.dispatch(inst, buf[:nr]) {
			w.signal()
		}
	}
}

// dispatch returns the Watchers a batch of events concerns, in the order
// of the events. Events on a root for other names (Dovecot's index files,
// our own temporary files) concern nobody.
func (n *notifier) dispatch(inst *inotifyInstance, buf []byte) []*Watcher {
	n.mu.Lock()
	defer n.mu.Unlock()
	if inst.closed {
		return nil
	}
	var out []*Watcher
	seen := map[*Watcher]bool{}
	wake := func(w *Watcher) {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		nameStart := off + unix.SizeofInotifyEvent
		nameEnd := nameStart + int(ev.Len)
		if nameEnd > len(buf) || ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			// Lost events: every Watcher may have missed a change.
			for _, ws := range inst.wds {
				for _, r := range ws {
					wake(r.w)
				}
			}
			break
		}
		name := strings.TrimRight(string(buf[nameStart:nameEnd]), "\x00")
		for _, r := range inst.wds[ev.Wd] {
			if !r.root || name == UidlistName || name == KeywordsName || ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 {
				wake(r.w)
			}
		}
		if ev.Mask&unix.IN_IGNORED != 0 {
			// The kernel dropped the watch (the directory is gone):
			// forget the descriptor, which it may hand out again.
			for _, r := range inst.wds[ev.Wd] {
				for i, wd := range r.w.wds {
					if wd == ev.Wd {
						r.w.wds[i] = -1
					}
				}
			}
			delete(inst.wds, ev.Wd)
		}
		off = nameEnd
	}
	return out
}

// failed moves every Watcher of inst to polling after a read error on
// it, and wakes them all: events may have been lost.
func (n *notifier) failed(inst *inotifyInstance) {
	n.mu.Lock()
	var moved []*Watcher
	seen := map[*Watcher]bool{}
	for _, ws := range inst.wds {
		for _, r := range ws {
			if !seen[r.w] {
				seen[r.w] = true
				moved = append(moved, r.w)
			}
		}
	}
	inst.wds = map[int32][]watchRef{}
	for _, w := range moved {
		w.wds = [3]int32{-1, -1, -1}
		n.startPollLocked(w, pollSnapshot{})
	}
	inst.users = 0
	_ = n.closeIfUnusedLocked(inst)
	n.mu.Unlock()
	for _, w := range moved {
		w.signal()
	}
}
