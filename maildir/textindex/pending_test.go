package textindex

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// deliverCorpus writes texts into dir/new as a delivery would and indexes
// each at delivery; the messages' base names are their file names.
func deliverCorpus(t testing.TB, dir string, texts []string) []parsedMsg {
	t.Helper()
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	msgs := writeCorpus(t, filepath.Join(dir, "new"), texts)
	for _, m := range msgs {
		if err := IndexDelivered(m.path); err != nil {
			t.Fatal(err)
		}
	}
	return msgs
}

// uidMap is a mailbox's base name → UID map, as the engine keeps it.
func uidMap(msgs []parsedMsg) map[string]uint32 {
	out := map[string]uint32{}
	for _, m := range msgs {
		out[filepath.Base(m.path)] = m.uid
	}
	return out
}

func lookupIn(m map[string]uint32) func(string) (uint32, bool) {
	return func(base string) (uint32, bool) { u, ok := m[base]; return u, ok }
}

func pendingSize(t testing.TB, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, PendingName))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestPendingFoldEqualsScan(t *testing.T) {
	t.Run("one builder", testPendingFoldEqualsScan)
	t.Run("four builders", func(t *testing.T) {
		old := foldPerWorker
		foldPerWorker = 20
		t.Cleanup(func() { foldPerWorker = old })
		testPendingFoldEqualsScan(t)
	})
}

func testPendingFoldEqualsScan(t *testing.T) {
	dir := t.TempDir()
	texts := append(fixedCorpus(), genCorpus(rand.New(rand.NewPCG(11, 12)), 150)...)
	msgs := deliverCorpus(t, dir, texts)
	ix, err := Open(dir, 9)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	st, err := ix.FoldPending(lookupIn(uidMap(msgs)))
	if err != nil {
		t.Fatal(err)
	}
	if st != (FoldStats{Folded: len(msgs)}) {
		t.Fatalf("stats %+v, want %d folded", st, len(msgs))
	}
	if n := pendingSize(t, dir); n != 0 {
		t.Fatalf("pending file left with %d octets", n)
	}
	if ix.CoveredCount() != len(msgs) {
		t.Fatalf("covered %d of %d", ix.CoveredCount(), len(msgs))
	}
	if parallel := min(runtime.GOMAXPROCS(0), maxFoldWorkers, len(msgs)/foldPerWorker); parallel > 1 && ix.Segments() != parallel {
		t.Fatalf("%d segments from %d builders", ix.Segments(), parallel)
	}
	// One goroutine (a background indexer's fold): one segment.
	serial := t.TempDir()
	deliverCorpus(t, serial, texts)
	ixs, err := Open(serial, 9)
	if err != nil {
		t.Fatal(err)
	}
	defer ixs.Close()
	if st, err := ixs.FoldPendingWorkers(lookupIn(uidMap(msgs)), 1); err != nil || st.Folded != len(msgs) || ixs.Segments() != 1 {
		t.Fatalf("serial fold: %+v %v, %d segments", st, err, ixs.Segments())
	}
	checkAnswers(t, ixs, msgs)
	checkAnswers(t, ix, msgs)

	// The same answers, candidates included, as an index built by
	// reading the messages.
	full := t.TempDir()
	built := buildIndex(t, full, msgs, 9)
	defer built.Close()
	for _, q := range queries {
		needle := Fold([]byte(q))
		for _, field := range []Field{Body, Header} {
			a, err := ix.Candidates(field, needle)
			if err != nil {
				t.Fatal(err)
			}
			b, err := built.Candidates(field, needle)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if a.Candidates.Has(m.uid) != b.Candidates.Has(m.uid) || a.Verify.Has(m.uid) != b.Verify.Has(m.uid) {
					t.Fatalf("%q %c uid %d: folded and built indexes differ", q, field, m.uid)
				}
			}
		}
	}

	// A second fold finds nothing; reopened from disk, the same answers.
	if st, err := ix.FoldPending(lookupIn(uidMap(msgs))); err != nil || st != (FoldStats{}) {
		t.Fatalf("second fold: %+v %v", st, err)
	}
	ix2, err := Open(dir, 9)
	if err != nil {
		t.Fatal(err)
	}
	defer ix2.Close()
	checkAnswers(t, ix2, msgs)
}

// TestPendingGoneRenamedUnsynced: before the fold, one message is
// expunged, one renamed to cur/ with flags (same base name), one not yet
// known to the reader's mailbox, and one already indexed the old way.
func TestPendingGoneRenamedUnsynced(t *testing.T) {
	dir := t.TempDir()
	msgs := deliverCorpus(t, dir, genCorpus(rand.New(rand.NewPCG(21, 22)), 8))
	known := uidMap(msgs)
	gone, renamed, unsynced := msgs[1], msgs[2], msgs[3]
	if err := os.Remove(gone.path); err != nil {
		t.Fatal(err)
	}
	delete(known, filepath.Base(gone.path))
	moved := filepath.Join(dir, "cur", filepath.Base(renamed.path)+":2,FS")
	if err := os.Rename(renamed.path, moved); err != nil {
		t.Fatal(err)
	}
	renamed.path = moved
	msgs[2] = renamed
	delete(known, filepath.Base(unsynced.path))

	ix := buildIndex(t, dir, msgs[:1], 3) // msgs[0] indexed by a search
	defer ix.Close()
	st, err := ix.FoldPending(lookupIn(known))
	if err != nil {
		t.Fatal(err)
	}
	want := FoldStats{Folded: 5, Covered: 1, Dropped: 1, Kept: 1}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	if ix.Covered(gone.uid) || ix.Covered(unsynced.uid) || !ix.Covered(renamed.uid) {
		t.Fatal("covered: gone or unsynced in, or renamed out")
	}
	if pendingSize(t, dir) == 0 {
		t.Fatal("the unsynced message's record was not kept")
	}
	// The next reader knows it.
	known[filepath.Base(unsynced.path)] = unsynced.uid
	if st, err := ix.FoldPending(lookupIn(known)); err != nil || st != (FoldStats{Folded: 1}) {
		t.Fatalf("second fold: %+v %v", st, err)
	}
	live := append(append([]parsedMsg{}, msgs[:1]...), msgs[2:]...)
	checkAnswers(t, ix, live)
}

// TestPendingTorn: a record cut by a crash, then more deliveries after it:
// the torn one is skipped, the others are folded.
func TestPendingTorn(t *testing.T) {
	dir := t.TempDir()
	msgs := deliverCorpus(t, dir, genCorpus(rand.New(rand.NewPCG(31, 32)), 6))
	data, err := os.ReadFile(filepath.Join(dir, PendingName))
	if err != nil {
		t.Fatal(err)
	}
	// Records 0..5; keep 0-2 whole, tear record 3 half-way, keep 4-5.
	var offs []int
	for off := 0; off < len(data); {
		_, n, err := nextPendingRecord(data[off:])
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
		off += n
	}
	if len(offs) != len(msgs) {
		t.Fatalf("%d records for %d messages", len(offs), len(msgs))
	}
	torn := append(append([]byte{}, data[:offs[3]+(offs[4]-offs[3])/2]...), data[offs[4]:]...)
	if err := os.WriteFile(filepath.Join(dir, PendingName), torn, 0o600); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	st, err := ix.FoldPending(lookupIn(uidMap(msgs)))
	if err != nil {
		t.Fatal(err)
	}
	if st != (FoldStats{Folded: 5, Damaged: 1}) {
		t.Fatalf("stats %+v", st)
	}
	for i, m := range msgs {
		if ix.Covered(m.uid) != (i != 3) {
			t.Fatalf("message %d covered=%v", i, ix.Covered(m.uid))
		}
	}
	checkAnswers(t, ix, append(append([]parsedMsg{}, msgs[:3]...), msgs[4:]...))
}

// TestPendingFull: the pending file stops taking records at MaxPending,
// and a file beyond what appends can make is dropped by the fold.
func TestPendingFull(t *testing.T) {
	dir := t.TempDir()
	msgs := deliverCorpus(t, dir, genCorpus(rand.New(rand.NewPCG(41, 42)), 2))
	path := filepath.Join(dir, PendingName)
	if err := os.Truncate(path, MaxPending-10); err != nil {
		t.Fatal(err)
	}
	if err := IndexDelivered(msgs[0].path); !errors.Is(err, ErrPendingFull) {
		t.Fatalf("append to a full file: %v, want ErrPendingFull", err)
	}
	if n := pendingSize(t, dir); n != MaxPending-10 {
		t.Fatalf("full file grew to %d", n)
	}
	if err := os.Truncate(path, MaxPending+maxPendingRecord+1); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	st, err := ix.FoldPending(lookupIn(uidMap(msgs)))
	if err != nil || st != (FoldStats{Damaged: 1}) {
		t.Fatalf("fold of an oversized file: %+v %v", st, err)
	}
	if n := pendingSize(t, dir); n != 0 {
		t.Fatalf("oversized file left with %d octets", n)
	}
}

// TestPendingConcurrentDelivery: deliveries append while a reader folds
// again and again; every message ends up in the index once, none lost.
func TestPendingConcurrentDelivery(t *testing.T) {
	dir := t.TempDir()
	texts := genCorpus(rand.New(rand.NewPCG(51, 52)), 120)
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	msgs := writeCorpus(t, filepath.Join(dir, "new"), texts)
	known := uidMap(msgs)
	var mu sync.Mutex
	delivered := map[string]uint32{} // what the reader's mailbox lists
	lookup := func(base string) (uint32, bool) {
		mu.Lock()
		defer mu.Unlock()
		u, ok := delivered[base]
		return u, ok
	}
	const writers = 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(msgs); i += writers {
				if err := IndexDelivered(msgs[i].path); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				delivered[filepath.Base(msgs[i].path)] = known[filepath.Base(msgs[i].path)]
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	ix, err := Open(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var total FoldStats
	add := func(st FoldStats) {
		total.Folded += st.Folded
		total.Covered += st.Covered
		total.Dropped += st.Dropped
		total.Damaged += st.Damaged
	}
	folds := 0
	for running := true; running && folds < 10000; folds++ {
		select {
		case <-done:
			running = false
		default:
		}
		st, err := ix.FoldPending(lookup)
		if err != nil {
			t.Fatal(err)
		}
		add(st)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := ix.FoldPending(lookup)
	if err != nil {
		t.Fatal(err)
	}
	add(st)
	if total.Folded != len(msgs) || total.Dropped != 0 || total.Damaged != 0 || st.Kept != 0 {
		t.Fatalf("after %d folds: %+v, last %+v; want %d folded", folds, total, st, len(msgs))
	}
	checkAnswers(t, ix, msgs)
}

func TestPendingRecordRoundTrip(t *testing.T) {
	var d Doc
	d.words[0].add([]byte("subject"))
	d.words[1].add([]byte("hello"))
	d.words[1].add([]byte("wörld"))
	d.overflow[1] = true
	rec := appendPendingRecord(nil, "1700000000.M1P2.host,S=10", &d)
	body, n, err := nextPendingRecord(rec)
	if err != nil || n != len(rec) {
		t.Fatalf("frame: %v n=%d len=%d", err, n, len(rec))
	}
	r, err := parsePendingBody(body)
	if err != nil {
		t.Fatal(err)
	}
	var got Doc
	r.doc(&got)
	if string(r.base) != "1700000000.M1P2.host,S=10" || got.overflow != d.overflow {
		t.Fatalf("base %q overflow %v", r.base, got.overflow)
	}
	if again := appendPendingRecord(nil, string(r.base), &got); !bytes.Equal(again, rec) {
		t.Fatal("re-encoded record differs")
	}
	for i := range rec {
		bad := flip(rec, i)
		if _, _, err := nextPendingRecord(bad); err == nil {
			t.Fatalf("flipping octet %d went unnoticed", i)
		}
	}
}

// FuzzPendingRecords walks arbitrary octets as a pending file: no panic,
// every record reported has a base name, and re-encoding it gives a
// record that parses to the same words.
func FuzzPendingRecords(f *testing.F) {
	var d Doc
	d.words[1].add([]byte("seed"))
	rec := appendPendingRecord(nil, "base", &d)
	f.Add(rec)
	f.Add(append(append([]byte{}, rec[:len(rec)/2]...), rec...))
	f.Add([]byte(pendingMagic))
	f.Add([]byte(fmt.Sprintf("%s\x00\x00\x00\x02\x01a", pendingMagic)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d, back Doc
		_, err := walkPending(data, func(r *pendingRecord, framed []byte) error {
			if len(r.base) == 0 || !bytes.HasPrefix(framed, []byte(pendingMagic)) {
				t.Fatal("empty base name or unframed record")
			}
			r.doc(&d)
			rec := appendPendingRecord(nil, string(r.base), &d)
			body, _, err := nextPendingRecord(rec)
			if err != nil {
				t.Fatal(err)
			}
			r2, err := parsePendingBody(body)
			if err != nil || !bytes.Equal(r2.base, r.base) || r2.overflow != r.overflow {
				t.Fatalf("round trip: %v", err)
			}
			r2.doc(&back)
			for i := range d.words {
				if len(back.words[i].order) != len(d.words[i].order) {
					t.Fatal("round trip lost words")
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
