package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mstestBox is a Maildir with n delivered messages.
func mstestBox(t *testing.T, n int) string {
	t.Helper()
	root := mbtestMaildir(t, "Maildir")
	for i := 0; i < n; i++ {
		mbtestMustDeliver(t, root, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i))
	}
	return root
}

// mstestModSeq is the ModSeq of uid in m's view.
func mstestModSeq(t *testing.T, m *Mailbox, uid uint32) uint64 {
	t.Helper()
	msg, ok := m.Lookup(uid)
	if !ok {
		t.Fatalf("uid %d not in view", uid)
	}
	return msg.ModSeq
}

// mstestCheckInvariant checks HighestModSeq ≥ every ModSeq.
func mstestCheckInvariant(t *testing.T, m *Mailbox) {
	t.Helper()
	h := m.HighestModSeq()
	for _, msg := range m.Messages() {
		if msg.ModSeq == 0 || msg.ModSeq > h {
			t.Errorf("uid %d modseq %d, highest %d", msg.UID, msg.ModSeq, h)
		}
	}
}

// TestModSeqTwoMailboxes: two Mailboxes on one Maildir (as two processes
// would) see each other's flag changes and expunges with the same modseqs.
func TestModSeqTwoMailboxes(t *testing.T) {
	root := mstestBox(t, 4)
	a, b := mbtestOpen(t, root), mbtestOpen(t, root)
	if a.HighestModSeq() != b.HighestModSeq() || a.HighestModSeq() == 0 {
		t.Fatalf("highest %d vs %d", a.HighestModSeq(), b.HighestModSeq())
	}
	for uid := uint32(1); uid <= 4; uid++ {
		if x, y := mstestModSeq(t, a, uid), mstestModSeq(t, b, uid); x != y {
			t.Errorf("uid %d: %d vs %d", uid, x, y)
		}
	}
	h0 := a.HighestModSeq()
	steps := []struct {
		name   string
		do     func(m *Mailbox) error
		want   Changes
		expUID uint32
	}{
		{"flag", func(m *Mailbox) error { return m.SetFlags(1, FlagSeen, 0) }, Changes{FlagsChanged: []uint32{1}}, 0},
		{"many", func(m *Mailbox) error {
			return m.SetFlagsMany([]FlagChange{{UID: 2, Flags: FlagFlagged}, {UID: 3, Flags: FlagSeen, Keywords: 1}})
		}, Changes{FlagsChanged: []uint32{2, 3}}, 0},
		{"flag back", func(m *Mailbox) error { return m.SetFlags(1, 0, 0) }, Changes{FlagsChanged: []uint32{1}}, 0},
		{"expunge", func(m *Mailbox) error { return m.Expunge(4) }, Changes{Expunged: []uint32{4}}, 4},
	}
	for i, st := range steps {
		writer, reader := a, b
		if i%2 == 1 {
			writer, reader = b, a
		}
		before := writer.HighestModSeq()
		if err := st.do(writer); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if writer.HighestModSeq() <= before {
			t.Errorf("%s: highest %d did not grow from %d", st.name, writer.HighestModSeq(), before)
		}
		ch := mbtestSync(t, reader)
		if !slices.Equal(ch.FlagsChanged, st.want.FlagsChanged) || !slices.Equal(ch.Expunged, st.want.Expunged) || len(ch.New) != 0 {
			t.Errorf("%s: reader changes %+v, want %+v", st.name, ch, st.want)
		}
		if writer.HighestModSeq() != reader.HighestModSeq() {
			t.Errorf("%s: highest %d vs %d", st.name, writer.HighestModSeq(), reader.HighestModSeq())
		}
		for _, msg := range writer.Messages() {
			if got := mstestModSeq(t, reader, msg.UID); got != msg.ModSeq {
				t.Errorf("%s: uid %d modseq %d vs %d", st.name, msg.UID, got, msg.ModSeq)
			}
		}
		if ch := mbtestSync(t, writer); !ch.Empty() {
			t.Errorf("%s: writer sees its own change: %+v", st.name, ch)
		}
		mstestCheckInvariant(t, reader)
	}
	for _, m := range []*Mailbox{a, b} {
		uids, complete := m.VanishedSince(h0)
		if !complete || !slices.Equal(uids, []uint32{4}) {
			t.Errorf("VanishedSince(%d) = %v, %v", h0, uids, complete)
		}
		if uids, complete := m.VanishedSince(m.HighestModSeq()); !complete || len(uids) != 0 {
			t.Errorf("VanishedSince(highest) = %v, %v", uids, complete)
		}
	}
}

// TestModSeqMonotonic: HighestModSeq strictly grows at every change, even
// with a clock that stands still or goes back, and never falls across a
// reopen.
func TestModSeqMonotonic(t *testing.T) {
	for _, clock := range []struct {
		name string
		now  func() uint64
	}{
		{"real", modseqNow},
		{"stopped", func() uint64 { return 1000 }},
		{"zero", func() uint64 { return 0 }},
	} {
		t.Run(clock.name, func(t *testing.T) {
			saved := modseqNow
			modseqNow = clock.now
			defer func() { modseqNow = saved }()
			root := mstestBox(t, 3)
			m := mbtestOpen(t, root)
			last := m.HighestModSeq()
			ops := []func() error{
				func() error { return m.SetFlags(1, FlagSeen, 0) },
				func() error { return m.SetFlags(2, FlagSeen|FlagFlagged, 0) },
				func() error { _, err := mbtestDeliver(root, "Subject: x\r\n\r\n"); return err },
				func() error { return m.Expunge(3) },
				func() error { return m.SetFlags(1, 0, 0) },
			}
			for i, op := range ops {
				if err := op(); err != nil {
					t.Fatal(err)
				}
				mbtestSync(t, m)
				h := m.HighestModSeq()
				if h <= last {
					t.Errorf("op %d: highest %d after %d", i, h, last)
				}
				last = h
				mstestCheckInvariant(t, m)
				r := mbtestOpen(t, root)
				if r.HighestModSeq() != h {
					t.Errorf("op %d: reopened highest %d, want %d", i, r.HighestModSeq(), h)
				}
			}
		})
	}
}

// TestModSeqForeignWriter: changes made by a process that does not write
// the log (Dovecot, deliver, a shell) get a modseq at the next Sync, and a
// second Mailbox takes the same modseq instead of bumping again.
func TestModSeqForeignWriter(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, root string, m *Mailbox)
		want   Changes
	}{
		{"rename flags", func(t *testing.T, root string, m *Mailbox) {
			msg, _ := m.Lookup(2)
			if err := os.Rename(msg.Path, filepath.Join(root, "cur", msg.Name.Base+":2,FS")); err != nil {
				t.Fatal(err)
			}
		}, Changes{FlagsChanged: []uint32{2}}},
		{"delete", func(t *testing.T, root string, m *Mailbox) {
			msg, _ := m.Lookup(1)
			if err := os.Remove(msg.Path); err != nil {
				t.Fatal(err)
			}
		}, Changes{Expunged: []uint32{1}}},
		{"deliver", func(t *testing.T, root string, m *Mailbox) {
			mbtestMustDeliver(t, root, "Subject: new\r\n\r\n")
		}, Changes{New: []uint32{4}}},
		{"move to cur, same flags", func(t *testing.T, root string, m *Mailbox) {
			msg, _ := m.Lookup(3)
			if err := os.Rename(msg.Path, filepath.Join(root, "cur", msg.Name.Base+":2,")); err != nil {
				t.Fatal(err)
			}
		}, Changes{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := mstestBox(t, 3)
			m := mbtestOpen(t, root)
			h0 := m.HighestModSeq()
			tc.change(t, root, m)
			ch := mbtestSync(t, m)
			if !slices.Equal(ch.New, tc.want.New) || !slices.Equal(ch.Expunged, tc.want.Expunged) || !slices.Equal(ch.FlagsChanged, tc.want.FlagsChanged) {
				t.Errorf("changes %+v, want %+v", ch, tc.want)
			}
			h1 := m.HighestModSeq()
			if tc.want.Empty() {
				if h1 != h0 {
					t.Errorf("nothing changed but highest %d → %d", h0, h1)
				}
			} else if h1 <= h0 {
				t.Errorf("highest %d → %d", h0, h1)
			}
			for _, uid := range slices.Concat(tc.want.New, tc.want.FlagsChanged) {
				if got := mstestModSeq(t, m, uid); got != h1 {
					t.Errorf("uid %d modseq %d, want %d", uid, got, h1)
				}
			}
			uids, complete := m.VanishedSince(h0)
			if !complete || !slices.Equal(uids, tc.want.Expunged) {
				t.Errorf("VanishedSince = %v, %v; want %v", uids, complete, tc.want.Expunged)
			}
			// A second reader takes the recorded state: no second bump.
			r := mbtestOpen(t, root)
			if r.HighestModSeq() != h1 {
				t.Errorf("second reader highest %d, want %d", r.HighestModSeq(), h1)
			}
			if ch := mbtestSync(t, m); !ch.Empty() || m.HighestModSeq() != h1 {
				t.Errorf("resync: %+v, highest %d", ch, m.HighestModSeq())
			}
		})
	}
}

// TestModSeqMoveTo: a MOVE records the expunge in the source, and the
// destination gives the message a modseq at its next Sync.
func TestModSeqMoveTo(t *testing.T) {
	src := mstestBox(t, 2)
	dstRoot := mbtestMaildir(t, "Other")
	m, other, dst := mbtestOpen(t, src), mbtestOpen(t, src), mbtestOpen(t, dstRoot)
	h0, d0 := m.HighestModSeq(), dst.HighestModSeq()
	base, err := m.MoveTo(1, dst)
	if err != nil {
		t.Fatal(err)
	}
	if m.HighestModSeq() <= h0 {
		t.Errorf("source highest %d, was %d", m.HighestModSeq(), h0)
	}
	if uids, complete := m.VanishedSince(h0); !complete || !slices.Equal(uids, []uint32{1}) {
		t.Errorf("VanishedSince = %v, %v", uids, complete)
	}
	if ch := mbtestSync(t, other); !slices.Equal(ch.Expunged, []uint32{1}) || other.HighestModSeq() != m.HighestModSeq() {
		t.Errorf("other: %+v, highest %d vs %d", ch, other.HighestModSeq(), m.HighestModSeq())
	}
	mbtestSync(t, dst)
	msg, ok := dst.LookupBase(base)
	if !ok || msg.ModSeq <= d0 || msg.ModSeq != dst.HighestModSeq() {
		t.Errorf("destination: %v, modseq %d, highest %d (was %d)", ok, msg.ModSeq, dst.HighestModSeq(), d0)
	}
}

// TestModSeqWriteFailure: when the log cannot be written, the change is
// still made on disk and the operation fails; the next Sync that can write
// records it, once, and other Mailboxes agree.
func TestModSeqWriteFailure(t *testing.T) {
	tests := []struct {
		name string
		op   func(m *Mailbox) error
		want Changes
	}{
		{"flags", func(m *Mailbox) error { return m.SetFlags(1, FlagSeen, 0) }, Changes{FlagsChanged: []uint32{1}}},
		{"many", func(m *Mailbox) error {
			return m.SetFlagsMany([]FlagChange{{UID: 1, Flags: FlagFlagged}, {UID: 2, Flags: FlagSeen}})
		}, Changes{FlagsChanged: []uint32{1, 2}}},
		{"expunge", func(m *Mailbox) error { return m.Expunge(2) }, Changes{Expunged: []uint32{2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := mstestBox(t, 3)
			m, other := mbtestOpen(t, root), mbtestOpen(t, root)
			h0 := m.HighestModSeq()
			p := filepath.Join(root, ModSeqName)
			if err := os.Rename(p, p+".away"); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(p, 0o700); err != nil { // open(2) fails: EISDIR
				t.Fatal(err)
			}
			if err := tc.op(m); err == nil {
				t.Fatal("no error with an unwritable log")
			}
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(p+".away", p); err != nil {
				t.Fatal(err)
			}
			mbtestSync(t, m)
			h1 := m.HighestModSeq()
			if h1 <= h0 {
				t.Fatalf("change not recorded: highest %d, was %d", h1, h0)
			}
			for _, uid := range tc.want.FlagsChanged {
				if got := mstestModSeq(t, m, uid); got != h1 {
					t.Errorf("uid %d modseq %d, want %d", uid, got, h1)
				}
			}
			if uids, complete := m.VanishedSince(h0); !complete || !slices.Equal(uids, tc.want.Expunged) {
				t.Errorf("VanishedSince = %v, %v; want %v", uids, complete, tc.want.Expunged)
			}
			ch := mbtestSync(t, other)
			if !slices.Equal(ch.FlagsChanged, tc.want.FlagsChanged) || !slices.Equal(ch.Expunged, tc.want.Expunged) || other.HighestModSeq() != h1 {
				t.Errorf("other: %+v, highest %d want %d", ch, other.HighestModSeq(), h1)
			}
			if ch := mbtestSync(t, m); m.HighestModSeq() != h1 || len(ch.New)+len(ch.Expunged) != 0 {
				t.Errorf("second sync: %+v, highest %d want %d", ch, m.HighestModSeq(), h1)
			}
		})
	}
}

// TestModSeqFlagsBack: a message changed and changed back by another
// Mailbox between two Syncs is reported, with its new modseq, although its
// flags are what this Mailbox saw before.
func TestModSeqFlagsBack(t *testing.T) {
	root := mstestBox(t, 2)
	a, b := mbtestOpen(t, root), mbtestOpen(t, root)
	for _, f := range []Flags{FlagSeen, 0} {
		if err := b.SetFlags(1, f, 0); err != nil {
			t.Fatal(err)
		}
	}
	ch := mbtestSync(t, a)
	if !slices.Equal(ch.FlagsChanged, []uint32{1}) || len(ch.New)+len(ch.Expunged) != 0 {
		t.Errorf("changes %+v", ch)
	}
	if got := mstestModSeq(t, a, 1); got != b.HighestModSeq() || got != a.HighestModSeq() {
		t.Errorf("modseq %d, highest %d / %d", got, a.HighestModSeq(), b.HighestModSeq())
	}
}

// TestModSeqForeignWhileClosed: a message deleted while no Mailbox was
// open is recorded as expunged at the next open.
func TestModSeqForeignWhileClosed(t *testing.T) {
	root := mstestBox(t, 3)
	m := mbtestOpen(t, root)
	h0 := m.HighestModSeq()
	msg, _ := m.Lookup(2)
	if err := os.Remove(msg.Path); err != nil {
		t.Fatal(err)
	}
	r := mbtestOpen(t, root)
	if r.HighestModSeq() <= h0 {
		t.Errorf("highest %d, was %d", r.HighestModSeq(), h0)
	}
	if uids, complete := r.VanishedSince(h0); !complete || !slices.Equal(uids, []uint32{2}) {
		t.Errorf("VanishedSince = %v, %v", uids, complete)
	}
}

// TestModSeqStaleListing: a Sync whose listing predates another process's
// rename, which that process already recorded, takes the recorded flags
// rather than recording the stale ones over them.
func TestModSeqStaleListing(t *testing.T) {
	root := mstestBox(t, 2)
	a, b := mbtestOpen(t, root), mbtestOpen(t, root)
	stale := b.Messages() // b's listing, before a's change
	if err := a.SetFlags(1, FlagSeen, 0); err != nil {
		t.Fatal(err)
	}
	h := a.HighestModSeq()
	b.mu.Lock()
	msgs := append([]Message(nil), stale...)
	err := b.modseqSyncLocked(msgs)
	b.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].ModSeq != h || msgs[0].Name.Flags != FlagSeen || b.HighestModSeq() != h {
		t.Errorf("stale listing: modseq %d flags %v highest %d; want %d S", msgs[0].ModSeq, msgs[0].Name.Flags, b.HighestModSeq(), h)
	}
}

// TestClaimRecent: \Recent is claimed once, across Mailboxes and reopens.
func TestClaimRecent(t *testing.T) {
	root := mstestBox(t, 2)
	a, b := mbtestOpen(t, root), mbtestOpen(t, root)
	claim := func(m *Mailbox, want uint32) {
		t.Helper()
		mbtestSync(t, m)
		got, err := m.ClaimRecent()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("ClaimRecent = %d, want %d", got, want)
		}
	}
	claim(a, 1) // both messages are recent for a
	claim(b, 3) // none for b
	mbtestMustDeliver(t, root, "Subject: 3\r\n\r\n")
	claim(b, 3) // uid 3 for b
	claim(a, 4)
	claim(mbtestOpen(t, root), 4)
	h := a.HighestModSeq()
	if mbtestSync(t, b); b.HighestModSeq() != h {
		t.Errorf("a claim moved HIGHESTMODSEQ: %d vs %d", b.HighestModSeq(), h)
	}
}

// TestClaimRecentFreshFile: a Maildir opened for the first time counts
// what is in new/ as recent, not what is already in cur/.
func TestClaimRecentFreshFile(t *testing.T) {
	root := mstestBox(t, 3)
	m := mbtestOpen(t, root)
	if err := m.SetFlags(1, FlagSeen, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, ModSeqName)); err != nil {
		t.Fatal(err)
	}
	got, err := mbtestOpen(t, root).ClaimRecent()
	if err != nil || got != 2 {
		t.Errorf("ClaimRecent = %d, %v; want 2", got, err)
	}
}

// mstestPatch rewrites the modseq file with fn.
func mstestPatch(t *testing.T, root string, fn func([]byte) []byte) {
	t.Helper()
	p := filepath.Join(root, ModSeqName)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, fn(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestModSeqDamage: a torn tail is cut and the change it held is found
// again; a damaged record, a foreign UIDVALIDITY, a bad header or a missing
// file start over above every modseq handed out, with VanishedSince
// incomplete below.
func TestModSeqDamage(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, root string)
		restart bool
	}{
		{"torn tail", func(t *testing.T, root string) {
			mstestPatch(t, root, func(b []byte) []byte { return b[:len(b)-modseqRecordSize/2] })
		}, false},
		{"trailing junk", func(t *testing.T, root string) {
			mstestPatch(t, root, func(b []byte) []byte { return append(b, 'C', 0, 0) })
		}, false},
		{"flipped bit", func(t *testing.T, root string) {
			mstestPatch(t, root, func(b []byte) []byte { b[modseqHeaderSize+modseqRecordSize+9] ^= 4; return b })
		}, true},
		{"foreign uidvalidity", func(t *testing.T, root string) {
			mstestPatch(t, root, func(b []byte) []byte {
				h, ok := parseModseqHeader(b)
				if !ok {
					t.Fatal("bad header")
				}
				h.uidValidity++
				return append(appendModseqHeader(nil, h), b[modseqHeaderSize:]...)
			})
		}, true},
		{"bad header", func(t *testing.T, root string) {
			mstestPatch(t, root, func(b []byte) []byte { b[0] = 'X'; return b })
		}, true},
		{"missing", func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, ModSeqName)); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := mstestBox(t, 3)
			m := mbtestOpen(t, root)
			if err := m.Expunge(3); err != nil {
				t.Fatal(err)
			}
			hx := m.HighestModSeq()
			if err := m.SetFlags(1, FlagSeen, 0); err != nil {
				t.Fatal(err)
			}
			h := m.HighestModSeq()
			tc.damage(t, root)
			r := mbtestOpen(t, root)
			if r.HighestModSeq() < h {
				t.Fatalf("highest went back: %d < %d", r.HighestModSeq(), h)
			}
			if msg, _ := r.Lookup(1); msg.Name.Flags != FlagSeen {
				t.Errorf("uid 1 flags %v", msg.Name.Flags)
			}
			uids, complete := r.VanishedSince(hx - 1)
			if tc.restart {
				if complete || r.HighestModSeq() <= h {
					t.Errorf("restart: complete %v, highest %d (was %d)", complete, r.HighestModSeq(), h)
				}
				for _, msg := range r.Messages() {
					if msg.ModSeq != r.HighestModSeq() {
						t.Errorf("uid %d modseq %d after restart, want base %d", msg.UID, msg.ModSeq, r.HighestModSeq())
					}
				}
			} else {
				if !complete || !slices.Equal(uids, []uint32{3}) {
					t.Errorf("VanishedSince = %v, %v", uids, complete)
				}
				// The torn record's change is on disk: found again, with a
				// modseq above the one lost.
				if got := mstestModSeq(t, r, 1); got < h || got != r.HighestModSeq() {
					t.Errorf("uid 1 modseq %d, want ≥ %d", got, h)
				}
			}
			// The repaired file is whole: a third reader agrees.
			if x := mbtestOpen(t, root); x.HighestModSeq() != r.HighestModSeq() {
				t.Errorf("third reader %d vs %d", x.HighestModSeq(), r.HighestModSeq())
			}
			// The Mailbox that was open meanwhile follows the new file,
			// also when its next step is a change of its own.
			if err := m.SetFlags(2, FlagFlagged, 0); err != nil {
				t.Fatal(err)
			}
			if m.HighestModSeq() <= r.HighestModSeq() || mstestModSeq(t, m, 2) != m.HighestModSeq() {
				t.Errorf("old Mailbox: highest %d, uid 2 %d, repaired %d", m.HighestModSeq(), mstestModSeq(t, m, 2), r.HighestModSeq())
			}
			ch := mbtestSync(t, r)
			if !slices.Equal(ch.FlagsChanged, []uint32{2}) || r.HighestModSeq() != m.HighestModSeq() || mstestModSeq(t, r, 2) != m.HighestModSeq() {
				t.Errorf("repaired reader: %+v, highest %d vs %d", ch, r.HighestModSeq(), m.HighestModSeq())
			}
			// uid 1's modseq moved under the old Mailbox (the file was
			// started over, or its record was lost and made again), which
			// its next Sync reports.
			ch = mbtestSync(t, m)
			if len(ch.New)+len(ch.Expunged) != 0 || len(ch.FlagsChanged) > 1 || len(ch.FlagsChanged) == 1 && ch.FlagsChanged[0] != 1 || m.HighestModSeq() != r.HighestModSeq() {
				t.Errorf("old Mailbox resync: %+v, highest %d vs %d", ch, m.HighestModSeq(), r.HighestModSeq())
			}
			for _, msg := range r.Messages() {
				if got := mstestModSeq(t, m, msg.UID); got != msg.ModSeq {
					t.Errorf("uid %d: old Mailbox modseq %d, repaired %d", msg.UID, got, msg.ModSeq)
				}
			}
		})
	}
}

// TestModSeqCompaction: a log far longer than the mailbox is rewritten;
// modseqs and HIGHESTMODSEQ stay, recent expunges stay exact, older ones
// report complete=false, and an open reader follows the new file.
func TestModSeqCompaction(t *testing.T) {
	savedMin, savedKeep := modseqCompactMin, modseqKeepExpunges
	modseqCompactMin, modseqKeepExpunges = 4, 2
	defer func() { modseqCompactMin, modseqKeepExpunges = savedMin, savedKeep }()
	root := mstestBox(t, 6)
	m, other := mbtestOpen(t, root), mbtestOpen(t, root)
	h0 := m.HighestModSeq()
	if err := m.Expunge(1); err != nil {
		t.Fatal(err)
	}
	h1 := m.HighestModSeq()
	if err := m.Expunge(2); err != nil {
		t.Fatal(err)
	}
	h2 := m.HighestModSeq()
	if err := m.Expunge(3); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := m.SetFlags(4, Flags(i%2)*FlagSeen, 0); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(filepath.Join(root, ModSeqName))
	if err != nil {
		t.Fatal(err)
	}
	mbtestSync(t, m) // compacts
	fi2, err := os.Stat(filepath.Join(root, ModSeqName))
	if err != nil {
		t.Fatal(err)
	}
	if fi2.Size() >= fi.Size() {
		t.Fatalf("not compacted: %d → %d bytes", fi.Size(), fi2.Size())
	}
	h := m.HighestModSeq()
	for _, r := range []*Mailbox{other, mbtestOpen(t, root)} {
		mbtestSync(t, r)
		if r.HighestModSeq() != h {
			t.Errorf("highest %d, want %d", r.HighestModSeq(), h)
		}
		for _, msg := range m.Messages() {
			if got := mstestModSeq(t, r, msg.UID); got != msg.ModSeq {
				t.Errorf("uid %d modseq %d, want %d", msg.UID, got, msg.ModSeq)
			}
		}
		for _, c := range []struct {
			since    uint64
			uids     []uint32
			complete bool
		}{
			{h0, nil, false},
			{h1, []uint32{2, 3}, true},
			{h2, []uint32{3}, true},
			{h, nil, true},
		} {
			uids, complete := r.VanishedSince(c.since)
			if complete != c.complete || c.complete && !slices.Equal(uids, c.uids) {
				t.Errorf("VanishedSince(%d) = %v, %v; want %v, %v", c.since, uids, complete, c.uids, c.complete)
			}
		}
	}
}

// TestModSeqQuickSync: the MODSEQ side of a Sync that found the
// directories unchanged: nothing to do when the log is unchanged, no
// listing for another Mailbox's \Recent claim, and a listing when the log
// holds a change the view does not show.
func TestModSeqQuickSync(t *testing.T) {
	root := mstestBox(t, 3)
	a, b := mbtestOpen(t, root), mbtestOpen(t, root)
	quick := func() bool {
		t.Helper()
		a.mu.Lock()
		defer a.mu.Unlock()
		full, err := a.modseqQuickLocked()
		if err != nil {
			t.Fatal(err)
		}
		return full
	}
	if changed, err := a.ms.file.changedSince(); err != nil || changed {
		t.Fatalf("changedSince = %v, %v on an unchanged log", changed, err)
	}
	if quick() {
		t.Error("unchanged log wants a listing")
	}
	if _, err := b.ClaimRecent(); err != nil {
		t.Fatal(err)
	}
	if quick() {
		t.Error("a \\Recent claim wants a listing")
	}
	if got, err := a.ClaimRecent(); err != nil || got != 4 {
		t.Errorf("ClaimRecent = %d, %v; want 4", got, err)
	}
	if err := b.SetFlags(2, FlagFlagged, 0); err != nil {
		t.Fatal(err)
	}
	if !quick() {
		t.Error("a flag change in the log does not want a listing")
	}
	a.mu.Lock()
	a.quick.valid = false // as the stamps of cur/ would say
	a.mu.Unlock()
	ch := mbtestSync(t, a)
	if !slices.Equal(ch.FlagsChanged, []uint32{2}) || mstestModSeq(t, a, 2) != b.HighestModSeq() {
		t.Errorf("changes %+v, modseq %d want %d", ch, mstestModSeq(t, a, 2), b.HighestModSeq())
	}
}

// FuzzModseqRecord: the record and header parsers accept exactly what the
// encoders write, and the log scanner never reads past damage.
func FuzzModseqRecord(f *testing.F) {
	f.Add(appendModseqRecord(nil, modseqRecord{kind: modseqChanged, flags: FlagSeen, uid: 7, modseq: 1 << 50, kw: 5}))
	f.Add(appendModseqRecord(nil, modseqRecord{kind: modseqExpunged, uid: 1, modseq: 2}))
	f.Add(appendModseqRecord(nil, modseqRecord{kind: modseqRecent, uid: 9}))
	f.Add(appendModseqHeader(nil, modseqHeader{uidValidity: 3, base: 10, floor: 0, high: 12}))
	f.Add([]byte(strings.Repeat("\x00", 30)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, ok := parseModseqRecord(b); ok {
			if enc := appendModseqRecord(nil, r); string(enc) != string(b[:modseqRecordSize]) {
				t.Fatalf("record %x re-encodes as %x", b[:modseqRecordSize], enc)
			}
		}
		if h, ok := parseModseqHeader(b); ok {
			if enc := appendModseqHeader(nil, h); string(enc) != string(b[:modseqHeaderSize]) {
				t.Fatalf("header %x re-encodes as %x", b[:modseqHeaderSize], enc)
			}
		}
		n := 0
		valid, damaged := modseqScan(b, func(modseqRecord) { n++ })
		if valid != n*modseqRecordSize || valid > len(b) || !damaged && len(b)-valid >= modseqRecordSize {
			t.Fatalf("scan: valid %d, %d records, damaged %v, len %d", valid, n, damaged, len(b))
		}
	})
}

// FuzzModseqFile: whatever mailroom-modseq holds, opening the Maildir
// succeeds with every ModSeq set and at most HIGHESTMODSEQ, repairs the
// file, and a second open agrees with the first.
func FuzzModseqFile(f *testing.F) {
	valid := appendModseqHeader(nil, modseqHeader{uidValidity: 1, base: 100, high: 100})
	for uid := uint32(1); uid <= 3; uid++ {
		valid = appendModseqRecord(valid, modseqRecord{kind: modseqChanged, uid: uid, modseq: 100})
	}
	valid = appendModseqRecord(valid, modseqRecord{kind: modseqExpunged, uid: 2, modseq: 101})
	valid = appendModseqRecord(valid, modseqRecord{kind: modseqRecent, uid: 3})
	f.Add(valid, uint32(1))
	f.Add(valid[:len(valid)-5], uint32(1))
	f.Add(valid, uint32(7))
	f.Add([]byte{}, uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, validity uint32) {
		root := mbtestMaildir(t, "Maildir")
		u := &Uidlist{Version: 3, UIDValidity: max(validity, 1), NextUID: 4}
		for i, flags := range []string{"", "S", "FS"} {
			base := fmt.Sprintf("1732300000.M%dP1.fuzz,S=0", i)
			u.Records = append(u.Records, UidlistRecord{UID: uint32(i + 1), Name: base})
			if err := os.WriteFile(filepath.Join(root, "cur", base+":2,"+flags), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(root, UidlistName), u.Marshal(), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, ModSeqName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		m := mbtestOpen(t, root)
		if m.Len() != 3 {
			t.Fatalf("%d messages", m.Len())
		}
		mstestCheckInvariant(t, m)
		r := mbtestOpen(t, root)
		if r.HighestModSeq() != m.HighestModSeq() {
			t.Errorf("second open: highest %d vs %d", r.HighestModSeq(), m.HighestModSeq())
		}
		for _, msg := range m.Messages() {
			if got := mstestModSeq(t, r, msg.UID); got != msg.ModSeq {
				t.Errorf("uid %d: %d vs %d", msg.UID, got, msg.ModSeq)
			}
		}
		// A file that is not a valid one for this UIDVALIDITY was started
		// over: no history below its new base.
		if h, ok := parseModseqHeader(data); !ok || h.uidValidity != u.UIDValidity {
			if _, complete := m.VanishedSince(m.HighestModSeq() - 1); complete {
				t.Errorf("complete history from a started-over file")
			}
		}
	})
}
