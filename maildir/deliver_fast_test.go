package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestDeliverPrepareFast: the openat2 check takes only Maildirs that
// exist and resolve beneath the confinement; everything else is left to
// the slow path (which TestDeliverConfine shows refusing or accepting).
func TestDeliverPrepareFast(t *testing.T) {
	base := t.TempDir()
	confine := filepath.Join(base, "mail")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{confine, outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate := func(p string) {
		t.Helper()
		if err := Create(p); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(filepath.Join(confine, "dom", "user"))
	mustCreate(filepath.Join(confine, "dom", "user", ".Sent"))
	mustCreate(filepath.Join(outside, "md"))
	os.Symlink(filepath.Join(outside, "md"), filepath.Join(confine, "outlink"))
	os.Symlink("user", filepath.Join(confine, "dom", "rellink"))                         // relative, stays inside
	os.Symlink(filepath.Join(confine, "dom", "user"), filepath.Join(confine, "abslink")) // absolute: slow path decides
	os.Symlink("../../outside/md", filepath.Join(confine, "dom", "dotdot"))
	mustCreate(filepath.Join(confine, "dom", "half"))
	os.Remove(filepath.Join(confine, "dom", "half", "cur"))

	tests := []struct {
		name   string
		t      Target
		fast   bool
		wantIn string // the directory returned when fast
	}{
		{"INBOX", Target{Root: filepath.Join(confine, "dom", "user")}, true, filepath.Join(confine, "dom", "user")},
		{"folder", Target{Root: filepath.Join(confine, "dom", "user"), Folder: "Sent"}, true, filepath.Join(confine, "dom", "user", ".Sent")},
		{"missing folder", Target{Root: filepath.Join(confine, "dom", "user"), Folder: "Nope"}, false, ""},
		{"missing Maildir", Target{Root: filepath.Join(confine, "dom", "new")}, false, ""},
		{"missing cur", Target{Root: filepath.Join(confine, "dom", "half")}, false, ""},
		{"symlink out", Target{Root: filepath.Join(confine, "outlink")}, false, ""},
		{"relative symlink in", Target{Root: filepath.Join(confine, "dom", "rellink")}, true, filepath.Join(confine, "dom", "rellink")},
		{"absolute symlink in", Target{Root: filepath.Join(confine, "abslink")}, false, ""},
		{"dot-dot symlink out", Target{Root: filepath.Join(confine, "dom", "dotdot")}, false, ""},
		{"outside lexically", Target{Root: filepath.Join(outside, "md")}, false, ""},
		{"bad folder name", Target{Root: filepath.Join(confine, "dom", "user"), Folder: "a/../b"}, false, ""},
	}
	for _, tc := range tests {
		dir, ok := deliverPrepareFast(tc.t, confine)
		if ok != tc.fast || (ok && dir != tc.wantIn) {
			t.Errorf("%s: deliverPrepareFast = %q, %v; want %q, %v", tc.name, dir, ok, tc.wantIn, tc.fast)
		}
	}
	if _, ok := deliverPrepareFast(tests[0].t, ""); ok {
		t.Error("fast path taken without a confinement")
	}
}

// TestDirSyncersShare: concurrent syncs of one directory succeed, and the
// registry forgets a directory once nobody syncs it; a missing directory
// is an error for its callers.
func TestDirSyncersShare(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = newDirSyncers.sync(dir)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("sync %d: %v", i, err)
		}
	}
	if err := newDirSyncers.sync(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sync of a missing directory: %v, want ErrNotExist", err)
	}
	newDirSyncers.mu.Lock()
	n := len(newDirSyncers.m)
	newDirSyncers.mu.Unlock()
	if n != 0 {
		t.Errorf("%d directories still registered after every sync returned", n)
	}
}
