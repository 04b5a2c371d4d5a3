package deliver

import (
	"sync"
	"time"

	"mailroom/spool"
)

// task is one unit of work: a queued message, or a maildrop file to pick
// up.
type task struct {
	id   spool.ID
	drop bool
}

// scheduler hands tasks to workers so that a task runs on one worker at a
// time: a task added while it runs is run again after, once. Tasks that
// report a next time wait for it (deferred recipients) unless an event
// or a rescan asks for them sooner.
type scheduler struct {
	mu      sync.Mutex
	cond    *sync.Cond
	ready   []task
	queued  map[task]bool      // in ready
	running map[task]bool      // on a worker; true: run again after
	waiting map[task]time.Time // not before this time
	stopped bool
	changed chan struct{} // the earliest waiting time may have changed
}

func (s *scheduler) init() {
	s.cond = sync.NewCond(&s.mu)
	s.queued = map[task]bool{}
	s.running = map[task]bool{}
	s.waiting = map[task]time.Time{}
	s.changed = make(chan struct{}, 1)
}

// add makes t ready now.
func (s *scheduler) add(t task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(t)
}

func (s *scheduler) addLocked(t task) {
	if s.stopped || s.queued[t] {
		return
	}
	if _, ok := s.running[t]; ok {
		s.running[t] = true
		return
	}
	delete(s.waiting, t)
	s.queued[t] = true
	s.ready = append(s.ready, t)
	s.cond.Signal()
}

// addUnlessWaiting makes t ready unless it waits for a known time (a
// rescan must not defeat the backoff).
func (s *scheduler) addUnlessWaiting(t task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.waiting[t]; ok {
		return
	}
	s.addLocked(t)
}

// take waits for a ready task; false once stopped.
func (s *scheduler) take() (task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.ready) == 0 && !s.stopped {
		s.cond.Wait()
	}
	if s.stopped {
		return task{}, false
	}
	t := s.ready[0]
	s.ready[0] = task{}
	s.ready = s.ready[1:]
	delete(s.queued, t)
	s.running[t] = false
	return t, true
}

// done ends a run of t; next, if not zero, is when t wants to run again.
func (s *scheduler) done(t task, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	again := s.running[t]
	delete(s.running, t)
	if again {
		s.addLocked(t)
		return
	}
	if !next.IsZero() && !s.stopped {
		s.waiting[t] = next
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

// untilNext is how long until the earliest waiting task is due (an hour
// when none waits: the loop wakes on changed anyway).
func (s *scheduler) untilNext(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := time.Hour
	for _, at := range s.waiting {
		d = min(d, at.Sub(now))
	}
	return max(d, 0)
}

// releaseDue makes every task whose time has come ready.
func (s *scheduler) releaseDue(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, at := range s.waiting {
		if !at.After(now) {
			s.addLocked(t)
		}
	}
}

// stop wakes every worker and makes take return false; tasks on workers
// finish.
func (s *scheduler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.cond.Broadcast()
}
