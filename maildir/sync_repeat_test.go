package maildir

import (
	"testing"
	"time"
)

// TestOpenThenSyncListsOnce: Sync right after OpenMailbox (an IMAP SELECT)
// does not list the directories again, and a delivery made then is still
// reported by a Sync after syncRepeatWindow.
func TestOpenThenSyncListsOnce(t *testing.T) {
	root := mbtestMaildir(t, "Maildir")
	mbtestMustDeliver(t, root, "one\n")
	before := syncScans.Load()
	m := mbtestOpen(t, root)
	opened := time.Now()
	ch := mbtestSync(t, m)
	if got := syncScans.Load() - before; got != 1 && time.Since(opened) < syncRepeatWindow {
		t.Fatalf("OpenMailbox + Sync listed %d times, want 1", got)
	}
	if !ch.Empty() {
		t.Fatalf("Sync right after open reported %+v", ch)
	}
	mbtestMustDeliver(t, root, "two\n")
	// Wait for the clock, not for another goroutine: past the window
	// the recorded stamps count for nothing unless settled.
	if wait := time.Until(opened.Add(syncRepeatWindow + 5*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	if ch := mbtestSync(t, m); len(ch.New) != 1 {
		t.Fatalf("delivery after open: Sync reported %+v, want one new message", ch)
	}
}

// TestResyncAfterLostRaceLists: an operation that lost a rename race lists
// again even within syncRepeatWindow.
func TestResyncAfterLostRaceLists(t *testing.T) {
	root := mbtestMaildir(t, "Maildir")
	mbtestMustDeliver(t, root, "one\n")
	m := mbtestOpen(t, root)
	before := syncScans.Load()
	m.mu.Lock()
	err := m.resyncLocked()
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if syncScans.Load() == before {
		t.Fatal("resyncLocked did not list")
	}
}
