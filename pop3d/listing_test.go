package pop3d

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/maildir"
)

// settle waits until root's new/ and cur/ are over a second old, so a
// login lists them once and caches the result (waiting for the clock, not
// for another goroutine).
func settle(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"new", "cur"} {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		last := time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		if m := time.Unix(st.Mtim.Sec, st.Mtim.Nsec); m.After(last) {
			last = m
		}
		if wait := time.Until(last.Add(1100 * time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
	}
}

// listingSession logs in and returns STAT's and UIDL's and LIST's replies,
// then, with retr, RETRs message 1 (which must be body) and QUITs.
func listingSession(t *testing.T, e *testEnv, body string, retr bool) (stat, uidl, list string) {
	t.Helper()
	c := e.login("lc@example.org", "secret")
	stat = c.cmd("STAT")
	must(t, c.cmd("UIDL"), "+OK")
	uidl = c.multi()
	must(t, c.cmd("LIST"), "+OK")
	list = c.multi()
	if retr {
		must(t, c.cmd("RETR 1"), "+OK")
		if got := c.multi(); got != body {
			t.Errorf("RETR 1: %q, want %q", got, body)
		}
	}
	must(t, c.cmd("QUIT"), "+OK")
	c.expectEOF()
	return stat, uidl, list
}

// TestLoginFromListingCache: a login on an unchanged Maildir is served from
// maildir's listing cache with the same messages, UIDLs and sizes as the
// login that listed; mail delivered since is seen at once.
func TestLoginFromListingCache(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.addUser("lc@example.org", "secret")
	const body = "Subject: one\r\n\r\nfirst\r\n"
	deliver(t, root, "Subject: one\n\nfirst\n")
	deliver(t, root, "Subject: two\n\nsecond, a bit longer\n")
	settle(t, root)
	stat1, uidl1, list1 := listingSession(t, e, body, false)
	cache := filepath.Join(root, maildir.ListingName)
	fi1, err := os.Stat(cache)
	if err != nil {
		t.Fatalf("no listing cache after a login on a settled Maildir: %v", err)
	}
	stat2, uidl2, list2 := listingSession(t, e, body, true)
	if stat1 != stat2 || uidl1 != uidl2 || list1 != list2 {
		t.Errorf("cached login differs:\n%s %s %s\n%s %s %s", stat1, uidl1, list1, stat2, uidl2, list2)
	}
	// A login that listed would have replaced the file (a new inode).
	if fi2, err := os.Stat(cache); err != nil || !os.SameFile(fi1, fi2) {
		t.Errorf("the second login did not use the cache (stat: %v)", err)
	}
	// RETR moved message 1 new/ → cur/ at QUIT: the cache is stale, and
	// a new delivery must show up too.
	deliver(t, root, "Subject: three\n\nthird\n")
	stat3, uidl3, _ := listingSession(t, e, body, true)
	if !strings.HasPrefix(stat3, "+OK 3 ") || !strings.HasPrefix(uidl3, uidl1) {
		t.Errorf("after a delivery: STAT %q, UIDL %q (before %q)", stat3, uidl3, uidl1)
	}
}
