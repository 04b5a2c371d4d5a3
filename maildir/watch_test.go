package maildir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
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
