package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// reviewQ returns the Q<n> counter of a unique base.
func reviewQ(t *testing.T, base string) uint64 {
	t.Helper()
	_, rest, ok := strings.Cut(base, "Q")
	if !ok {
		t.Fatalf("no Q field in %q", base)
	}
	digits, _, _ := strings.Cut(rest, ".")
	q, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		t.Fatalf("bad Q field in %q: %v", base, err)
	}
	return q
}

// TestUniqueNamesShareOneCounter: the bases made for deliveries and those
// made for moved or de-duplicated messages come from one Q sequence, so
// two names made in the same microsecond by one process never coincide.
func TestUniqueNamesShareOneCounter(t *testing.T) {
	q1 := reviewQ(t, mailboxUniqueBase("1.M1P1Q1.h,S=3,W=4"))
	q2 := reviewQ(t, UniqueBase(time.Now(), "h"))
	q3 := reviewQ(t, mailboxUniqueBase("1.M1P1Q1.h"))
	if !(q1 < q2 && q2 < q3) {
		t.Errorf("Q values %d, %d, %d are not one increasing sequence", q1, q2, q3)
	}
	if got := mailboxUniqueBase("1.M1P1Q1.h,S=3,W=4"); !strings.HasSuffix(got, ",S=3,W=4") {
		t.Errorf("mailboxUniqueBase lost the size fields: %q", got)
	}
}

// TestExpungeMany: expunging a batch removes exactly those messages from
// the view, keeps lookups right for the survivor, and does not report the
// mailbox's own expunges on the next Sync. BenchmarkExpunge measures that
// the batch stays linear (it was quadratic: a map rebuild per message).
func TestExpungeMany(t *testing.T) {
	const n = 2000
	m, uids := expungeFixture(t, n)
	keep := uids[n/2]
	expunge := append(append([]uint32(nil), uids[:n/2]...), uids[n/2+1:]...)
	if err := m.Expunge(expunge...); err != nil {
		t.Fatal(err)
	}
	if got := mbtestUIDs(m.Messages()); len(got) != 1 || got[0] != keep {
		t.Errorf("after expunge: %v, want [%d]", got, keep)
	}
	if msg, ok := m.Lookup(keep); !ok || msg.UID != keep {
		t.Errorf("Lookup(%d) = %v, %v", keep, msg, ok)
	}
	if ch := mbtestSync(t, m); !ch.Empty() {
		t.Errorf("own expunges reported by Sync: %+v", ch)
	}
}

// BenchmarkExpunge expunges 20,000 messages in one call per iteration.
func BenchmarkExpunge(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		m, uids := expungeFixture(b, 20000)
		b.StartTimer()
		if err := m.Expunge(uids...); err != nil {
			b.Fatal(err)
		}
	}
}

// expungeFixture makes a Maildir of n tiny messages in cur/ and opens it.
func expungeFixture(tb testing.TB, n int) (*Mailbox, []uint32) {
	tb.Helper()
	root := mbtestMaildir(tb)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%d.M%dP1Q%d.h,S=1:2,S", 1700000000+i, i, i)
		if err := os.WriteFile(filepath.Join(root, "cur", name), []byte("x"), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	m := mbtestOpen(tb, root)
	return m, mbtestUIDs(m.Messages())
}

// TestSetFlagsSyncsDestinationFirst: moving new/ → cur/ must make the new
// name durable before the removal from new/; the other order can lose the
// message to a crash between the two fsyncs.
func TestSetFlagsSyncsDestinationFirst(t *testing.T) {
	root := mbtestMaildir(t)
	mbtestMustDeliver(t, root, "hello\n")
	m := mbtestOpen(t, root)
	var order []string
	old := syncDir
	syncDir = func(dir string) error {
		order = append(order, filepath.Base(dir))
		return old(dir)
	}
	defer func() { syncDir = old }()
	uid := m.Messages()[0].UID
	if err := m.SetFlags(uid, FlagSeen, 0); err != nil {
		t.Fatal(err)
	}
	if want := []string{"cur", "new"}; strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("fsync order %v, want %v", order, want)
	}
}

// TestSetFlagsMany: a batch renames every file, skips expunged UIDs, and
// flushes cur/ then new/ once for the whole batch, whatever its size.
func TestSetFlagsMany(t *testing.T) {
	root := mbtestMaildir(t)
	for range 5 {
		mbtestMustDeliver(t, root, "hello\n")
	}
	m := mbtestOpen(t, root)
	msgs := m.Messages()
	if err := m.SetFlags(msgs[4].UID, FlagSeen, 0); err != nil { // already in cur/
		t.Fatal(err)
	}
	var order []string
	old := syncDir
	syncDir = func(dir string) error {
		order = append(order, filepath.Base(dir))
		return old(dir)
	}
	defer func() { syncDir = old }()
	changes := []FlagChange{
		{UID: msgs[0].UID, Flags: FlagSeen},
		{UID: msgs[1].UID, Flags: FlagFlagged | FlagSeen, Keywords: 1},
		{UID: 999999}, // no such message: skipped
		{UID: msgs[2].UID, Flags: FlagTrashed},
		{UID: msgs[4].UID, Flags: FlagSeen | FlagReplied},
	}
	if err := m.SetFlagsMany(changes); err != nil {
		t.Fatal(err)
	}
	if want := "cur,new"; strings.Join(order, ",") != want {
		t.Errorf("fsyncs %v, want %s once each", order, want)
	}
	m2 := mbtestOpen(t, root)
	for _, c := range changes {
		got, ok := m2.Lookup(c.UID)
		if c.UID == 999999 {
			if ok {
				t.Error("a message appeared for the unknown UID")
			}
			continue
		}
		if !ok || got.Dir != "cur" || got.Name.Flags != c.Flags || got.Name.Keywords != c.Keywords {
			t.Errorf("uid %d: %+v, want cur/ with flags %v keywords %v", c.UID, got, c.Flags, c.Keywords)
		}
	}
	if got, _ := m2.Lookup(msgs[3].UID); got.Dir != "new" {
		t.Errorf("untouched message moved to %s", got.Dir)
	}
	// Within cur/ only: one flush of cur/.
	order = nil
	if err := m.SetFlagsMany([]FlagChange{{UID: msgs[0].UID, Flags: FlagSeen | FlagDraft}}); err != nil {
		t.Fatal(err)
	}
	if want := "cur"; strings.Join(order, ",") != want {
		t.Errorf("fsyncs %v, want %s", order, want)
	}
}
