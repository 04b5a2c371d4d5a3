package pop3d

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// benchFill puts n empty messages into root's cur/, named as bench/mailbench
// mkmaildir (and Dovecot) names them.
func benchFill(b *testing.B, root string, n int) {
	b.Helper()
	for i := range n {
		size := 1000 + (i*7919)%60000
		flags := []string{"S", "", "RS", "FS"}[i%4]
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,%s", 1732300000+i/3, (i*104729)%1000000, 10000+i%5000, size, size+size/40, flags)
		if err := os.WriteFile(filepath.Join(root, "cur", name), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginStat10k is a warm login (USER/PASS with a cheap hash) and
// STAT on a 10,000-message Maildir over loopback, then QUIT: make bench's
// "USER/PASS+STAT, warm" without the bcrypt floor.
func BenchmarkLoginStat10k(b *testing.B) {
	e := newTestEnv(b, nil)
	root := e.addUser("bench@example.org", "secret")
	benchFill(b, root, 10000)
	c := e.login("bench@example.org", "secret") // cold: writes the uidlist
	must(b, c.cmd("QUIT"), "+OK")
	c.expectEOF()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c := e.login("bench@example.org", "secret")
		if r := c.cmd("STAT"); !strings.HasPrefix(r, "+OK 10000 ") {
			b.Fatalf("STAT: %s", r)
		}
		must(b, c.cmd("QUIT"), "+OK")
		c.expectEOF()
	}
}

// BenchmarkMaildropHeld10k reports the heap a logged-in session keeps for
// its 10,000-message maildrop (live-B/session: heap in use after a GC with
// 20 maildrops open, minus before, per maildrop), and what opening one
// allocates (B/op).
func BenchmarkMaildropHeld10k(b *testing.B) {
	const held = 20
	roots := make([]string, held)
	for i := range roots {
		roots[i] = filepath.Join(b.TempDir(), "Maildir")
		if err := os.MkdirAll(filepath.Join(roots[i], "cur"), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(roots[i], "new"), 0o700); err != nil {
			b.Fatal(err)
		}
		benchFill(b, roots[i], 10000)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, r := range roots { // warm: uidlists written
		d, err := openMaildrop(r, "", log)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.release(); err != nil {
			b.Fatal(err)
		}
	}
	var perSession float64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		drops := make([]*maildrop, held)
		for i, r := range roots {
			d, err := openMaildrop(r, "", log)
			if err != nil {
				b.Fatal(err)
			}
			drops[i] = d
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		perSession = float64(after.HeapAlloc-before.HeapAlloc) / held
		for _, d := range drops {
			if d.count != 10000 {
				b.Fatalf("%d messages, want 10000", d.count)
			}
			if err := d.release(); err != nil {
				b.Fatal(err)
			}
		}
		runtime.KeepAlive(drops)
		b.StartTimer()
	}
	b.ReportMetric(perSession, "live-B/session")
	b.ReportMetric(0, "ns/op") // one op is 20 logins; the time is in BenchmarkLoginStat10k
}
