package listen

import (
	"net"
	"sync"
)

// Single turns one connection into a net.Listener that returns it once, then
// blocks until that connection is closed and then returns net.ErrClosed: so a
// daemon's normal Serve(listener) loop (go-smtp's too) also serves inetd and
// Accept=yes, and returns when the session is over. Closing the listener
// unblocks Accept too (with net.ErrClosed) but does not close the
// connection: that is the session's to close.
//
// The connection Accept returns is c wrapped so that its Close is observed;
// its Unwrap method returns c.
func Single(c net.Conn) net.Listener {
	return &singleListener{
		conn:   &singleConn{Conn: c, done: make(chan struct{})},
		closed: make(chan struct{}),
	}
}

type singleListener struct {
	conn *singleConn

	mu        sync.Mutex
	handedOut bool

	closed    chan struct{} // closed by Close
	closeOnce sync.Once
}

func (l *singleListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	l.mu.Lock()
	first := !l.handedOut
	l.handedOut = true
	l.mu.Unlock()
	if first {
		return l.conn, nil
	}
	select {
	case <-l.conn.done:
	case <-l.closed:
	}
	return nil, net.ErrClosed
}

func (l *singleListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *singleListener) Addr() net.Addr { return l.conn.LocalAddr() }

// singleConn is the connection of a Single listener; done is closed by its
// first Close.
type singleConn struct {
	net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (c *singleConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { close(c.done) })
	return err
}

// Unwrap returns the connection Single was given.
func (c *singleConn) Unwrap() net.Conn { return c.Conn }
