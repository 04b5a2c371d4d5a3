package listen

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// waitLimit bounds every wait of these tests; none should come near it.
const waitLimit = 10 * time.Second

// loopbackPair returns the two ends of a TCP connection over 127.0.0.1.
func loopbackPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

type acceptResult struct {
	c   net.Conn
	err error
}

// acceptAsync runs one Accept in a goroutine.
func acceptAsync(l net.Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := l.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

func waitAccept(t *testing.T, ch <-chan acceptResult) acceptResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(waitLimit):
		t.Fatal("Accept did not return")
		return acceptResult{}
	}
}

func TestSingleReturnsConnOnceThenWaitsForItsClose(t *testing.T) {
	client, server := loopbackPair(t)
	l := Single(server)
	if l.Addr().String() != server.LocalAddr().String() {
		t.Errorf("Addr = %v, want %v", l.Addr(), server.LocalAddr())
	}
	got, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got.RemoteAddr().String() != client.LocalAddr().String() {
		t.Fatalf("Accept returned a conn from %v, want %v", got.RemoteAddr(), client.LocalAddr())
	}
	if u, ok := got.(interface{ Unwrap() net.Conn }); !ok || u.Unwrap() != server {
		t.Error("Unwrap does not return the conn Single was given")
	}
	second := acceptAsync(l)
	select {
	case r := <-second:
		t.Fatalf("second Accept returned %v, %v while the conn is open", r.c, r.err)
	default:
	}
	if _, err := got.Write([]byte("bye\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := got.Close(); err != nil {
		t.Fatal(err)
	}
	if r := waitAccept(t, second); !errors.Is(r.err, net.ErrClosed) || r.c != nil {
		t.Fatalf("second Accept = %v, %v; want net.ErrClosed", r.c, r.err)
	}
	// The peer sees the end of the session.
	client.SetReadDeadline(time.Now().Add(waitLimit))
	all, err := io.ReadAll(client)
	if err != nil || string(all) != "bye\r\n" {
		t.Fatalf("client read %q, %v", all, err)
	}
	if r := waitAccept(t, acceptAsync(l)); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after the end = %v", r.err)
	}
	if err := got.Close(); err == nil {
		t.Error("second Close of the conn reported no error")
	}
}

func TestSingleCloseUnblocksAccept(t *testing.T) {
	client, server := loopbackPair(t)
	l := Single(server)
	got, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	waiting := acceptAsync(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if r := waitAccept(t, waiting); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after listener Close = %v", r.err)
	}
	// The session goes on: closing the listener does not close it.
	if _, err := got.Write([]byte("still here\n")); err != nil {
		t.Fatalf("conn closed with the listener: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(waitLimit))
	line, err := bufio.NewReader(client).ReadString('\n')
	if err != nil || line != "still here\n" {
		t.Fatalf("client read %q, %v", line, err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second listener Close: %v", err)
	}
}

func TestSingleClosedBeforeAccept(t *testing.T) {
	_, server := loopbackPair(t)
	l := Single(server)
	l.Close()
	if c, err := l.Accept(); !errors.Is(err, net.ErrClosed) || c != nil {
		t.Fatalf("Accept on a closed listener = %v, %v", c, err)
	}
}

// TestSingleServeLoop runs the accept loop a daemon (or go-smtp) runs: it
// serves the one session and ends with net.ErrClosed when it is over.
func TestSingleServeLoop(t *testing.T) {
	client, server := loopbackPair(t)
	l := Single(server)
	served := make(chan error, 1)
	go func() {
		for range 3 { // one session, then the end; a third turn is a bug
			c, err := l.Accept()
			if err != nil {
				served <- err
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("echo " + line))
			}()
		}
		served <- errors.New("Accept returned more than one connection")
	}()
	client.Write([]byte("hi\n"))
	client.SetReadDeadline(time.Now().Add(waitLimit))
	all, err := io.ReadAll(client)
	if err != nil || string(all) != "echo hi\n" {
		t.Fatalf("client read %q, %v", all, err)
	}
	select {
	case err := <-served:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("serve loop ended with %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("serve loop did not end")
	}
}
