package listen

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// RejectTimeout bounds how long Limit's reject function may spend writing
// its refusal: a client that does not read cannot hold the goroutine.
const RejectTimeout = 2 * time.Second

// maxRejecting bounds the refusals in flight. Beyond it an over-limit
// connection is closed without a reply, so a flood cannot pile up
// goroutines waiting on RejectTimeout.
const maxRejecting = 64

// Limit wraps a listener with connection limits: at most max connections at
// once and perClient per client IP address (0 or less = unlimited). The
// connections Accept returns count until their first Close; closing one
// again does not count again. An over-limit connection is handed to reject
// (which writes the protocol's refusal, e.g. "421 4.7.0 too many
// connections"), in a goroutine of its own and bounded by a write deadline
// of RejectTimeout, and then closed; Accept never returns it and goes on
// waiting for the next. reject may be nil (the connection is just closed).
// Accept's errors pass through.
//
// Clients are told apart by IP address (IPv4-mapped IPv6 addresses count as
// the IPv4 address); all clients without an IP address (Unix sockets, pipes)
// count as one.
func Limit(l net.Listener, max, perClient int, reject func(net.Conn)) net.Listener {
	return &limitListener{
		Listener:  l,
		max:       max,
		perClient: perClient,
		reject:    reject,
		perIP:     make(map[string]int),
		rejecting: make(chan struct{}, maxRejecting),
	}
}

type limitListener struct {
	net.Listener
	max, perClient int
	reject         func(net.Conn)
	rejecting      chan struct{} // a semaphore of refusals in flight

	mu    sync.Mutex
	total int
	perIP map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		if l.admit(key) {
			return &limitConn{Conn: c, l: l, key: key}, nil
		}
		l.refuse(c)
	}
}

// admit counts a new connection from key if the limits allow it.
func (l *limitListener) admit(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.total >= l.max {
		return false
	}
	if l.perClient > 0 && l.perIP[key] >= l.perClient {
		return false
	}
	l.total++
	l.perIP[key]++
	return true
}

func (l *limitListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[key]--; l.perIP[key] <= 0 {
		delete(l.perIP, key)
	}
}

// refuse hands c to reject and closes it, without holding up Accept.
func (l *limitListener) refuse(c net.Conn) {
	if l.reject == nil {
		c.Close()
		return
	}
	select {
	case l.rejecting <- struct{}{}:
	default:
		c.Close() // too many refusals in flight already
		return
	}
	go func() {
		defer func() { <-l.rejecting }()
		defer c.Close()
		// A failed deadline only means an unbounded write; the refusal
		// is still worth trying, and Close ends it in any case.
		_ = c.SetWriteDeadline(time.Now().Add(RejectTimeout))
		l.reject(c)
	}()
}

// open reports the connections counted now, in total and for key: for tests
// and status output.
func (l *limitListener) open(key string) (total, client int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.perIP[key]
}

// limitConn is a counted connection; its first Close releases the count.
type limitConn struct {
	net.Conn
	l         *limitListener
	key       string
	closeOnce sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.l.release(c.key) })
	return err
}

// Unwrap returns the connection the wrapped listener accepted.
func (c *limitConn) Unwrap() net.Conn { return c.Conn }

// clientKey is the per-client counting key: the IP address, unmapped.
func clientKey(a net.Addr) string {
	if ip, ok := addrIP(a); ok {
		return ip.String()
	}
	return ""
}

// addrIP extracts the IP address of a network address, if it has one.
func addrIP(a net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	switch a := a.(type) {
	case nil:
		return ip, false
	case *net.TCPAddr:
		if a == nil {
			return ip, false
		}
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		if a == nil {
			return ip, false
		}
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.IPAddr:
		if a == nil {
			return ip, false
		}
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			if ip, err = netip.ParseAddr(a.String()); err != nil {
				return ip, false
			}
		} else {
			ip = ap.Addr()
		}
	}
	if !ip.IsValid() {
		return ip, false
	}
	return ip.Unmap().WithZone(""), true
}

// IsLoopback reports whether a client address is 127.0.0.0/8 or ::1
// (IPv4-mapped forms included). Addresses without an IP (Unix sockets,
// pipes) are not loopback.
func IsLoopback(addr net.Addr) bool {
	ip, ok := addrIP(addr)
	return ok && ip.IsLoopback()
}
