package remote

import (
	"context"
	"sync"
	"time"
)

// pool caches idle sessions by endpoint, so consecutive messages to one
// host share a connection (Postfix's scache): each is closed after
// idleTimeout unused or maxReuse transactions.
type pool struct {
	idleTimeout time.Duration
	maxReuse    int

	mu     sync.Mutex
	idle   map[string][]*idleSession
	closed bool
}

type idleSession struct {
	s     *session
	timer *time.Timer
}

func newPool(idleTimeout time.Duration, maxReuse int) *pool {
	return &pool{idleTimeout: idleTimeout, maxReuse: maxReuse, idle: map[string][]*idleSession{}}
}

// get takes an idle session for key, the most recently used first.
func (p *pool) get(key string) *session {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.idle[key]
	for len(list) > 0 {
		is := list[len(list)-1]
		list = list[:len(list)-1]
		if is.timer.Stop() {
			p.setList(key, list)
			return is.s
		}
		// Its timer fired and expire is waiting for the lock: let it
		// have this one.
	}
	p.setList(key, list)
	return nil
}

func (p *pool) setList(key string, list []*idleSession) {
	if len(list) == 0 {
		delete(p.idle, key)
		return
	}
	p.idle[key] = list
}

// put returns a session after a transaction; a worn-out one is closed.
func (p *pool) put(s *session) {
	p.mu.Lock()
	if p.closed || s.uses >= p.maxReuse {
		p.mu.Unlock()
		s.close()
		return
	}
	is := &idleSession{s: s}
	is.timer = time.AfterFunc(p.idleTimeout, func() { p.expire(s.key, is) })
	p.idle[s.key] = append(p.idle[s.key], is)
	p.mu.Unlock()
}

// expire closes an idle session whose time is up, unless get took it.
func (p *pool) expire(key string, is *idleSession) {
	p.mu.Lock()
	list := p.idle[key]
	found := false
	for i, x := range list {
		if x == is {
			list = append(list[:i:i], list[i+1:]...)
			found = true
			break
		}
	}
	p.setList(key, list)
	p.mu.Unlock()
	if found {
		is.s.close()
	}
}

// closeAll closes every idle session and any put later.
func (p *pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	var all []*idleSession
	for k, list := range p.idle {
		for _, is := range list {
			if is.timer.Stop() {
				all = append(all, is)
			}
		}
		delete(p.idle, k)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, is := range all {
		wg.Go(is.s.close)
	}
	wg.Wait()
}

// idleCount is the number of cached sessions (tests).
func (p *pool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.idle {
		n += len(l)
	}
	return n
}

// limiter bounds the sessions in use per destination.
type limiter struct {
	max int
	mu  sync.Mutex
	sem map[string]*destSem
}

type destSem struct {
	ch    chan struct{}
	users int // holders and waiters; the entry goes when none is left
}

func newLimiter(max int) *limiter {
	return &limiter{max: max, sem: map[string]*destSem{}}
}

// acquire waits for a slot for dest; release gives it back.
func (l *limiter) acquire(ctx context.Context, dest string) (release func(), err error) {
	l.mu.Lock()
	d := l.sem[dest]
	if d == nil {
		d = &destSem{ch: make(chan struct{}, l.max)}
		l.sem[dest] = d
	}
	d.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		d.users--
		if d.users == 0 {
			delete(l.sem, dest)
		}
		l.mu.Unlock()
	}
	select {
	case d.ch <- struct{}{}:
		return func() { <-d.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
