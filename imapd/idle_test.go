package imapd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleFixture gives root's INBOX n small messages, written straight into
// cur/ (no fsync: a test fixture, not a delivery).
func idleFixture(t testing.TB, root string, n int) {
	t.Helper()
	for i := range n {
		body := fmt.Sprintf("From: a@example.org\r\nTo: b@example.org\r\nSubject: message %d\r\n\r\nbody %d\r\n", i, i)
		name := fmt.Sprintf("1700000000.M%dP1Q%d.idletest,S=%d:2,S", i, i, len(body))
		if err := os.WriteFile(filepath.Join(root, "cur", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// countInotify returns the inotify instances this process holds.
func countInotify(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "anon_inode:inotify" {
			n++
		}
	}
	return n
}

// idleUsers adds n users, idle0000…, each with msgs messages in INBOX,
// and returns their Maildirs.
func idleUsers(e *testEnv, n, msgs int) []string {
	roots := make([]string, n)
	for i := range n {
		roots[i] = e.addUser(fmt.Sprintf("idle%04d@example.org", i), "pw")
		idleFixture(e.t, roots[i], msgs)
	}
	return roots
}

// idleSessions logs every user in, selects INBOX and starts IDLE; it
// returns the connections, each past the "+ idling" continuation.
func idleSessions(e *testEnv, n int) []net.Conn {
	return startIdle(e, selectSessions(e, n))
}

// selectSessions logs every user in and selects INBOX.
func selectSessions(e *testEnv, n int) []*client {
	cs := make([]*client, n)
	for i := range n {
		c := e.dial()
		c.line()
		must(e.t, last(c.cmd("l", fmt.Sprintf("LOGIN idle%04d@example.org pw", i))), "l OK")
		must(e.t, last(c.cmd("s", "SELECT INBOX")), "s OK")
		cs[i] = c
	}
	return cs
}

// startIdle sends IDLE on every connection and waits for the
// continuation; the clients' buffers are dropped.
func startIdle(e *testEnv, cs []*client) []net.Conn {
	conns := make([]net.Conn, len(cs))
	for i, c := range cs {
		c.send("i IDLE\r\n")
		must(e.t, c.line(), "+ ")
		if c.r.Buffered() != 0 {
			e.t.Fatalf("session %d: unexpected data after the continuation", i)
		}
		conns[i] = c.conn
	}
	return conns
}

// idleLine reads one line from an idling connection (no buffer kept).
func idleLine(t testing.TB, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout))
	var b []byte
	var one [1]byte
	for len(b) < 1000 {
		if _, err := c.Read(one[:]); err != nil {
			t.Fatalf("read: %q, %v", b, err)
		}
		b = append(b, one[0])
		if strings.HasSuffix(string(b), "\r\n") {
			return strings.TrimSuffix(string(b), "\r\n")
		}
	}
	t.Fatalf("line too long: %q", b)
	return ""
}

// TestIdleManyMailboxes: more idling sessions on distinct Maildirs than
// fs.inotify.max_user_instances allows instances (128 here) all idle on
// inotify, one instance for the process, and each hears of its own
// delivery.
func TestIdleManyMailboxes(t *testing.T) {
	const n = 150
	e := newTestEnv(t, nil)
	roots := idleUsers(e, n, 2)
	conns := idleSessions(e, n)
	if got := countInotify(t); got != 1 {
		t.Fatalf("%d idling sessions on %d Maildirs hold %d inotify instances, want 1", n, n, got)
	}
	if strings.Contains(e.logs.String(), "fallback=polling") {
		t.Fatal("a session fell back to polling")
	}
	for i := range n {
		deliver(t, roots[i], "", fixture1)
	}
	for i, c := range conns {
		if l := idleLine(t, c); l != "* 3 EXISTS" {
			t.Fatalf("session %d: %q, want * 3 EXISTS", i, l)
		}
	}
	for i, c := range conns {
		_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Write([]byte("DONE\r\n")); err != nil {
			t.Fatal(err)
		}
		// "* 1 RECENT" for an IMAP4rev1 client, then the tagged OK.
		for l := idleLine(t, c); !strings.HasPrefix(l, "i "); l = idleLine(t, c) {
			if !strings.HasPrefix(l, "* ") {
				t.Fatalf("session %d: %q", i, l)
			}
		}
	}
}

// memSample is what TestIdleMemory compares before and after.
type memSample struct {
	rss, pss         int64 // KB, /proc/self
	heapInuse, stack uint64
	heapAlloc, sys   uint64
	goroutines       int
}

func sampleMem(t testing.TB, gc bool) memSample {
	t.Helper()
	if gc {
		runtime.GC()
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{heapInuse: ms.HeapInuse, stack: ms.StackInuse, heapAlloc: ms.HeapAlloc, sys: ms.Sys, goroutines: runtime.NumGoroutine()}
	s.rss = procField(t, "/proc/self/status", "VmRSS:")
	s.pss = procField(t, "/proc/self/smaps_rollup", "Pss:")
	return s
}

// procField returns the value in KB of a "Name: n kB" line.
func procField(t testing.TB, file, name string) int64 {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("%s: no %s", file, name)
	return 0
}

// TestIdleMemory measures what an idling session costs: n users (50 by
// default, IDLE_MEMORY_N to change) each with a 50-message INBOX log in,
// SELECT and IDLE over loopback; heap, stacks, RSS and PSS of the process
// are compared before and after. The test clients' sockets are counted
// too (their buffers are dropped). Without the race detector the live
// heap and stacks per session must stay under idleHeapBound.
func TestIdleMemory(t *testing.T) {
	n := 50
	if s := os.Getenv("IDLE_MEMORY_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 5000 {
			t.Fatalf("IDLE_MEMORY_N=%q", s)
		}
		n = v
	}
	if os.Getenv("IDLE_MEMORY_PROFILE") != "" {
		saved := runtime.MemProfileRate
		runtime.MemProfileRate = 1
		t.Cleanup(func() { runtime.MemProfileRate = saved })
	}
	e := newTestEnv(t, nil)
	idleUsers(e, n, 50)
	// Warm up what every process has once (pools, the inotify reader,
	// the logger) with one session that comes and goes.
	e.addUser("warm@example.org", "pw")
	w := e.dial()
	w.line()
	must(t, last(w.cmd("l", "LOGIN warm@example.org pw")), "l OK")
	must(t, last(w.cmd("s", "SELECT INBOX")), "s OK")
	w.send("i IDLE\r\n")
	must(t, w.line(), "+ ")
	w.send("DONE\r\n")
	w.until("i")

	before := sampleMem(t, true)
	cs := selectSessions(e, n)
	selected := sampleMem(t, true)
	conns := startIdle(e, cs)
	cs = nil
	raw := sampleMem(t, false)
	after := sampleMem(t, true)
	if p := os.Getenv("IDLE_MEMORY_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) / 1024 }
	t.Logf("%d idling sessions, per session: heap in use %.1f KB (live %.1f KB), stacks %.1f KB, goroutines %.2f; "+
		"RSS %.1f KB, PSS %.1f KB (no GC forced: RSS %.1f KB, PSS %.1f KB); inotify instances %d",
		n, per(after.heapInuse, before.heapInuse), per(after.heapAlloc, before.heapAlloc), per(after.stack, before.stack),
		float64(after.goroutines-before.goroutines)/float64(n),
		float64(after.rss-before.rss)/float64(n), float64(after.pss-before.pss)/float64(n),
		float64(raw.rss-before.rss)/float64(n), float64(raw.pss-before.pss)/float64(n), countInotify(t))
	t.Logf("%d selected sessions, before IDLE, per session: heap in use %.1f KB (live %.1f KB), stacks %.1f KB, goroutines %.2f; RSS %.1f KB",
		n, per(selected.heapInuse, before.heapInuse), per(selected.heapAlloc, before.heapAlloc), per(selected.stack, before.stack),
		float64(selected.goroutines-before.goroutines)/float64(n), float64(selected.rss-before.rss)/float64(n))
	if !raceEnabled {
		if kb := per(after.heapAlloc+after.stack, before.heapAlloc+before.stack); kb > idleHeapBound {
			t.Errorf("live heap and stacks per idling session %.1f KB, want at most %d KB", kb, idleHeapBound)
		}
	}
	for _, c := range conns {
		_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Write([]byte("DONE\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		for l := idleLine(t, c); !strings.HasPrefix(l, "i "); l = idleLine(t, c) {
			if !strings.HasPrefix(l, "* ") {
				t.Fatalf("session %d: %q", i, l)
			}
		}
	}
}

// idleHeapBound is the most live heap and stack an idling session with a
// 50-message mailbox may hold, in KB. Measured: about 38 (live heap 28,
// of which ~18 is the engine's Mailbox and ~2 the view; stacks 10); it
// was about 90 with a write and a read buffer per session.
const idleHeapBound = 64
