package smtpd

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"mailroom/internal/listen"
)

// fanIn merges listeners into one, so that listen.Limit counts the
// connections of every service together (max_connections is per listener
// set). Each connection carries the name of its listener's service.
type fanIn struct {
	ls    []listen.Named
	conns chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

// serviceConn is an accepted connection and its service.
type serviceConn struct {
	net.Conn
	service string
}

// Unwrap returns the accepted connection.
func (c *serviceConn) Unwrap() net.Conn { return c.Conn }

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

func (f *fanIn) accept(l listen.Named) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if !temporary(err) {
				f.errs <- err
				return
			}
			// Out of descriptors or an aborted handshake: wait a little,
			// as net/http does, rather than give up the listener.
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
		case f.conns <- &serviceConn{Conn: c, service: l.Name}:
		case <-f.done:
			c.Close()
			return
		}
	}
}

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

// serviceOf finds the service a connection from fanIn belongs to, through
// the wrappers of listen.Limit.
func serviceOf(c net.Conn) string {
	for c != nil {
		if sc, ok := c.(*serviceConn); ok {
			return sc.service
		}
		u, ok := c.(interface{ Unwrap() net.Conn })
		if !ok {
			break
		}
		c = u.Unwrap()
	}
	return ServiceSMTP
}
