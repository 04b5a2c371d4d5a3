package listen

import (
	"errors"
	"net"
	"testing"
	"time"
)

func loopbackListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// acceptOne accepts a connection from l within a bound.
func acceptOne(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		got <- result{c, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		t.Cleanup(func() { _ = r.c.Close() })
		return r.c
	case <-time.After(10 * time.Second):
		t.Fatal("Accept: nothing within 10s")
		return nil
	}
}

func TestMergeTagsEachConnectionWithItsService(t *testing.T) {
	a, b := loopbackListener(t), loopbackListener(t)
	merged := Merge([]Named{{Name: "imap", Listener: a}, {Name: "imaps", Listener: b}})
	// Through Limit as the daemons use it: ServiceOf sees through its wrapper.
	limited := Limit(merged, 10, 10, nil)
	defer limited.Close()

	for _, tc := range []struct {
		addr net.Addr
		want string
	}{{b.Addr(), "imaps"}, {a.Addr(), "imap"}, {b.Addr(), "imaps"}} {
		client, err := net.Dial("tcp", tc.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		c := acceptOne(t, limited)
		if got := ServiceOf(c, "default"); got != tc.want {
			t.Errorf("connection to %v: ServiceOf = %q, want %q", tc.addr, got, tc.want)
		}
		if c.LocalAddr().String() != tc.addr.String() {
			t.Errorf("connection to %v arrived as %v", tc.addr, c.LocalAddr())
		}
	}
	if got := ServiceOf(&net.TCPConn{}, "default"); got != "default" {
		t.Errorf("ServiceOf a connection Merge never saw = %q, want the default", got)
	}
	if merged.Addr().String() != a.Addr().String() {
		t.Errorf("Addr = %v, want the first listener's %v", merged.Addr(), a.Addr())
	}
}

func TestMergeCloseClosesEveryListener(t *testing.T) {
	a, b := loopbackListener(t), loopbackListener(t)
	merged := Merge([]Named{{Name: "pop3", Listener: a}, {Name: "pop3s", Listener: b}})
	if err := merged.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := merged.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	for _, l := range []net.Listener{a, b} {
		if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("listener %v after Close: Accept = %v, want net.ErrClosed", l.Addr(), err)
		}
	}
	if err := merged.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A listener that fails for good ends the merged Accept with its error.
func TestMergeReportsAListenerFailure(t *testing.T) {
	a := loopbackListener(t)
	broken := &failingListener{Listener: loopbackListener(t), err: errors.New("listener broke")}
	merged := Merge([]Named{{Name: "smtp", Listener: a}, {Name: "submission", Listener: broken}})
	defer merged.Close()
	if _, err := merged.Accept(); err == nil || err.Error() != "listener broke" {
		t.Errorf("Accept = %v, want the failing listener's error", err)
	}
}

type failingListener struct {
	net.Listener
	err error
}

func (l *failingListener) Accept() (net.Conn, error) { return nil, l.err }
