package maildir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// cmtestAdd is a change callback that adds f.
func cmtestAdd(f Flags) func(Flags, Keywords) (Flags, Keywords) {
	return func(old Flags, k Keywords) (Flags, Keywords) { return old | f, k }
}

// cmtestFlags is uid's flags in a freshly opened Mailbox: what is on disk.
func cmtestFlags(t *testing.T, root string, uid uint32) Flags {
	t.Helper()
	msg, ok := mbtestOpen(t, root).Lookup(uid)
	if !ok {
		t.Fatalf("uid %d gone", uid)
	}
	return msg.Name.Flags
}

// TestSetFlagsManyIf: the UNCHANGEDSINCE test of a conditional batch is
// made against the log, not the caller's last sync: a change another
// Mailbox made since (a, b race as two imapd processes would) fails the
// test and is not overwritten.
func TestSetFlagsManyIf(t *testing.T) {
	tests := []struct {
		name string
		// between runs after a's last sync, before its conditional store.
		between      func(t *testing.T, root string, b *Mailbox)
		since        func(a *Mailbox) uint64 // UNCHANGEDSINCE
		wantChanged  []uint32
		wantModified []uint32
		wantFlags    map[uint32]Flags // on disk afterwards
	}{
		{"nothing in between", nil, func(a *Mailbox) uint64 { return a.HighestModSeq() },
			[]uint32{1, 2, 3}, nil, map[uint32]Flags{1: FlagSeen, 2: FlagSeen, 3: FlagSeen}},
		{"unchangedsince 0", nil, func(*Mailbox) uint64 { return 0 },
			nil, []uint32{1, 2, 3}, map[uint32]Flags{1: 0, 2: 0, 3: 0}},
		{"other mailbox stored", func(t *testing.T, root string, b *Mailbox) {
			if err := b.SetFlags(2, FlagFlagged, 0); err != nil {
				t.Fatal(err)
			}
		}, func(a *Mailbox) uint64 { return a.HighestModSeq() },
			[]uint32{1, 3}, []uint32{2}, map[uint32]Flags{1: FlagSeen, 2: FlagFlagged, 3: FlagSeen}},
		{"other mailbox expunged", func(t *testing.T, root string, b *Mailbox) {
			if err := b.Expunge(3); err != nil {
				t.Fatal(err)
			}
		}, func(a *Mailbox) uint64 { return a.HighestModSeq() },
			[]uint32{1, 2}, nil, map[uint32]Flags{1: FlagSeen, 2: FlagSeen}},
		{"foreign rename (no log)", func(t *testing.T, root string, b *Mailbox) {
			msg, _ := b.Lookup(1)
			if err := os.Rename(msg.Path, filepath.Join(root, "cur", msg.Name.Base+":2,D")); err != nil {
				t.Fatal(err)
			}
		}, func(a *Mailbox) uint64 { return a.HighestModSeq() },
			[]uint32{2, 3}, []uint32{1}, map[uint32]Flags{1: FlagDraft, 2: FlagSeen, 3: FlagSeen}},
		{"other stored, large unchangedsince", func(t *testing.T, root string, b *Mailbox) {
			if err := b.SetFlags(2, FlagFlagged, 0); err != nil {
				t.Fatal(err)
			}
		}, func(a *Mailbox) uint64 { return a.HighestModSeq() + 1<<40 },
			// The change is computed from the flags b stored, not a's stale view.
			[]uint32{1, 2, 3}, nil, map[uint32]Flags{1: FlagSeen, 2: FlagFlagged | FlagSeen, 3: FlagSeen}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := mstestBox(t, 3)
			a, b := mbtestOpen(t, root), mbtestOpen(t, root)
			since := tc.since(a)
			if tc.between != nil {
				tc.between(t, root, b)
			}
			changed, modified, err := a.SetFlagsManyIf([]uint32{1, 2, 3}, since, cmtestAdd(FlagSeen))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(changed, tc.wantChanged) || !slices.Equal(modified, tc.wantModified) {
				t.Errorf("changed %v modified %v, want %v %v", changed, modified, tc.wantChanged, tc.wantModified)
			}
			for uid, want := range tc.wantFlags {
				if got := cmtestFlags(t, root, uid); got != want {
					t.Errorf("uid %d flags %v on disk, want %v", uid, got, want)
				}
			}
			// The changes are in the log: b sees them with a's modseqs.
			mbtestSync(t, b)
			for _, uid := range changed {
				if x, y := mstestModSeq(t, a, uid), mstestModSeq(t, b, uid); x != y || x <= since && since < 1<<40 {
					t.Errorf("uid %d modseq %d (a) vs %d (b), since %d", uid, x, y, since)
				}
			}
			mstestCheckInvariant(t, a)
			mstestCheckInvariant(t, b)
		})
	}
}

// TestSetFlagsManyIfRace: a process that does not write the log (Dovecot,
// a mail client) renames the file between the check and the rename, inside
// the critical section (the test hook runs there). The rename fails, the
// resync records the foreign change at a new modseq, and the message is
// reported modified instead of having its flags overwritten.
func TestSetFlagsManyIfRace(t *testing.T) {
	root := mstestBox(t, 2)
	a := mbtestOpen(t, root)
	since := a.HighestModSeq()
	msg, _ := a.Lookup(1)
	calls := 0
	setFlagsIfHook = func(uids []uint32) {
		calls++
		if calls != 1 {
			return
		}
		if !slices.Equal(uids, []uint32{1, 2}) {
			t.Errorf("hook uids %v", uids)
		}
		if err := os.Rename(msg.Path, filepath.Join(root, "cur", msg.Name.Base+":2,F")); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { setFlagsIfHook = nil })
	changed, modified, err := a.SetFlagsManyIf([]uint32{1, 2}, since, cmtestAdd(FlagSeen))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []uint32{2}) || !slices.Equal(modified, []uint32{1}) {
		t.Errorf("changed %v modified %v, want [2] [1]", changed, modified)
	}
	if got := cmtestFlags(t, root, 1); got != FlagFlagged {
		t.Errorf("uid 1 flags %v, want the foreign F only", got)
	}
	if ms := mstestModSeq(t, a, 1); ms <= since {
		t.Errorf("uid 1 modseq %d not above %d", ms, since)
	}
	if calls != 2 {
		t.Errorf("hook ran %d times, want 2 (one round, then the retry)", calls)
	}
}

// TestUnclaimedRecent: the count of messages nobody has claimed as
// \Recent, read without claiming.
func TestUnclaimedRecent(t *testing.T) {
	root := mstestBox(t, 3)
	a, b := mbtestOpen(t, root), mbtestOpen(t, root)
	count := func(m *Mailbox, wantFirst uint32, want int) {
		t.Helper()
		mbtestSync(t, m)
		first, got, err := m.UnclaimedRecent()
		if err != nil {
			t.Fatal(err)
		}
		if first != wantFirst || got != want {
			t.Errorf("UnclaimedRecent = %d, %d; want %d, %d", first, got, wantFirst, want)
		}
	}
	count(a, 1, 3)
	count(a, 1, 3) // counting claims nothing
	if first, err := b.ClaimRecent(); err != nil || first != 1 {
		t.Fatalf("ClaimRecent = %d, %v", first, err)
	}
	count(a, 4, 0)
	mbtestMustDeliver(t, root, "Subject: 4\r\n\r\n")
	mbtestMustDeliver(t, root, "Subject: 5\r\n\r\n")
	count(a, 4, 2)
	mbtestSync(t, b)
	if first, err := b.ClaimRecent(); err != nil || first != 4 {
		t.Fatalf("ClaimRecent = %d, %v; want 4", first, err)
	}
	count(a, 6, 0)
}

// TestSetFlagsManyIfTwoMailboxes: Mailbox b (as another imapd process)
// stores a flag while a is inside its critical section, between its check
// and its rename: b's rename lands, b then waits for the log's lock to
// record it. a's rename fails, a resyncs, and reports the message
// modified instead of overwriting b's flag.
func TestSetFlagsManyIfTwoMailboxes(t *testing.T) {
	root := mstestBox(t, 2)
	a, b := mbtestOpen(t, root), mbtestOpen(t, root)
	since := a.HighestModSeq()
	renamed := make(chan struct{})
	bDone := make(chan error, 1)
	setFlagsRenamedHook = func(uint32) { close(renamed) }
	calls := 0
	setFlagsIfHook = func([]uint32) {
		calls++
		if calls != 1 {
			return
		}
		go func() { bDone <- b.SetFlags(2, FlagFlagged, 0) }()
		<-renamed // b renamed; it now waits for the lock a holds
	}
	t.Cleanup(func() { setFlagsIfHook, setFlagsRenamedHook = nil, nil })
	changed, modified, err := a.SetFlagsManyIf([]uint32{1, 2}, since, cmtestAdd(FlagSeen))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-bDone; err != nil {
		t.Fatalf("b: %v", err)
	}
	if !slices.Equal(changed, []uint32{1}) || !slices.Equal(modified, []uint32{2}) {
		t.Errorf("changed %v modified %v, want [1] [2]", changed, modified)
	}
	if got := cmtestFlags(t, root, 2); got != FlagFlagged {
		t.Errorf("uid 2 flags %v, want b's F only", got)
	}
	// Both agree on uid 2's modseq, above what a's client had seen.
	mbtestSync(t, a)
	mbtestSync(t, b)
	if x, y := mstestModSeq(t, a, 2), mstestModSeq(t, b, 2); x != y || x <= since {
		t.Errorf("uid 2 modseq %d (a) vs %d (b), since %d", x, y, since)
	}
	mstestCheckInvariant(t, a)
	mstestCheckInvariant(t, b)
}
