package pop3d

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/maildir"
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

// benchSettle waits until root's new/ and cur/ are older than the second
// within which maildir cannot trust a directory's mtime, so the listing
// cache is written at the next login and used at the ones after, as for a
// Maildir that got no mail in the last second.
func benchSettle(b *testing.B, root string) {
	b.Helper()
	for _, d := range []string{"new", "cur"} {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil {
			b.Fatal(err)
		}
		ctime := fi.Sys().(*syscall.Stat_t).Ctim
		if wait := time.Until(time.Unix(ctime.Sec, ctime.Nsec).Add(1100 * time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
	}
}

// benchDropCache removes root's listing cache, so the next login lists.
func benchDropCache(b *testing.B, root string) {
	b.Helper()
	if err := os.Remove(filepath.Join(root, maildir.ListingName)); err != nil && !os.IsNotExist(err) {
		b.Fatal(err)
	}
}

// BenchmarkLoginStat10k is a warm login (USER/PASS with a cheap hash) and
// STAT on a 10,000-message Maildir over loopback, then QUIT: make bench's
// "USER/PASS+STAT, warm" without the bcrypt floor.
func BenchmarkLoginStat10k(b *testing.B) {
	e := newTestEnv(b, nil)
	root := e.addUser("bench@example.org", "secret")
	benchFill(b, root, 10000)
	benchSettle(b, root)
	c := e.login("bench@example.org", "secret") // cold: writes the uidlist
	must(b, c.cmd("QUIT"), "+OK")
	c.expectEOF()
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "listed", true: "cached"}[cached], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !cached {
					b.StopTimer()
					benchDropCache(b, root)
					b.StartTimer()
				}
				c := e.login("bench@example.org", "secret")
				if r := c.cmd("STAT"); !strings.HasPrefix(r, "+OK 10000 ") {
					b.Fatalf("STAT: %s", r)
				}
				must(b, c.cmd("QUIT"), "+OK")
				c.expectEOF()
			}
		})
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
	benchSettle(b, roots[len(roots)-1])
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
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "listed", true: "cached"}[cached], func(b *testing.B) {
			benchMaildropHeld(b, roots, log, cached)
		})
	}
}

// benchMaildropHeld opens a maildrop in each of roots at once; unless
// cached, their listing caches are removed first.
func benchMaildropHeld(b *testing.B, roots []string, log *slog.Logger, cached bool) {
	held := len(roots)
	var perSession float64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if !cached {
			for _, r := range roots {
				benchDropCache(b, r)
			}
		}
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
		perSession = float64(after.HeapAlloc-before.HeapAlloc) / float64(held)
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
