package listen

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// limitServer runs Accept on a limited loopback listener and hands out what
// it accepts.
type limitServer struct {
	ln       net.Listener
	limited  *limitListener
	accepted chan net.Conn
	done     chan error
}

func startLimitServer(t *testing.T, max, perClient int, reject func(net.Conn)) *limitServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &limitServer{
		ln:       ln,
		limited:  Limit(ln, max, perClient, reject).(*limitListener),
		accepted: make(chan net.Conn, 16),
		done:     make(chan error, 1),
	}
	go func() {
		for {
			c, err := s.limited.Accept()
			if err != nil {
				s.done <- err
				return
			}
			s.accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
		close(s.accepted)
		for c := range s.accepted {
			c.Close()
		}
	})
	return s
}

func (s *limitServer) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.ln.Addr().String(), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// next returns the next accepted connection and checks it is client's.
func (s *limitServer) next(t *testing.T, client net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-s.accepted:
		if c.RemoteAddr().String() != client.LocalAddr().String() {
			t.Fatalf("accepted %v, want the connection from %v", c.RemoteAddr(), client.LocalAddr())
		}
		return c
	case <-time.After(waitLimit):
		t.Fatalf("connection from %v not accepted", client.LocalAddr())
		return nil
	}
}

// refused checks that client got the refusal and then the end.
func refused(t *testing.T, client net.Conn) {
	t.Helper()
	client.SetReadDeadline(time.Now().Add(waitLimit))
	all, err := io.ReadAll(client)
	if err != nil || string(all) != "421 too many\r\n" {
		t.Fatalf("refused client read %q, %v", all, err)
	}
}

func write421(c net.Conn) { c.Write([]byte("421 too many\r\n")) }

func (s *limitServer) counts(t *testing.T, wantTotal, wantLoopback int) {
	t.Helper()
	if total, client := s.limited.open("127.0.0.1"); total != wantTotal || client != wantLoopback {
		t.Fatalf("open = %d total, %d from 127.0.0.1; want %d, %d", total, client, wantTotal, wantLoopback)
	}
}

func TestLimitTotal(t *testing.T) {
	s := startLimitServer(t, 2, 0, write421)
	c1, c2 := s.dial(t), s.dial(t)
	s1 := s.next(t, c1)
	s.next(t, c2)
	s.counts(t, 2, 2)

	c3 := s.dial(t)
	refused(t, c3)

	// A slot frees when a connection closes; the next accepted
	// connection is then c4, so c3 was never handed out.
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	s.counts(t, 1, 1)
	c4 := s.dial(t)
	s.next(t, c4)
	s.counts(t, 2, 2)

	// Closing again releases nothing more.
	if err := s1.Close(); err == nil {
		t.Error("second Close reported no error")
	}
	s.counts(t, 2, 2)
	refused(t, s.dial(t))

	// Accept's errors pass through.
	s.ln.Close()
	select {
	case err := <-s.done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v", err)
		}
		s.done <- err // for the cleanup
	case <-time.After(waitLimit):
		t.Fatal("Accept did not return after Close")
	}
}

func TestLimitPerClient(t *testing.T) {
	s := startLimitServer(t, 0, 1, write421)
	c1 := s.dial(t)
	s1 := s.next(t, c1)
	refused(t, s.dial(t))
	s1.Close()
	c3 := s.dial(t)
	s.next(t, c3)
	s.counts(t, 1, 1)
}

// TestLimitSlowRejectDoesNotBlockAccept holds a refusal in flight and
// shows that Accept goes on meanwhile.
func TestLimitSlowRejectDoesNotBlockAccept(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := func(c net.Conn) {
		once.Do(func() { close(started) })
		select {
		case <-release:
		case <-time.After(waitLimit):
		}
		write421(c)
	}
	s := startLimitServer(t, 1, 0, slow)
	c1 := s.dial(t)
	s1 := s.next(t, c1)
	c2 := s.dial(t)
	select {
	case <-started:
	case <-time.After(waitLimit):
		t.Fatal("reject not called")
	}
	s1.Close()
	c3 := s.dial(t)
	s.next(t, c3) // accepted while c2's refusal is still held
	close(release)
	refused(t, c2)
}

// fakeListener hands out connections the test makes, so that clients can
// have any address.
type fakeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *fakeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *fakeListener) Addr() net.Addr { return pipeAddr("fake") }

// fakeConn is one end of a net.Pipe with a chosen remote address; it
// records the write deadline set on it.
type fakeConn struct {
	net.Conn
	remote net.Addr

	mu            sync.Mutex
	writeDeadline time.Time
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }

func (c *fakeConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func TestLimitCountsByIP(t *testing.T) {
	ip := func(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 1000} }
	a, b, c := "192.0.2.1", "2001:db8::2", "198.51.100.3"
	steps := []struct {
		remote net.Addr
		admit  bool
	}{
		{ip(a), true},
		{ip(a), true},
		{ip(a), false},             // a's third: per-client limit 2
		{ip(b), true},              // b has its own count
		{ip("::ffff:" + a), false}, // a again, IPv4-mapped
		{ip(c), true},              // total 4: the max
		{ip(c), false},             // total limit
		{&net.UnixAddr{Name: "@", Net: "unix"}, false}, // total limit for anyone
	}
	fl := &fakeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	rejected := make(chan *fakeConn, len(steps))
	l := Limit(fl, 4, 2, func(c net.Conn) { rejected <- c.(*fakeConn) })
	defer l.Close()
	accepted := make(chan net.Conn, len(steps))
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for i, st := range steps {
		mine, theirs := net.Pipe()
		defer theirs.Close()
		fc := &fakeConn{Conn: mine, remote: st.remote}
		before := time.Now()
		fl.conns <- fc
		select {
		case got := <-accepted:
			if !st.admit {
				t.Fatalf("step %d (%v): accepted, want refused", i, st.remote)
			}
			if got.RemoteAddr() != st.remote {
				t.Fatalf("step %d: accepted %v", i, got.RemoteAddr())
			}
		case got := <-rejected:
			if st.admit {
				t.Fatalf("step %d (%v): refused, want accepted", i, st.remote)
			}
			got.mu.Lock()
			d := got.writeDeadline
			got.mu.Unlock()
			if d.Before(before.Add(RejectTimeout)) || d.After(time.Now().Add(RejectTimeout)) {
				t.Fatalf("step %d: write deadline %v, want %v after the refusal", i, d, RejectTimeout)
			}
		case <-time.After(waitLimit):
			t.Fatalf("step %d: neither accepted nor refused", i)
		}
	}
}

// TestLimitUnlimited: 0 means no limit, and a nil reject just closes.
func TestLimitUnlimited(t *testing.T) {
	s := startLimitServer(t, 0, 0, nil)
	for range 5 {
		c := s.dial(t)
		s.next(t, c)
	}
	s.counts(t, 5, 5)

	n := startLimitServer(t, 1, 0, nil)
	c1 := n.dial(t)
	n.next(t, c1)
	c2 := n.dial(t)
	c2.SetReadDeadline(time.Now().Add(waitLimit))
	if b, err := bufio.NewReader(c2).ReadByte(); err != io.EOF {
		t.Fatalf("over-limit conn with nil reject read %q, %v; want EOF", b, err)
	}
}
