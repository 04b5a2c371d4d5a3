package maildir

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// snapVisitor collects what a Snapshot passes.
type snapVisitor struct {
	info  SnapshotInfo
	begun int
	msgs  []SnapshotMessage
}

func (v *snapVisitor) Begin(info SnapshotInfo) error {
	v.info = info
	v.begun++
	return nil
}

func (v *snapVisitor) Message(m SnapshotMessage) error {
	m.Name = strings.Clone(m.Name)
	v.msgs = append(v.msgs, m)
	return nil
}

// snapTake runs Snapshot and checks what every Snapshot must hold.
func snapTake(t *testing.T, root string) *snapVisitor {
	t.Helper()
	var v snapVisitor
	if err := Snapshot(root, &v); err != nil {
		t.Fatal(err)
	}
	if v.begun != 1 || v.info.Count != len(v.msgs) {
		t.Fatalf("Begin called %d times with Count %d; %d messages", v.begun, v.info.Count, len(v.msgs))
	}
	for i := 1; i < len(v.msgs); i++ {
		if v.msgs[i].UID <= v.msgs[i-1].UID {
			t.Fatalf("UIDs out of order: %d after %d", v.msgs[i].UID, v.msgs[i-1].UID)
		}
	}
	return &v
}

// snapFromMailbox is what a Snapshot should pass for the Mailbox's view.
func snapFromMailbox(m *Mailbox) (SnapshotInfo, []SnapshotMessage) {
	var out []SnapshotMessage
	for _, msg := range m.Messages() {
		out = append(out, SnapshotMessage{UID: msg.UID, InNew: msg.Dir == "new", Name: filepath.Base(msg.Path), Size: msg.Size, VSize: msg.VSize})
	}
	return SnapshotInfo{UIDValidity: m.UIDValidity(), UIDNext: m.UIDNext(), Count: len(out)}, out
}

// snapCheckLikeMailbox compares a Snapshot with a Mailbox opened after it.
func snapCheckLikeMailbox(t *testing.T, root string, v *snapVisitor) {
	t.Helper()
	info, want := snapFromMailbox(mbtestOpen(t, root))
	if v.info != info {
		t.Errorf("info %+v, Mailbox says %+v", v.info, info)
	}
	if !slices.Equal(v.msgs, want) {
		t.Errorf("Snapshot:\n%v\nMailbox:\n%v", v.msgs, want)
	}
}

// snapWrite creates a file with body in root/dir.
func snapWrite(t *testing.T, root, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotLikeOpenMailbox: a Snapshot passes exactly the messages,
// UIDs, names and sizes a Mailbox opened on the same Maildir has, whether
// it assigns the UIDs (cold) or finds them in the uidlist (warm).
func TestSnapshotLikeOpenMailbox(t *testing.T) {
	cases := []struct {
		name  string
		files [][3]string // dir, name, body
		warm  bool        // a Mailbox synced before the Snapshot
	}{
		{name: "empty"},
		{name: "new only", files: [][3]string{{"new", "1700000002.M2P1.h,S=2", "b\n"}, {"new", "1700000001.M1P1.h", "a\n"}}},
		{name: "cur with flags", files: [][3]string{{"cur", "1700000001.M1P1.h,S=3,W=4:2,S", "ab\n"}, {"cur", "1700000003.M1P1.h:2,FRS", "x"}, {"new", "1700000002.M1P1.h,S=1", "y"}}},
		{name: "warm", warm: true, files: [][3]string{{"cur", "1700000001.M1P1.h,S=3,W=4:2,S", "ab\n"}, {"new", "1700000002.M1P1.h", "y"}}},
		{name: "odd names skipped", files: [][3]string{{"cur", ".hidden", ""}, {"cur", "1700000001.M1P1.h:1,x", "z"}, {"new", "1700000002.M1P1.h", "y"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := mbtestMaildir(t, "Maildir")
			for _, f := range tc.files {
				snapWrite(t, root, f[0], f[1], f[2])
			}
			if tc.warm {
				mbtestOpen(t, root)
			}
			v := snapTake(t, root)
			snapCheckLikeMailbox(t, root, v)
			// A second Snapshot gives the same UIDs (the uidlist was written).
			again := snapTake(t, root)
			if !slices.Equal(again.msgs, v.msgs) || again.info != v.info {
				t.Errorf("second Snapshot differs:\n%v\n%v", again.msgs, v.msgs)
			}
		})
	}
}

// TestSnapshotNotMaildir: a directory without new/ and cur/ is refused.
func TestSnapshotNotMaildir(t *testing.T) {
	var v snapVisitor
	if err := Snapshot(t.TempDir(), &v); err == nil || v.begun != 0 {
		t.Fatalf("Snapshot of a non-Maildir: err %v, Begin called %d times", err, v.begun)
	}
}

// snapSettle waits until root's new/ and cur/ have been unchanged for longer
// than syncDirtyWindow: only then may a listing be cached. This is waiting
// for the clock, not for another goroutine.
func snapSettle(t *testing.T, root string) {
	t.Helper()
	for _, d := range syncDirNames {
		st, err := syncStampOf(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		last := st.ctime
		if st.mtime.After(last) {
			last = st.mtime
		}
		if wait := time.Until(last.Add(syncDirtyWindow + 20*time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
	}
}

// snapCached prepares a Maildir with a valid listing cache: messages in
// new/ and cur/, settled, one Snapshot to write the cache.
func snapCached(t *testing.T) string {
	t.Helper()
	root := mbtestMaildir(t, "Maildir")
	for i := range 6 {
		dir, name := "cur", fmt.Sprintf("17000000%02d.M%dP9.h,S=2,W=3:2,S", i, i)
		if i%3 == 0 {
			dir, name = "new", fmt.Sprintf("17000000%02d.M%dP9.h", i, i)
		}
		snapWrite(t, root, dir, name, "a\n")
	}
	mbtestOpen(t, root) // the uidlist
	snapSettle(t, root)
	snapTake(t, root)
	if _, err := os.Stat(filepath.Join(root, ListingName)); err != nil {
		t.Fatalf("no listing cache after a Snapshot of a settled Maildir: %v", err)
	}
	return root
}

// snapScanned runs a Snapshot and reports whether it listed the
// directories (true) or used the cache (false).
func snapScanned(t *testing.T, root string) (*snapVisitor, bool) {
	t.Helper()
	before := syncScans.Load()
	v := snapTake(t, root)
	return v, syncScans.Load() != before
}

// TestListingCacheConsistency: the listing cache is used only while new/,
// cur/ and the uidlist are as it recorded them; after any change a Snapshot
// lists again and passes what a Mailbox sees.
func TestListingCacheConsistency(t *testing.T) {
	root := snapCached(t)
	base := snapTake(t, root)
	if v, scanned := snapScanned(t, root); scanned {
		t.Fatal("a Snapshot of an unchanged, settled Maildir listed the directories")
	} else if !slices.Equal(v.msgs, base.msgs) || v.info != base.info {
		t.Fatalf("cached Snapshot differs:\n%v\n%v", v.msgs, base.msgs)
	}
	// fresh: the change itself ends in an OpenMailbox of settled
	// directories, whose scan leaves a current cache for the Snapshot.
	cases := []struct {
		name   string
		change func(t *testing.T, root string)
		fresh  bool
	}{
		{"delivery into new/", func(t *testing.T, root string) {
			mbtestMustDeliver(t, root, "hello\n")
		}, false},
		{"flag change in cur/", func(t *testing.T, root string) {
			m := mbtestOpen(t, root)
			msg := m.Messages()[1]
			if err := m.SetFlags(msg.UID, msg.Name.Flags|FlagFlagged, 0); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"expunge", func(t *testing.T, root string) {
			m := mbtestOpen(t, root)
			if err := m.Expunge(m.Messages()[0].UID); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"uidlist recreated (new UIDVALIDITY)", func(t *testing.T, root string) {
			if err := os.Remove(filepath.Join(root, UidlistName)); err != nil {
				t.Fatal(err)
			}
			mbtestOpen(t, root)
		}, true},
		{"uidlist changed in place, same size", func(t *testing.T, root string) {
			path := filepath.Join(root, UidlistName)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Swap the UIDs of the first two records: same size, same
			// stamps but for mtime, other content.
			lines := strings.Split(string(data), "\n")
			u1, r1, _ := strings.Cut(lines[1], " ")
			u2, r2, _ := strings.Cut(lines[2], " ")
			lines[1], lines[2] = u1+" "+r2, u2+" "+r1
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := snapCached(t)
			orig := snapTake(t, root)
			tc.change(t, root)
			v, scanned := snapScanned(t, root)
			if !scanned && !tc.fresh {
				t.Error("the Snapshot after a change used the cache")
			}
			if tc.fresh && v.info.UIDValidity == orig.info.UIDValidity {
				t.Errorf("UIDVALIDITY %d after the uidlist was recreated", v.info.UIDValidity)
			}
			snapCheckLikeMailbox(t, root, v)
		})
	}
}

// TestListingCacheTorn: a cache file cut short or damaged anywhere (a
// crash while it was written, since it is renamed into place without
// fsync) is never used; the Snapshot lists and is right.
func TestListingCacheTorn(t *testing.T) {
	root := snapCached(t)
	want := snapTake(t, root)
	path := filepath.Join(root, ListingName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := map[string][]byte{"empty": nil, "zeros": make([]byte, len(data))}
	for n := 1; n < len(data); n += 1 + len(data)/40 {
		damaged[fmt.Sprintf("cut at %d", n)] = data[:n]
		flip := slices.Clone(data)
		flip[n] ^= 0x01
		damaged[fmt.Sprintf("bit flipped at %d", n)] = flip
	}
	for name, bad := range damaged {
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		// The directories are unchanged, so only the file's checks stand
		// between a bad cache and the client.
		v, scanned := snapScanned(t, root)
		if !scanned {
			t.Errorf("%s: damaged cache used", name)
		}
		if !slices.Equal(v.msgs, want.msgs) || v.info != want.info {
			t.Errorf("%s: Snapshot differs:\n%v\n%v", name, v.msgs, want.msgs)
		}
		// That listing wrote a good cache again.
		if _, scanned := snapScanned(t, root); scanned {
			t.Errorf("%s: no usable cache rewritten", name)
		}
	}
	// A temporary file left by a crash before the rename changes nothing.
	if err := os.WriteFile(path+".tmp", data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if v, scanned := snapScanned(t, root); scanned || !slices.Equal(v.msgs, want.msgs) {
		t.Errorf("with a stale .tmp: scanned %v, messages %v", scanned, v.msgs)
	}
}

// TestListingCacheUnsettled: a listing of a directory changed within the
// last syncDirtyWindow is not cached, since a change in the same clock tick
// would leave its mtime as recorded.
func TestListingCacheUnsettled(t *testing.T) {
	root := mbtestMaildir(t, "Maildir")
	mbtestMustDeliver(t, root, "x\n")
	snapTake(t, root)
	if _, err := os.Stat(filepath.Join(root, ListingName)); !os.IsNotExist(err) {
		t.Fatalf("cache written for a directory changed just now (stat: %v)", err)
	}
}

// TestListingNotFromMergedListings: a scan that had to list more than
// once (a directory changed while it was read) writes no cache, even when
// its last listing was clean: an earlier listing may have seen a file that
// is gone.
func TestListingNotFromMergedListings(t *testing.T) {
	root := snapCached(t)
	if err := os.Remove(filepath.Join(root, ListingName)); err != nil {
		t.Fatal(err)
	}
	d := newSyncDisk(root)
	sc, err := d.scan(syncScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sc.files.clean || sc.files.passes != 1 {
		t.Fatalf("an unchanged Maildir listed %d times, clean %v", sc.files.passes, sc.files.clean)
	}
	sc.files.passes = 2
	if err := d.writeListing(sc); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ListingName)); !os.IsNotExist(err) {
		t.Fatalf("cache written from merged listings (stat: %v)", err)
	}
	sc.files.passes = 1
	if err := d.writeListing(sc); err != nil {
		t.Fatal(err)
	}
	if _, scanned := snapScanned(t, root); scanned {
		t.Fatal("the cache of one clean listing was not used")
	}
}

// TestListingRoundTrip: what writeListing formats, listingWalk reads back.
func TestListingRoundTrip(t *testing.T) {
	entries := []listingEntry{
		{uid: 1, inNew: true, size: -1, vsize: -1, name: "1700000001.M1P1.h"},
		{uid: 7, size: 10, vsize: 12, name: "1700000002.M1P1.h:2,S"},
		{uid: 8, size: -1, vsize: 40, name: "1700000003.M1P1.h,S=38:2,"},
		{uid: 9, size: 5, vsize: 5, name: "1700000004.M1P1.h,W=5:2,S"},
		{uid: 4000000000, size: -1, vsize: 6, name: "x y :odd name"},
	}
	b := listingTestFile(SnapshotInfo{UIDValidity: 99, UIDNext: 4000000001, Count: len(entries)}, entries)
	_, got, err := listingTestParse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(entries)
	want[2].size = -1  // S= in the base, not repeated in the line
	want[3].vsize = -1 // W= in the base
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if s, v := got[2].sizes(); s != 38 || v != 40 {
		t.Errorf("sizes of %q: %d %d", got[2].name, s, v)
	}
}

// listingTestParse walks a cache file, keeping copies of its entries.
func listingTestParse(data string) (*listing, []listingEntry, error) {
	var got []listingEntry
	l, err := listingWalk(strings.NewReader(data), func(e listingEntry) error {
		e.name = strings.Clone(e.name)
		got = append(got, e)
		return nil
	})
	return l, got, err
}

// appendListingEnd adds the end line to a whole file formatted in memory
// (formatListing computes the same CRC as it writes).
func appendListingEnd(b []byte) []byte {
	return fmt.Appendf(b, "E%08x\n", crc32.Checksum(b, listingCRC))
}

// listingTestFile formats a cache file with fixed stamps.
func listingTestFile(info SnapshotInfo, entries []listingEntry) []byte {
	st := syncStamp{exists: true, ino: 12, size: 4096, mtime: time.Unix(1700000000, 5), ctime: time.Unix(1700000000, 6), statedAt: time.Unix(1700000100, 7)}
	b := appendListingHeader(nil, info, 123, 0xdeadbeef, [2]syncStamp{st, st})
	for _, e := range entries {
		b = appendListingLine(b, e.uid, e.inNew, e.size, e.vsize, e.name)
	}
	return appendListingEnd(b)
}

// FuzzParseListing: no input makes the parser fail other than with an
// error, and whatever it accepts formats back to a file it reads the same.
func FuzzParseListing(f *testing.F) {
	f.Add(string(listingTestFile(SnapshotInfo{UIDValidity: 1, UIDNext: 3, Count: 2}, []listingEntry{
		{uid: 1, inNew: true, size: -1, vsize: -1, name: "1.M1P1.h"},
		{uid: 2, size: 3, vsize: 4, name: "2.M1P1.h:2,S"},
	})))
	f.Add(string(listingTestFile(SnapshotInfo{UIDValidity: 1, UIDNext: 1}, nil)))
	f.Add(listingMagic + "V1 N2 C0\nU0 00000000\nD1 2 3 4 5\nD1 2 3 4 5\nE00000000\n")
	f.Fuzz(func(t *testing.T, data string) {
		l, entries, err := listingTestParse(data)
		if err != nil {
			return
		}
		if l2, err := listingWalk(strings.NewReader(data), nil); err != nil || *l2 != *l {
			t.Fatalf("a walk without fn disagrees: %v", err)
		}
		b := appendListingHeader(nil, SnapshotInfo{UIDValidity: l.UIDValidity, UIDNext: l.UIDNext, Count: l.count}, l.ulSize, l.ulSum, l.dirs)
		for _, e := range entries {
			b = appendListingLine(b, e.uid, e.inNew, e.size, e.vsize, e.name)
		}
		l2, again, err := listingTestParse(string(appendListingEnd(b)))
		if err != nil {
			t.Fatalf("re-formatted file refused: %v", err)
		}
		if !slices.Equal(entries, again) || *l2 != *l {
			t.Fatalf("round trip differs:\n%+v\n%+v", entries, again)
		}
	})
}
