package smtpd

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Last raw operation, for telling replies from client bytes in observer.
const (
	opNone int32 = iota
	opRead
	opWrite
)

// watchedConn is a client connection as accepted, below any TLS layer. It
// records the last operation (read or write) so that the observer can tell
// which direction a go-smtp debug event belongs to, closes the connection
// when go-smtp would answer in plaintext after a failed STARTTLS handshake,
// applies the DATA idle timeout, and refuses all I/O once closed, so that
// lines go-smtp has already buffered cannot be acted on after a close.
type watchedConn struct {
	net.Conn

	lastOp   atomic.Int32
	closed   atomic.Bool
	startTLS atomic.Bool  // "220 ... Ready to start TLS" went out in plaintext
	dataIdle atomic.Int64 // a time.Duration: the read timeout while in DATA/BDAT

	heldMu sync.Mutex
	held   []byte // plaintext continuation lines of a reply not yet sent

	done      chan struct{}
	closeOnce sync.Once
}

func newWatchedConn(c net.Conn) *watchedConn {
	return &watchedConn{Conn: c, done: make(chan struct{})}
}

func (c *watchedConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if err := c.flushHeld(); err != nil {
		return 0, err
	}
	if d := time.Duration(c.dataIdle.Load()); d > 0 {
		// Inside DATA every read gets the data timeout afresh: go-smtp
		// sets a deadline only before command lines, so without this a
		// message would have to arrive whole within command_timeout.
		if err := c.Conn.SetReadDeadline(time.Now().Add(d)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	c.lastOp.Store(opRead)
	return n, err
}

func (c *watchedConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if c.startTLS.Load() && len(p) > 0 && p[0] >= '0' && p[0] <= '9' {
		// After "220 Ready to start TLS" the only bytes that may go out
		// are TLS records (whose first byte is a content type, 20-24).
		// A reply in plaintext means go-smtp's handshake failed and it
		// would carry on unencrypted with whatever plaintext it had
		// buffered (the CVE-2011-0411 class): end the connection instead.
		c.Close()
		return 0, net.ErrClosed
	}
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	if isContinuation(p) && len(c.held)+len(p) <= maxHeld {
		// go-smtp writes and flushes a multi-line reply (EHLO's ten
		// lines) one line at a time: ten system calls and ten segments
		// where one does. A continuation line is always followed by the
		// rest of its reply (RFC 5321 §4.2.1), so it waits for the final
		// line and they leave together. A TLS record never starts with a
		// digit, so only plaintext is held.
		c.held = append(c.held, p...)
		c.lastOp.Store(opWrite)
		return len(p), nil
	}
	held := len(c.held)
	out := p
	if held > 0 {
		out = append(c.held, p...)
		c.held = c.held[:0]
	}
	n, err := c.Conn.Write(out)
	if err == nil {
		c.lastOp.Store(opWrite)
	}
	return max(n-held, 0), err
}

// maxHeld bounds the continuation lines held back: an EHLO reply is
// about 200 bytes.
const maxHeld = 4 << 10

// isContinuation reports whether p ends with a reply line "ddd-text" CRLF.
func isContinuation(p []byte) bool {
	if len(p) < 6 || p[len(p)-2] != '\r' || p[len(p)-1] != '\n' {
		return false
	}
	start := bytes.LastIndex(p[:len(p)-2], []byte("\r\n")) + 2
	if start == 1 {
		start = 0
	}
	line := p[start:]
	return len(line) >= 6 && isDigit(line[0]) && isDigit(line[1]) && isDigit(line[2]) && line[3] == '-'
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// flushHeld sends held continuation lines (a read before the final line
// would otherwise wait for a reply the client cannot have in full).
func (c *watchedConn) flushHeld() error {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	return err
}

func (c *watchedConn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return c.Conn.SetDeadline(t)
}

func (c *watchedConn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *watchedConn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return c.Conn.SetWriteDeadline(t)
}

// Close closes the connection once; later calls return nil.
func (c *watchedConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err = c.Conn.Close()
		close(c.done)
	})
	return err
}

// isClosed reports whether Close was called.
func (c *watchedConn) isClosed() bool { return c.closed.Load() }

// oneShot is a listener that hands out one connection and then blocks until
// that connection is closed: the way to run go-smtp's Serve for a single
// connection. Unlike listen.Single it returns the connection unwrapped,
// because go-smtp recognises TLS by the concrete type *tls.Conn.
type oneShot struct {
	conn net.Conn
	done <-chan struct{}

	mu    sync.Mutex
	given bool
}

func (l *oneShot) Accept() (net.Conn, error) {
	l.mu.Lock()
	first := !l.given
	l.given = true
	l.mu.Unlock()
	if first {
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneShot) Close() error   { return nil }
func (l *oneShot) Addr() net.Addr { return l.conn.LocalAddr() }
