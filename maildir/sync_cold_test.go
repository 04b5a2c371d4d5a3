package maildir

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// coldBaseSamples are bases syncBaseSizesOf must read as syncBaseField does.
var coldBaseSamples = []string{
	"1732300000.M1P2.host,S=100,W=103",
	"1732300000.M1P2.host,W=103,S=100",
	"1732300000.M1P2.host,S=100",
	"1732300000.M1P2.host",
	"1732300000.M1P2.host,S=x,S=5,W=7",
	"1732300000.M1P2.host,S=1,S=2,W=,W=3",
	"1732300000.M1P2.host,,S=4",
	"a,S=-1,W=99999999999999999999",
	",S=0,W=0",
	"x,S",
	"",
}

func TestSyncBaseSizesOf(t *testing.T) {
	for _, base := range coldBaseSamples {
		checkBaseSizes(t, base)
	}
}

func FuzzSyncBaseSizesOf(f *testing.F) {
	for _, base := range coldBaseSamples {
		f.Add(base)
	}
	f.Fuzz(checkBaseSizes)
}

// checkBaseSizes compares the one-pass parse with syncBaseField per key.
func checkBaseSizes(t *testing.T, base string) {
	got := syncBaseSizesOf(base)
	s, okS := syncBaseField(base, 'S')
	w, okW := syncBaseField(base, 'W')
	want := syncBaseSizes{s: s, w: w, hasS: okS, hasW: okW}
	if got != want {
		t.Errorf("syncBaseSizesOf(%q) = %+v, want %+v", base, got, want)
	}
}

// TestSyncSortFresh checks the keyed sort against syncNameLess on names
// with and without microseconds, equal seconds and odd shapes.
func TestSyncSortFresh(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := []func(i int) string{
		func(i int) string {
			return fmt.Sprintf("%d.M%dP%d.h,S=%d:2,S", 1700000000+rng.IntN(5), rng.IntN(1000000), i, i)
		},
		func(i int) string { return fmt.Sprintf("%d.P%d.h", 1700000000+rng.IntN(5), i) },
		func(i int) string { return fmt.Sprintf("x%d", i) },
		func(i int) string { return fmt.Sprintf("%d.M%d.h%d:2,", 1700000000+rng.IntN(3), rng.IntN(3), i) },
	}
	for round := range 20 {
		n := 1 + rng.IntN(300)
		var entries []syncEntry
		for i := range n {
			entries = append(entries, newSyncEntry(syncCur, shapes[(i+round)%len(shapes)](i)))
		}
		fresh := make([]int32, n)
		for i := range fresh {
			fresh[i] = int32(i)
		}
		rng.Shuffle(n, func(i, j int) { fresh[i], fresh[j] = fresh[j], fresh[i] })
		syncSortFresh(fresh, entries)
		for i := 1; i < n; i++ {
			a, b := entries[fresh[i-1]].base(), entries[fresh[i]].base()
			if syncNameLess(b, a) {
				t.Fatalf("round %d: %q sorted before %q", round, a, b)
			}
		}
		perm := slices.Sorted(slices.Values(fresh))
		for i, ei := range perm {
			if ei != int32(i) {
				t.Fatalf("round %d: entries lost or doubled: %v", round, perm)
			}
		}
	}
}

func TestSyncEntryBase(t *testing.T) {
	for _, tc := range []struct{ name, base string }{
		{"a:2,S", "a"}, {"a", "a"}, {"a:b:c", "a"}, {":2,", ""},
	} {
		e := newSyncEntry(syncNew, tc.name)
		if e.base() != tc.base {
			t.Errorf("base of %q = %q, want %q", tc.name, e.base(), tc.base)
		}
	}
}

// TestUidlistWriteTo checks the streamed uidlist against Marshal, and the
// sum rewrite remembers against the file's.
func TestUidlistWriteTo(t *testing.T) {
	for _, n := range []int{0, 1, 3000} {
		dir := t.TempDir()
		f := &uidlistFile{path: filepath.Join(dir, UidlistName)}
		if err := f.create(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			f.u.Records = append(f.u.Records, UidlistRecord{UID: uint32(i + 1), Fields: []string{"W" + strings.Repeat("9", i%700)}, Name: fmt.Sprintf("%d.M%dP1.h,S=%d", 1700000000+i, i, i)})
		}
		f.u.NextUID = uint32(n + 1)
		if err := f.rewrite(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if want := f.u.Marshal(); !bytes.Equal(data, want) {
			t.Fatalf("%d records: file differs from Marshal (%d vs %d bytes)", n, len(data), len(want))
		}
		size, sum, ok := f.writtenSum()
		if !ok || size != int64(len(data)) || sum != crc32.Checksum(data, listingCRC) {
			t.Fatalf("%d records: writtenSum = %d %08x %v, want %d %08x", n, size, sum, ok, len(data), crc32.Checksum(data, listingCRC))
		}
		// The pooled buffer writeTo used is whole again for the reader.
		if rsize, rsum, err := listingFileSum(f.path); err != nil || rsize != size || rsum != sum {
			t.Fatalf("%d records: listingFileSum = %d %08x %v, want %d %08x", n, rsize, rsum, err, size, sum)
		}
		// Any later change of the file's identity voids the sum.
		if err := f.appendRecords([]UidlistRecord{{UID: uint32(n + 1), Name: "x"}}); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := f.writtenSum(); ok {
			t.Fatalf("%d records: sum still claimed after an append", n)
		}
	}
}
