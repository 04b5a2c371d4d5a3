package fsx

import (
	"sync"
)

// DirSyncer group-commits the fsyncs of one directory: any number of
// goroutines that have each renamed or linked a name into the directory
// call Sync, and share fsyncs instead of queueing one each.
//
// The rule that keeps it correct: a caller returns only after an fsync
// that started after its own call, so the fsync covers whatever the caller
// did to the directory before calling. When no fsync is running, Sync
// starts one at once. When one is running, it may have started before the
// caller's rename, so the caller joins the next round instead; that round
// starts when the running one ends and covers every caller that joined it.
// However many callers arrive, at most one fsync runs and one waits, so n
// concurrent commits cost about two fsyncs, not n.
//
// A DirSyncer is safe for concurrent use. Every caller of a round gets
// that round's error.
type DirSyncer struct {
	sync func() error

	mu      sync.Mutex
	running bool       // a round's fsync is in progress
	next    *syncRound // the round that starts when the running one ends
}

// syncRound is one fsync and the callers waiting for it.
type syncRound struct {
	done   chan struct{} // closed when err is set
	err    error
	joined int // callers waiting for this round (under DirSyncer.mu)
}

// NewDirSyncer returns a DirSyncer for the directory dir (SyncDir).
func NewDirSyncer(dir string) *DirSyncer {
	return newSyncer(func() error { return SyncDir(dir) })
}

// newSyncer returns a DirSyncer that calls fn for each round (tests count
// and order the calls through it).
func newSyncer(fn func() error) *DirSyncer {
	return &DirSyncer{sync: fn}
}

// Sync returns once an fsync of the directory that started after the call
// has completed, with that fsync's error.
func (s *DirSyncer) Sync() error {
	s.mu.Lock()
	if !s.running {
		s.running = true
		s.mu.Unlock()
		r := &syncRound{done: make(chan struct{})}
		s.run(r)
		return r.err
	}
	if s.next == nil {
		s.next = &syncRound{done: make(chan struct{})}
	}
	r := s.next
	r.joined++
	s.mu.Unlock()
	<-r.done
	return r.err
}

// run performs round r and hands over to the next round, if callers
// joined one meanwhile. The next round runs on its own goroutine so that
// r's caller returns as soon as its own fsync is done.
func (s *DirSyncer) run(r *syncRound) {
	r.err = s.sync()
	close(r.done)
	s.mu.Lock()
	next := s.next
	s.next = nil
	if next == nil {
		s.running = false
	}
	// Detaching next under the lock is what makes it "start" here: from
	// now on newcomers join a fresh round, and next's fsync, called below,
	// begins after every request that joined it.
	s.mu.Unlock()
	if next != nil {
		go s.run(next)
	}
}

// waiting reports how many callers wait for the next round (for tests).
func (s *DirSyncer) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == nil {
		return 0
	}
	return s.next.joined
}
