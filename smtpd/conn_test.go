package smtpd

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// TestIsContinuation: only a plaintext reply line "ddd-" with its CRLF is
// held; final lines, partial lines and TLS records are not.
func TestIsContinuation(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"250-PIPELINING\r\n", true},
		{"250-8BITMIME\r\n", true},
		{"250 SIZE 1000\r\n", false},
		{"250-\r\n", true},
		{"25-\r\n", false},
		{"250-PIPELINING", false},
		{"250-PIPELINING\n", false},
		{"25x-ABC\r\n", false},
		{"354 Go ahead\r\n", false},
		{"250 A\r\n250-B\r\n", true},
		{"250-A\r\n250 B\r\n", false},
		{"\x17\x03\x03\x00\x20250-ABCDEF\r\n", false},
		{"\x16\x03\x01\x02\x00\x01", false},
	}
	for _, tc := range tests {
		if got := isContinuation([]byte(tc.in)); got != tc.want {
			t.Errorf("isContinuation(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// recordingConn records each Write that reaches the socket.
type recordingConn struct {
	net.Conn // nil: only Write and Read are used
	mu       sync.Mutex
	writes   []string
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *recordingConn) Read(p []byte) (int, error) { return copy(p, "QUIT\r\n"), nil }

// TestWatchedConnCoalesces: a multi-line reply leaves in one write; a
// read flushes held lines first; single-line replies pass at once.
func TestWatchedConnCoalesces(t *testing.T) {
	rec := &recordingConn{}
	c := newWatchedConn(rec)
	for _, l := range []string{"250-Hello x\r\n", "250-PIPELINING\r\n", "250 SIZE 10\r\n"} {
		if n, err := c.Write([]byte(l)); n != len(l) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", l, n, err)
		}
		if c.lastOp.Load() != opWrite {
			t.Fatalf("after Write(%q) the last operation is not a write", l)
		}
	}
	if want := []string{"250-Hello x\r\n250-PIPELINING\r\n250 SIZE 10\r\n"}; strings.Join(rec.writes, "|") != strings.Join(want, "|") {
		t.Fatalf("writes %q, want %q", rec.writes, want)
	}
	rec.writes = nil
	c.Write([]byte("250 2.0.0 OK\r\n"))
	c.Write([]byte("250-held\r\n"))
	if len(rec.writes) != 1 {
		t.Fatalf("writes %q, want only the final line", rec.writes)
	}
	buf := make([]byte, 16)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if len(rec.writes) != 2 || rec.writes[1] != "250-held\r\n" {
		t.Fatalf("writes %q, want the held line flushed before the read", rec.writes)
	}
	// Held bytes are bounded.
	rec.writes = nil
	long := "250-" + strings.Repeat("x", maxHeld) + "\r\n"
	c.Write([]byte(long))
	if len(rec.writes) != 1 {
		t.Fatalf("an oversized continuation line was held (%d writes)", len(rec.writes))
	}
}
