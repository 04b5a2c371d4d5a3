package maildir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// mbtestMaildir creates an empty Maildir under t.TempDir().
func mbtestMaildir(t testing.TB, parts ...string) string {
	t.Helper()
	root := filepath.Join(append([]string{t.TempDir()}, parts...)...)
	for _, d := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var mbtestSeq atomic.Int64

// mbtestDeliver writes body into tmp/, fsyncs it and renames it into new/,
// as a delivery agent does. It returns the base name.
func mbtestDeliver(root, body string) (string, error) {
	now := time.Now()
	base := fmt.Sprintf("%d.M%dP%dQ%d.testhost,S=%d", now.Unix(), now.Nanosecond()/1000, os.Getpid(), mbtestSeq.Add(1), len(body))
	tmp := filepath.Join(root, "tmp", base)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return base, os.Rename(tmp, filepath.Join(root, "new", base))
}

func mbtestMustDeliver(t testing.TB, root, body string) string {
	t.Helper()
	base, err := mbtestDeliver(root, body)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

func mbtestOpen(t testing.TB, root string) *Mailbox {
	t.Helper()
	m, err := OpenMailbox(root)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mbtestSync(t testing.TB, m *Mailbox) Changes {
	t.Helper()
	ch, err := m.Sync()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func mbtestUIDs(msgs []Message) []uint32 {
	var u []uint32
	for _, m := range msgs {
		u = append(u, m.UID)
	}
	return u
}

func TestMailboxLifecycle(t *testing.T) {
	root := mbtestMaildir(t)
	var bases []string
	for i := 0; i < 3; i++ {
		bases = append(bases, mbtestMustDeliver(t, root, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
	}
	before := uint32(time.Now().Unix())
	a := mbtestOpen(t, root)
	if got := mbtestUIDs(a.Messages()); !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Fatalf("uids = %v", got)
	}
	for i, msg := range a.Messages() {
		if msg.Name.Base != bases[i] || msg.Dir != "new" || msg.Size <= 0 || msg.VSize != -1 {
			t.Errorf("message %d = %+v, want base %s in new/ with size", i, msg, bases[i])
		}
	}
	if v := a.UIDValidity(); v == 0 || v > before+1 || v+60 < before {
		t.Errorf("uidvalidity %d is not the current time %d", v, before)
	}
	if a.UIDNext() != 4 {
		t.Errorf("uidnext = %d", a.UIDNext())
	}
	data, err := os.ReadFile(filepath.Join(root, UidlistName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], fmt.Sprintf("3 V%d N4 G", a.UIDValidity())) || lines[1] != "1 :"+bases[0] {
		t.Fatalf("uidlist = %q", data)
	}

	b := mbtestOpen(t, root) // a second session on the same Maildir
	if b.UIDValidity() != a.UIDValidity() || !slices.Equal(mbtestUIDs(b.Messages()), []uint32{1, 2, 3}) {
		t.Fatal("second mailbox disagrees")
	}
	slot, err := a.KeywordSlot("$Work", true)
	if err != nil || slot != 0 {
		t.Fatalf("KeywordSlot = %d, %v", slot, err)
	}
	if err := a.SetFlags(2, FlagSeen|FlagFlagged, Keywords(0).With(slot)); err != nil {
		t.Fatal(err)
	}
	msg, _ := a.Lookup(2)
	if msg.Dir != "cur" || filepath.Base(msg.Path) != bases[1]+":2,FSa" {
		t.Fatalf("after SetFlags: %+v", msg)
	}
	if _, err := os.Stat(msg.Path); err != nil {
		t.Fatal(err)
	}
	if ch := mbtestSync(t, a); !ch.Empty() {
		t.Errorf("own change reported: %+v", ch)
	}
	ch := mbtestSync(t, b)
	if !slices.Equal(ch.FlagsChanged, []uint32{2}) || len(ch.New)+len(ch.Expunged) != 0 {
		t.Errorf("b sees %+v, want flags of 2 changed", ch)
	}
	if got := b.KeywordNames(); !slices.Equal(got, []string{"$Work"}) {
		t.Errorf("b keywords = %q", got)
	}
	if err := a.Expunge(1, 99); err != nil {
		t.Fatal(err)
	}
	mbtestMustDeliver(t, root, "Subject: 4\r\n\r\n")
	if ch := mbtestSync(t, a); !slices.Equal(ch.New, []uint32{4}) || len(ch.Expunged) != 0 {
		t.Errorf("a sees %+v, want new 4", ch)
	}
	ch = mbtestSync(t, b)
	if !slices.Equal(ch.New, []uint32{4}) || !slices.Equal(ch.Expunged, []uint32{1}) {
		t.Errorf("b sees %+v, want new 4, expunged 1", ch)
	}
	if err := b.SetFlags(1, FlagSeen, 0); !errors.Is(err, ErrExpunged) {
		t.Errorf("SetFlags on expunged = %v", err)
	}
	// A fresh process sees the same UIDs.
	c := mbtestOpen(t, root)
	if !slices.Equal(mbtestUIDs(c.Messages()), []uint32{2, 3, 4}) || c.UIDNext() != 5 {
		t.Errorf("reopen: %v next %d", mbtestUIDs(c.Messages()), c.UIDNext())
	}
}

func TestSetFlagsAfterConcurrentRename(t *testing.T) {
	root := mbtestMaildir(t)
	mbtestMustDeliver(t, root, "x")
	a := mbtestOpen(t, root)
	b := mbtestOpen(t, root)
	if err := b.SetFlags(1, FlagSeen, 0); err != nil {
		t.Fatal(err)
	}
	// a's view still says new/; its rename gets ENOENT and must resync.
	if err := a.SetFlags(1, FlagSeen|FlagReplied, 0); err != nil {
		t.Fatal(err)
	}
	c := mbtestOpen(t, root)
	msgs := c.Messages()
	if len(msgs) != 1 || msgs[0].UID != 1 || msgs[0].Name.Flags != FlagSeen|FlagReplied {
		t.Fatalf("got %+v", msgs)
	}
	// a's internal resync found b's flag change; it is reported once.
	if ch := mbtestSync(t, a); !slices.Equal(ch.FlagsChanged, []uint32{1}) {
		t.Errorf("a changes = %+v", ch)
	}
}

func TestKeywordSlots(t *testing.T) {
	root := mbtestMaildir(t)
	m := mbtestOpen(t, root)
	if slot, err := m.KeywordSlot("nope", false); err != nil || slot != -1 {
		t.Fatalf("lookup without create = %d, %v", slot, err)
	}
	if _, err := m.KeywordSlot("a b", true); !errors.Is(err, ErrBadKeyword) {
		t.Fatalf("bad keyword: %v", err)
	}
	for i := 0; i < MaxKeywords; i++ {
		slot, err := m.KeywordSlot(fmt.Sprintf("kw%d", i), true)
		if err != nil || slot != i {
			t.Fatalf("slot %d: %d, %v", i, slot, err)
		}
	}
	if slot, err := m.KeywordSlot("KW3", true); err != nil || slot != 3 {
		t.Fatalf("case-insensitive lookup = %d, %v", slot, err)
	}
	if _, err := m.KeywordSlot("one-too-many", true); !errors.Is(err, ErrTooManyKeywords) {
		t.Fatalf("27th keyword: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(root, KeywordsName))
	if err != nil {
		t.Fatal(err)
	}
	if l := ParseKeywordList(data); l[25] != "kw25" || l[0] != "kw0" {
		t.Fatalf("file = %q", data)
	}
	if _, err := os.Stat(filepath.Join(root, UidlistName+".lock")); !os.IsNotExist(err) {
		t.Fatalf("lock left behind: %v", err)
	}
}

func TestMoveTo(t *testing.T) {
	root := t.TempDir()
	inbox := mbtestMaildir(t)
	_ = root
	archive := mbtestMaildir(t, ".Archive")
	mbtestMustDeliver(t, inbox, "one")
	mbtestMustDeliver(t, inbox, "two")
	src := mbtestOpen(t, inbox)
	dst := mbtestOpen(t, archive)
	if _, err := dst.KeywordSlot("other", true); err != nil {
		t.Fatal(err)
	}
	slot, err := src.KeywordSlot("$Project", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.SetFlags(2, FlagSeen, Keywords(0).With(slot)); err != nil {
		t.Fatal(err)
	}
	old, _ := src.Lookup(2)
	oldInfo, err := os.Stat(old.Path)
	if err != nil {
		t.Fatal(err)
	}
	base, err := src.MoveTo(2, dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.Lookup(2); ok {
		t.Fatal("moved message still in source view")
	}
	ch := mbtestSync(t, dst)
	if !slices.Equal(ch.New, []uint32{1}) {
		t.Fatalf("dst changes %+v", ch)
	}
	msg, ok := dst.LookupBase(base)
	if !ok || msg.UID != 1 || msg.Name.Flags != FlagSeen || msg.Size != 3 {
		t.Fatalf("moved message = %+v", msg)
	}
	if names := dst.KeywordList().Names(msg.Name.Keywords); !slices.Equal(names, []string{"$Project"}) {
		t.Fatalf("keywords after move = %q", names)
	}
	fi, err := os.Stat(msg.Path)
	if err != nil || !fi.ModTime().Equal(oldInfo.ModTime()) {
		t.Fatalf("mtime (INTERNALDATE) not kept: %v", err)
	}
	if ch := mbtestSync(t, src); !ch.Empty() {
		t.Errorf("src reports own move: %+v", ch)
	}
	if _, err := src.MoveTo(2, dst); !errors.Is(err, ErrExpunged) {
		t.Errorf("second move: %v", err)
	}
}

func TestUidlistExternalAppendAndRewrite(t *testing.T) {
	root := mbtestMaildir(t)
	b1 := mbtestMustDeliver(t, root, "1")
	m := mbtestOpen(t, root)
	// Another program (Dovecot) appends a record for a file it delivered,
	// with fields we do not model.
	b2 := "1700000000.M1P1.other,S=1"
	if err := os.WriteFile(filepath.Join(root, "cur", b2+":2,S"), []byte("2"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(root, UidlistName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("7 W9 X1 :" + b2 + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ch := mbtestSync(t, m)
	if !slices.Equal(ch.New, []uint32{7}) {
		t.Fatalf("changes %+v", ch)
	}
	msg, _ := m.Lookup(7)
	if msg.VSize != 9 || msg.Name.Flags != FlagSeen {
		t.Fatalf("msg %+v", msg)
	}
	if m.UIDNext() != 8 {
		t.Fatalf("next = %d", m.UIDNext())
	}
	// A broken uidlist is replaced, keeping UIDVALIDITY and never lowering
	// next UID for this process.
	v := m.UIDValidity()
	if err := os.WriteFile(filepath.Join(root, UidlistName), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mbtestSync(t, m)
	if m.UIDValidity() != v || m.UIDNext() < 8 {
		t.Fatalf("after corruption: V%d N%d", m.UIDValidity(), m.UIDNext())
	}
	if _, ok := m.LookupBase(b1); !ok {
		t.Fatal("message lost")
	}
}

// TestReaddirRace renames files in cur/ (flag changes) and moves files from
// new/ to cur/ while another Mailbox syncs over and over: nothing may be
// reported expunged and no message may get a second UID.
func TestReaddirRace(t *testing.T) {
	root := mbtestMaildir(t)
	const n = 300
	for i := 0; i < n; i++ {
		mbtestMustDeliver(t, root, fmt.Sprintf("m%d", i))
	}
	writer := mbtestOpen(t, root)
	reader := mbtestOpen(t, root)
	if len(reader.Messages()) != n {
		t.Fatalf("have %d", len(reader.Messages()))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var renames atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		flags := []Flags{FlagSeen, FlagSeen | FlagReplied, FlagFlagged, 0}
		for round := 0; round < 20; round++ {
			for uid := uint32(1); uid <= n; uid++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := writer.SetFlags(uid, flags[(int(uid)+round)%len(flags)], 0); err != nil {
					t.Error(err)
					return
				}
				renames.Add(1)
			}
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 200 && time.Now().Before(deadline); i++ {
		ch, err := reader.Sync()
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Expunged) > 0 || len(ch.New) > 0 {
			t.Fatalf("sync %d: race reported as %+v", i, ch)
		}
		if got := len(reader.Messages()); got != n {
			t.Fatalf("sync %d: %d messages", i, got)
		}
	}
	close(stop)
	wg.Wait()
	if renames.Load() == 0 {
		t.Fatal("no renames happened during the test")
	}
	final := mbtestOpen(t, root)
	if !slices.Equal(mbtestUIDs(final.Messages()), mbtestUIDs(reader.Messages())) || final.UIDNext() != n+1 {
		t.Fatalf("UIDs changed: next %d", final.UIDNext())
	}
}

func TestDuplicateBaseKept(t *testing.T) {
	root := mbtestMaildir(t)
	base := mbtestMustDeliver(t, root, "same")
	if err := os.WriteFile(filepath.Join(root, "cur", base+":2,S"), []byte("same"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := mbtestOpen(t, root)
	if got := len(m.Messages()); got != 2 {
		t.Fatalf("%d messages, want both files kept", got)
	}
}

func TestOpenMailboxNotMaildir(t *testing.T) {
	if _, err := OpenMailbox(t.TempDir()); !errors.Is(err, ErrNotMaildir) {
		t.Fatalf("err = %v", err)
	}
}

func TestSyncNameOrder(t *testing.T) {
	names := []string{"20.M5P1.h", "10.M9P1.h", "10.M10P1.h", "10.M10P0.h", "9.x.h"}
	slices.SortFunc(names, func(a, b string) int {
		if syncNameLess(a, b) {
			return -1
		}
		if syncNameLess(b, a) {
			return 1
		}
		return 0
	})
	want := []string{"9.x.h", "10.M9P1.h", "10.M10P0.h", "10.M10P1.h", "20.M5P1.h"}
	if !slices.Equal(names, want) {
		t.Fatalf("order %q, want %q", names, want)
	}
}

func TestSyncMergeChanges(t *testing.T) {
	got := syncMergeChanges(Changes{New: []uint32{5}, FlagsChanged: []uint32{1}}, Changes{Expunged: []uint32{5, 2}, FlagsChanged: []uint32{1, 3}})
	want := Changes{Expunged: []uint32{2}, FlagsChanged: []uint32{1, 3}}
	if !slices.Equal(got.New, want.New) || !slices.Equal(got.Expunged, want.Expunged) || !slices.Equal(got.FlagsChanged, want.FlagsChanged) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
