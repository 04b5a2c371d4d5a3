package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchWait waits (bounded) for a signal on w.
func watchWait(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case _, ok := <-w.C:
		if !ok {
			t.Fatalf("%s: watcher closed", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no signal within 10s", what)
	}
}

func TestWatcher(t *testing.T) {
	root := mbtestMaildir(t)
	m := mbtestOpen(t, root)
	w, err := m.Watch()
	if err != nil {
		t.Fatal(err)
	}
	base := mbtestMustDeliver(t, root, "hello")
	watchWait(t, w, "delivery")
	mbtestSync(t, m) // assigns a UID: the uidlist changes too
	for len(w.C) > 0 {
		<-w.C // drain what our own sync caused
	}
	if err := m.SetFlags(1, FlagSeen, 0); err != nil {
		t.Fatal(err)
	}
	watchWait(t, w, "flag change")
	// Files in the root other than the metadata files do not signal; a
	// keywords write afterwards does, and is the next signal we see.
	for len(w.C) > 0 {
		<-w.C
	}
	if err := os.WriteFile(filepath.Join(root, "dovecot.index.log"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.KeywordSlot("kw", true); err != nil {
		t.Fatal(err)
	}
	watchWait(t, w, "keywords")
	if err := os.Remove(filepath.Join(root, "cur", base+":2,S")); err != nil {
		t.Fatal(err)
	}
	watchWait(t, w, "expunge")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for range w.C { // drains, then ends: C is closed
	}
}

func TestWatchNotMaildir(t *testing.T) {
	if _, err := Watch(t.TempDir()); err == nil {
		t.Fatal("watching a directory without new/ and cur/ succeeded")
	}
}

// inotifyFDs returns the process's open inotify instances and, summed,
// their watch descriptors (from /proc/self/fdinfo).
func inotifyFDs(t *testing.T) (instances, wds int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != "anon_inode:inotify" {
			continue // closed meanwhile (ReadDir's own fd), or not inotify
		}
		instances++
		info, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		wds += strings.Count(string(info), "inotify wd:")
	}
	return instances, wds
}

// watchQuiet fails if w has a signal pending.
func watchQuiet(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case <-w.C:
		t.Fatalf("%s: unexpected signal", what)
	default:
	}
}

func watchDrain(w *Watcher) {
	for len(w.C) > 0 {
		<-w.C
	}
}

// TestWatchOneInstance: 300 Watchers on 300 Maildirs share one inotify
// instance; each hears of its own Maildir's change and of no other's.
func TestWatchOneInstance(t *testing.T) {
	const n = 300
	before, _ := inotifyFDs(t)
	if before != 0 {
		t.Fatalf("%d inotify instances open before the test", before)
	}
	roots := make([]string, n)
	ws := make([]*Watcher, n)
	for i := range n {
		roots[i] = mbtestMaildir(t, fmt.Sprint(i))
		w, err := Watch(roots[i])
		if err != nil {
			t.Fatal(err)
		}
		if w.Polling() {
			t.Fatalf("watcher %d polls", i)
		}
		ws[i] = w
	}
	if inst, wds := inotifyFDs(t); inst != 1 || wds != 3*n {
		t.Fatalf("%d watchers: %d inotify instances, %d watches; want 1, %d", n, inst, wds, 3*n)
	}
	for i := range n {
		mbtestMustDeliver(t, roots[i], fmt.Sprint("message ", i))
	}
	for i := range n {
		watchWait(t, ws[i], fmt.Sprint("delivery ", i))
	}
	// Isolation: a change to 0 and then to 1 reaches 0 and 1 only. The
	// events come in order and are dispatched in order, so once 1 has its
	// signal every signal these changes cause has been sent.
	for _, w := range ws {
		watchDrain(w)
	}
	mbtestMustDeliver(t, roots[0], "again")
	mbtestMustDeliver(t, roots[1], "again")
	watchWait(t, ws[0], "second delivery 0")
	watchWait(t, ws[1], "second delivery 1")
	for i := 2; i < n; i++ {
		watchQuiet(t, ws[i], fmt.Sprint("watcher ", i))
	}
	for i, w := range ws {
		if err := w.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
	if inst, _ := inotifyFDs(t); inst != 0 {
		t.Fatalf("%d inotify instances open after the last watcher stopped", inst)
	}
}

// TestWatchSharedDescriptors: two Watchers of one Maildir share its three
// watches; the first to stop leaves the other working.
func TestWatchSharedDescriptors(t *testing.T) {
	root := mbtestMaildir(t)
	a, err := Watch(root)
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan struct{}, 10)
	b, err := WatchFunc(root, func() { calls <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	if b.C != nil {
		t.Fatal("WatchFunc's Watcher has a channel")
	}
	if inst, wds := inotifyFDs(t); inst != 1 || wds != 3 {
		t.Fatalf("two watchers of one Maildir: %d instances, %d watches; want 1, 3", inst, wds)
	}
	mbtestMustDeliver(t, root, "one")
	watchWait(t, a, "delivery, a")
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("delivery: WatchFunc not called within 10s")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if inst, wds := inotifyFDs(t); inst != 1 || wds != 3 {
		t.Fatalf("after one stopped: %d instances, %d watches; want 1, 3", inst, wds)
	}
	for len(calls) > 0 {
		<-calls
	}
	mbtestMustDeliver(t, root, "two")
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("delivery after the other stopped: WatchFunc not called within 10s")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if inst, _ := inotifyFDs(t); inst != 0 {
		t.Fatalf("%d inotify instances after both stopped", inst)
	}
	// Close is idempotent, and no call comes after it.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	mbtestMustDeliver(t, root, "three")
	select {
	case <-calls:
		t.Fatal("WatchFunc called after Close")
	default:
	}
}

// TestWatchOverflow: lost events (IN_Q_OVERFLOW) wake every Watcher.
func TestWatchOverflow(t *testing.T) {
	var ws []*Watcher
	for i := range 3 {
		w, err := Watch(mbtestMaildir(t, fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ws = append(ws, w)
	}
	watchers.mu.Lock()
	inst := watchers.inst
	watchers.mu.Unlock()
	ev := make([]byte, unix.SizeofInotifyEvent)
	(*unix.InotifyEvent)(unsafe.Pointer(&ev[0])).Wd = -1
	(*unix.InotifyEvent)(unsafe.Pointer(&ev[0])).Mask = unix.IN_Q_OVERFLOW
	got := watchers.dispatch(inst, ev)
	if len(got) != len(ws) {
		t.Fatalf("overflow woke %d watchers, want %d", len(got), len(ws))
	}
	for _, w := range got {
		w.signal()
	}
	for i, w := range ws {
		watchWait(t, w, fmt.Sprint("overflow ", i))
	}
}

// TestWatchRemovedMaildir: a Maildir removed under its Watcher signals,
// and the Watcher still stops cleanly.
func TestWatchRemovedMaildir(t *testing.T) {
	root := mbtestMaildir(t, "gone")
	w, err := Watch(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	watchWait(t, w, "removal")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if inst, _ := inotifyFDs(t); inst != 0 {
		t.Fatalf("%d inotify instances after the watcher stopped", inst)
	}
}

// TestWatchPollingFallback: with no inotify instance to be had, Watch
// polls and still signals deliveries, flag changes and keyword writes.
func TestWatchPollingFallback(t *testing.T) {
	saved := inotifyInit
	inotifyInit = func() (int, error) { return -1, unix.EMFILE }
	t.Cleanup(func() { inotifyInit = saved })

	if _, err := Watch(t.TempDir()); err == nil {
		t.Fatal("polling a directory without new/ and cur/ succeeded")
	}
	root := mbtestMaildir(t)
	m := mbtestOpen(t, root)
	w, err := m.Watch()
	if err != nil {
		t.Fatal(err)
	}
	if !w.Polling() {
		t.Fatal("watcher does not poll without inotify")
	}
	if inst, _ := inotifyFDs(t); inst != 0 {
		t.Fatalf("%d inotify instances while polling", inst)
	}
	other, err := Watch(mbtestMaildir(t, "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	start := time.Now()
	mbtestMustDeliver(t, root, "hello")
	watchWait(t, w, "delivery")
	if d := time.Since(start); d > 3*pollInterval {
		t.Errorf("delivery seen after %v", d)
	}
	mbtestSync(t, m)
	// Signals pending now may come from the racy-time rule: wait until
	// a poll tick passes quietly before checking the next change.
	waitQuiet(t, w)
	if err := m.SetFlags(1, FlagSeen, 0); err != nil {
		t.Fatal(err)
	}
	watchWait(t, w, "flag change")
	waitQuiet(t, w)
	if _, err := m.KeywordSlot("kw", true); err != nil {
		t.Fatal(err)
	}
	watchWait(t, w, "keywords")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for range w.C {
	}
	// The untouched Maildir's watcher signalled at most for its
	// creation time (racy rule), then never again.
	watchDrain(other)
	waitQuiet(t, other)
}

// waitQuiet drains w until no signal came for two and a half poll intervals, at
// most 20 s.
func waitQuiet(t *testing.T, w *Watcher) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case <-w.C:
		case <-time.After(2*pollInterval + pollInterval/2):
			return
		case <-deadline:
			t.Fatal("watcher never went quiet")
		}
	}
}

// TestWatchReadFailure: should reading the shared instance fail, its
// Watchers are woken, move to polling and still see changes.
func TestWatchReadFailure(t *testing.T) {
	root := mbtestMaildir(t)
	w, err := Watch(root)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	watchers.mu.Lock()
	inst := watchers.inst
	watchers.mu.Unlock()
	watchers.failed(inst)
	watchWait(t, w, "failure")
	if !w.Polling() {
		t.Fatal("watcher does not poll after its instance failed")
	}
	if n, _ := inotifyFDs(t); n != 0 {
		t.Fatalf("%d inotify instances open after the failure", n)
	}
	waitQuiet(t, w)
	mbtestMustDeliver(t, root, "after")
	watchWait(t, w, "delivery while polling")
}
