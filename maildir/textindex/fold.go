package textindex

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
)

// FoldStats says what FoldPending did with the pending records.
type FoldStats struct {
	// Folded records went into the index under their message's UID.
	Folded int
	// Covered records were of messages the index already had.
	Covered int
	// Dropped records were of messages that are gone.
	Dropped int
	// Kept records were of messages still in new/ that the caller's
	// mailbox does not list yet: they stay pending.
	Kept int
	// Damaged counts the damaged stretches skipped.
	Damaged int
}

// FoldPending moves the pending records of the Maildir into the index,
// without opening any message: uidOf maps a record's base name to its
// message's UID (false: the caller's mailbox does not list it). A record
// whose message is unknown is kept when new/<base> still exists (a
// delivery the caller has not synced yet) and dropped otherwise; then
// the pending file is emptied, all under its flock(2), so that a
// delivery appending meanwhile waits and its record is not lost. A
// record folded twice (a crash between the index's fsync and the
// truncation) is taken once: its UID is covered the second time.
func (ix *Index) FoldPending(uidOf func(base string) (uint32, bool)) (FoldStats, error) {
	return ix.FoldPendingWorkers(uidOf, 0)
}

// FoldPendingWorkers is FoldPending on at most workers goroutines (0:
// one per CPU, up to four); a background indexer, which must leave the
// processors to the sessions, passes 1.
func (ix *Index) FoldPendingWorkers(uidOf func(base string) (uint32, bool), workers int) (FoldStats, error) {
	var st FoldStats
	dir := filepath.Dir(ix.path)
	f, err := os.OpenFile(filepath.Join(dir, PendingName), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("textindex: %w", err)
	}
	defer func() { _ = f.Close() }()
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return st, fmt.Errorf("textindex: lock: %w", err)
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	fi, err := f.Stat()
	if err != nil {
		return st, fmt.Errorf("textindex: %w", err)
	}
	if fi.Size() == 0 {
		return st, nil
	}
	// A file beyond what appends make is not ours to trust: drop it.
	if fi.Size() > MaxPending+maxPendingRecord {
		st.Damaged++
		return st, truncatePending(f, nil)
	}
	data, err := syscall.Mmap(fd, 0, int(fi.Size()), syscall.PROT_READ, mapFlags)
	if err != nil {
		return st, fmt.Errorf("textindex: mmap pending: %w", err)
	}
	kept, err := ix.foldRecords(data, dir, uidOf, workers, &st)
	// kept was copied out of the mapping: unmap before the truncation.
	_ = syscall.Munmap(data)
	if err != nil {
		return st, err
	}
	return st, truncatePending(f, kept)
}

// foldRecords adds the records of data to the index and returns the
// records to keep pending.
func (ix *Index) foldRecords(data []byte, dir string, uidOf func(string) (uint32, bool), workers int, st *FoldStats) ([]byte, error) {
	var kept []byte
	var items []foldItem
	damaged, err := walkPending(data, func(r *pendingRecord, framed []byte) error {
		uid, ok := uidOf(string(r.base))
		switch {
		case !ok:
			if _, err := os.Lstat(filepath.Join(dir, "new", string(r.base))); err == nil {
				st.Kept++
				kept = append(kept, framed...)
			} else {
				st.Dropped++
			}
		case ix.Covered(uid):
			st.Covered++
		default:
			items = append(items, foldItem{uid, *r, len(framed)})
		}
		return nil
	})
	st.Damaged += damaged
	if err != nil {
		return nil, err
	}
	st.Folded = len(items)
	if len(items) == 0 {
		return kept, nil
	}
	if err := ix.buildFolded(items, workers); err != nil {
		return nil, err
	}
	return kept, ix.reopen()
}

// foldItem is a record to fold: its message's UID, the record, and its
// size in the file.
type foldItem struct {
	uid  uint32
	rec  pendingRecord
	size int
}

// maxFoldWorkers bounds a fold's goroutines.
const maxFoldWorkers = 4

// foldPerWorker is the fewest records worth a goroutine of their own (a
// variable for the tests).
var foldPerWorker = 2000

// buildFolded writes the segments of items: on one goroutine per CPU
// (four at most), each with its own Builder over a run of the records,
// since the postings' table, not the disk, is what a fold waits for. The
// segments are written without fsync: what a crash loses of them is only
// messages to read again (the pending file's truncation may survive it;
// the segments' CRCs cut what did not), and an fsync of megabytes would
// be most of a fold's time.
func (ix *Index) buildFolded(items []foldItem, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, maxFoldWorkers, len(items)/foldPerWorker))
	per := (len(items) + workers - 1) / workers
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		chunk := items[min(w*per, len(items)):min((w+1)*per, len(items))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = ix.buildChunk(chunk)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (ix *Index) buildChunk(items []foldItem) error {
	b := ix.NewBuilder(nil)
	// A word takes about six octets of a record: one allocation for the
	// postings instead of a dozen growing copies.
	size := 0
	for _, it := range items {
		size += it.size
	}
	b.posts = make([]uint32, 0, min(size/6, maxPostings)+MaxWord)
	// And about one distinct term in eight postings (a guess: the table
	// grows beyond it if need be).
	b.terms.presize(min(size/48, maxTerms))
	for i := range items {
		if err := b.addRecord(items[i].uid, &items[i].rec); err != nil {
			return err
		}
	}
	return b.flush()
}

// truncatePending empties the pending file and writes back the records
// kept; the caller holds its lock.
func truncatePending(f *os.File, kept []byte) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	if len(kept) > 0 {
		if _, err := f.WriteAt(kept, 0); err != nil {
			return fmt.Errorf("textindex: %w", err)
		}
	}
	return nil
}
