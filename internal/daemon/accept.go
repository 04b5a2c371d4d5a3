package daemon

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"mailroom/internal/listen"
)

// fanIn merges the listeners into one, so that one listen.Limit counts
// the connections of every service together, and tags each connection
// with its listener's service.
type fanIn struct {
	ls    []listen.Named
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

// taggedConn is an accepted connection and the service it came in on.
type taggedConn struct {
	net.Conn
	service string
}

// Unwrap returns the accepted connection.
func (c *taggedConn) Unwrap() net.Conn { return c.Conn }

func newFanIn(ls []listen.Named) *fanIn {
	f := &fanIn{
		ls:    ls,
		conns: make(chan net.Conn),
		errs:  make(chan error, len(ls)),
		done:  make(chan struct{}),
	}
	for _, l := range ls {
		go f.accept(l)
	}
	return f
}

// accept feeds one listener's connections in until it fails or the fan-in
// is closed.
func (f *fanIn) accept(l listen.Named) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if !temporary(err) {
				f.errs <- err
				return
			}
			// Out of descriptors, or a client gone before accept: wait a
			// little and go on rather than give up the listener.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
				continue
			case <-f.done:
				return
			}
		}
		backoff = 0
		select {
		case f.conns <- &taggedConn{Conn: c, service: l.Name}:
		case <-f.done:
			_ = c.Close()
			return
		}
	}
}

// Accept returns the next connection of any listener, or the first
// listener's error; net.ErrClosed once closed.
func (f *fanIn) Accept() (net.Conn, error) {
	select {
	case c := <-f.conns:
		return c, nil
	case err := <-f.errs:
		select {
		case <-f.done:
			return nil, net.ErrClosed
		default:
		}
		return nil, err
	case <-f.done:
		return nil, net.ErrClosed
	}
}

// Close closes every listener; connections already accepted stay open.
func (f *fanIn) Close() error {
	var errs []error
	f.once.Do(func() {
		close(f.done)
		for _, l := range f.ls {
			if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

func (f *fanIn) Addr() net.Addr {
	if len(f.ls) == 0 {
		return nil
	}
	return f.ls[0].Addr()
}

// temporary reports whether an Accept error passes by itself.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// serviceOf finds the service of a connection from a fanIn through the
// wrappers of listen.Limit; def when it has none.
func serviceOf(c net.Conn, def string) string {
	for c != nil {
		if tc, ok := c.(*taggedConn); ok {
			return tc.service
		}
		u, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		c = u.Unwrap()
	}
	return def
}
