package maildir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestListingOpen: from a usable listing cache, listingOpen gives the
// messages OpenMailbox builds by listing (ModSeq aside); a missing,
// damaged or stale cache gives nothing, so the caller lists.
func TestListingOpen(t *testing.T) {
	root := snapCached(t)
	m := mbtestOpen(t, root)
	want := m.Messages()
	got, err := listingOpen(root)
	if err != nil || got == nil {
		t.Fatalf("listingOpen = %v, %v", got, err)
	}
	if got.UIDValidity != m.UIDValidity() || got.UIDNext != m.UIDNext() {
		t.Errorf("UIDVALIDITY %d UIDNEXT %d, want %d %d", got.UIDValidity, got.UIDNext, m.UIDValidity(), m.UIDNext())
	}
	if len(got.Msgs) != len(want) || len(want) != 6 {
		t.Fatalf("%d messages, OpenMailbox has %d", len(got.Msgs), len(want))
	}
	for i, w := range want {
		g := got.Msgs[i]
		w.ModSeq = 0
		if g != w {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	for _, st := range got.Dirs {
		if !st.exists {
			t.Errorf("directory stamps missing: %+v", got.Dirs)
		}
	}

	listing := filepath.Join(root, ListingName)
	data, err := os.ReadFile(listing)
	if err != nil {
		t.Fatal(err)
	}
	// Damaged: cut short.
	if err := os.WriteFile(listing, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := listingOpen(root); got != nil || err != nil {
		t.Errorf("damaged cache: %v, %v", got, err)
	}
	// Missing.
	if err := os.Remove(listing); err != nil {
		t.Fatal(err)
	}
	if got, err := listingOpen(root); got != nil || err != nil {
		t.Errorf("no cache: %v, %v", got, err)
	}
	// Stale: whole again, but new/ changed since.
	if err := os.WriteFile(listing, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := listingOpen(root); got == nil || err != nil {
		t.Fatalf("restored cache unusable: %v, %v", got, err)
	}
	snapWrite(t, root, "new", "1700000099.M99P9.h", "b\n")
	if got, err := listingOpen(root); got != nil || err != nil {
		t.Errorf("stale cache: %v, %v", got, err)
	}
}

// TestListingOpenTiming compares listingOpen with OpenMailbox on the
// Maildir named by MAILROOM_LISTING_MAILDIR (a copy of the bench fixture;
// a Snapshot writes its listing cache). Skipped without it.
func TestListingOpenTiming(t *testing.T) {
	root := os.Getenv("MAILROOM_LISTING_MAILDIR")
	if root == "" {
		t.Skip("MAILROOM_LISTING_MAILDIR not set")
	}
	if err := Snapshot(root, discardVisitor{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		start := time.Now()
		m, err := OpenMailbox(root)
		if err != nil {
			t.Fatal(err)
		}
		open := time.Since(start)
		start = time.Now()
		l, err := listingOpen(root)
		if err != nil || l == nil {
			t.Fatalf("no usable listing: %v", err)
		}
		t.Logf("%d messages: OpenMailbox %v, listingOpen %v (%d)", m.Len(), open, time.Since(start), len(l.Msgs))
	}
}

type discardVisitor struct{}

func (discardVisitor) Begin(SnapshotInfo) error      { return nil }
func (discardVisitor) Message(SnapshotMessage) error { return nil }

// TestOpenMailboxFromListing: OpenMailbox takes its messages from a usable
// listing cache without listing new/ and cur/, and they are exactly those
// a listing gives (ModSeq included); a scan by OpenMailbox leaves a cache
// for the next open; a change since makes OpenMailbox list again.
func TestOpenMailboxFromListing(t *testing.T) {
	root := snapCached(t)
	listing := filepath.Join(root, ListingName)

	// The reference: an open that has to list (no cache), which leaves
	// a cache behind since the directories are settled.
	if err := os.Remove(listing); err != nil {
		t.Fatal(err)
	}
	before := syncScans.Load()
	want := mbtestOpen(t, root).Messages()
	if syncScans.Load() == before {
		t.Fatal("open without a cache did not list")
	}
	if _, err := os.Stat(listing); err != nil {
		t.Fatalf("OpenMailbox left no listing cache: %v", err)
	}

	before = syncScans.Load()
	m := mbtestOpen(t, root)
	if syncScans.Load() != before {
		t.Error("open with a usable cache listed the directories")
	}
	got := m.Messages()
	if len(got) != len(want) || len(want) != 6 {
		t.Fatalf("%d messages from the cache, %d from a listing", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// The quick state is valid: a Sync with nothing changed lists nothing.
	before = syncScans.Load()
	if ch := mbtestSync(t, m); !ch.Empty() {
		t.Errorf("changes right after open: %+v", ch)
	}
	if syncScans.Load() != before {
		t.Error("first Sync after a cached open listed the directories")
	}

	// A delivery since: the cache is stale, OpenMailbox lists and sees it.
	snapWrite(t, root, "new", "1700000099.M9P9.h", "b\n")
	before = syncScans.Load()
	m2 := mbtestOpen(t, root)
	if syncScans.Load() == before {
		t.Error("open after a delivery used the stale cache")
	}
	if m2.Len() != 7 {
		t.Errorf("%d messages after a delivery, want 7", m2.Len())
	}
	// And the first instance finds it at its next Sync.
	if ch := mbtestSync(t, m); len(ch.New) != 1 {
		t.Errorf("Sync after a delivery: %+v", ch)
	}
}
