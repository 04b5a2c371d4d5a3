package listen

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Merge returns one listener that accepts the connections of every
// listener in ls, so that one Limit counts the connections of all the
// services together (max_connections is per daemon, not per port). Each
// connection remembers its listener's Name: ServiceOf finds it again.
// Accept returns the first listener's failure; temporary failures (out
// of descriptors, a client gone before accept) are waited out with a
// growing pause. Close closes every listener.
func Merge(ls []Named) net.Listener { return newFanIn(ls) }

// fanIn is Merge's listener.
type fanIn struct {
	ls    []Named
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

func newFanIn(ls []Named) *fanIn {
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
func (f *fanIn) accept(l Named) {
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

// ServiceOf returns the Name of the listener a connection from Merge came
// in on, looking through wrappers with an Unwrap method (Limit's); def
// for a connection that did not come from Merge.
func ServiceOf(c net.Conn, def string) string {
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
