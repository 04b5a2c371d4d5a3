package fsx

import (
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDir stands for a directory: a request is a numbered rename, and an
// fsync covers exactly the renames numbered before it started.
type fakeDir struct {
	renames atomic.Int64 // the number of the last rename
	covered atomic.Int64 // the renames made durable by completed fsyncs
	calls   atomic.Int64
	active  atomic.Int32 // fsyncs running now; must never exceed 1
	overlap atomic.Bool
	gate    chan struct{} // if not nil, each fsync waits for a token
	started chan struct{} // if not nil, each fsync announces its start
	fail    func(call int64) error
}

func (d *fakeDir) sync() error {
	call := d.calls.Add(1)
	if d.active.Add(1) > 1 {
		d.overlap.Store(true)
	}
	defer d.active.Add(-1)
	start := d.renames.Load()
	if d.started != nil {
		d.started <- struct{}{}
	}
	if d.gate != nil {
		<-d.gate
	}
	if d.fail != nil {
		if err := d.fail(call); err != nil {
			return err
		}
	}
	// Rounds never overlap, so covered only grows.
	d.covered.Store(start)
	return nil
}

func TestDirSyncerSingleCaller(t *testing.T) {
	d := &fakeDir{}
	s := newSyncer(d.sync)
	for i := 1; i <= 3; i++ {
		n := d.renames.Add(1)
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if d.covered.Load() < n {
			t.Fatalf("call %d: rename %d not covered (covered %d)", i, n, d.covered.Load())
		}
		if got := d.calls.Load(); got != int64(i) {
			t.Fatalf("%d fsyncs after %d sequential calls", got, i)
		}
	}
}

// TestDirSyncerManyGoroutines: every caller returns only after an fsync
// that started after its rename; fsyncs never overlap; and they are
// shared when callers pile up (logged; TestDirSyncerCoalesces checks the
// sharing exactly).
func TestDirSyncerManyGoroutines(t *testing.T) {
	const workers, each = 64, 50
	d := &fakeDir{}
	s := newSyncer(d.sync)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				n := d.renames.Add(1)
				if err := s.Sync(); err != nil {
					errs <- err
					return
				}
				if c := d.covered.Load(); c < n {
					errs <- errors.New("a caller returned before its rename was covered")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if d.overlap.Load() {
		t.Error("two fsyncs ran at once")
	}
	t.Logf("%d fsyncs for %d calls", d.calls.Load(), workers*each)
}

// waitJoined waits (bounded) until n callers wait for the next round.
func waitJoined(t *testing.T, s *DirSyncer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; s.waiting() < n; i++ {
		if time.Now().After(deadline) || i > 1e8 {
			t.Fatalf("%d callers joined, want %d", s.waiting(), n)
		}
		runtime.Gosched()
	}
}

// TestDirSyncerCoalesces: callers arriving while an fsync runs share one
// next fsync, which starts only after the running one ended; errors go to
// every caller of the failed round and to nobody else.
func TestDirSyncerCoalesces(t *testing.T) {
	const joiners = 20
	errBoom := errors.New("boom")
	d := &fakeDir{gate: make(chan struct{}), started: make(chan struct{}),
		fail: func(call int64) error {
			if call == 2 {
				return errBoom
			}
			return nil
		}}
	s := newSyncer(d.sync)
	first := make(chan error, 1)
	go func() { first <- s.Sync() }()
	<-d.started // round 1 runs, and started before any joiner's rename
	results := make(chan error, joiners)
	for i := 0; i < joiners; i++ {
		go func() {
			d.renames.Add(1)
			results <- s.Sync()
		}()
	}
	waitJoined(t, s, joiners)
	if got := d.calls.Load(); got != 1 {
		t.Fatalf("%d fsyncs while the first runs, want 1", got)
	}
	d.gate <- struct{}{} // round 1 ends
	if err := <-first; err != nil {
		t.Fatalf("first caller: %v", err)
	}
	<-d.started // round 2 starts: after round 1, after every joiner's rename
	if d.covered.Load() != 0 {
		t.Fatal("round 1 covered renames made after it started")
	}
	d.gate <- struct{}{}
	for i := 0; i < joiners; i++ {
		if err := <-results; !errors.Is(err, errBoom) {
			t.Errorf("joiner %d: %v, want round 2's error", i, err)
		}
	}
	if got := d.calls.Load(); got != 2 {
		t.Errorf("%d fsyncs, want 2 (one shared by all joiners)", got)
	}
	// Afterwards the syncer is idle: the next call runs its own fsync.
	go func() { <-d.started; d.gate <- struct{}{} }()
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := d.calls.Load(); got != 3 {
		t.Errorf("%d fsyncs, want 3", got)
	}
}

func TestNewDirSyncer(t *testing.T) {
	s := NewDirSyncer(t.TempDir())
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	missing := NewDirSyncer(filepath.Join(t.TempDir(), "missing"))
	if err := missing.Sync(); err == nil {
		t.Error("fsync of a missing directory succeeded")
	}
}
