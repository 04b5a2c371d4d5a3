package imapd

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// setLinger changes the registry's policy under its lock.
func setLinger(e *testEnv, p lingerPolicy) {
	e.srv.init()
	e.srv.views.mu.Lock()
	e.srv.views.linger = p
	e.srv.views.mu.Unlock()
}

// registryView returns the view the registry holds for path, lingering or
// not, and how many views linger.
func registryView(e *testEnv, path string) (*view, int) {
	r := e.srv.views
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.views[path], len(r.idle)
}

// selectCount SELECTs folder in a new session, logs out and returns the
// EXISTS count.
func selectCount(t *testing.T, e *testEnv, folder string) string {
	t.Helper()
	c := e.login()
	var exists string
	for _, l := range c.cmd("s", "SELECT "+folder) {
		if n, ok := strings.CutSuffix(l, " EXISTS"); ok {
			exists = strings.TrimPrefix(n, "* ")
		}
	}
	c.cmd("z", "LOGOUT")
	c.expectEOF()
	return exists
}

// TestViewLingers: the view a session leaves is the one the next session
// of the same mailbox gets, and it sees what changed meanwhile.
func TestViewLingers(t *testing.T) {
	e := newTestEnv(t, nil)
	setLinger(e, lingerPolicy{d: time.Hour, views: 4, maxMessages: 1000})
	deliver(t, e.root(), "", "Subject: one\n\nbody\n")
	if n := selectCount(t, e, "INBOX"); n != "1" {
		t.Fatalf("EXISTS %q, want 1", n)
	}
	first, idle := registryView(e, e.root())
	if first == nil || idle != 1 {
		t.Fatalf("after LOGOUT: view %v, %d lingering; want the view, 1", first, idle)
	}
	deliver(t, e.root(), "", "Subject: two\n\nbody\n")
	if n := selectCount(t, e, "INBOX"); n != "2" {
		t.Errorf("EXISTS %q after a delivery while the view lingered, want 2", n)
	}
	if again, _ := registryView(e, e.root()); again != first {
		t.Error("the next session got a new view, not the lingering one")
	}

	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, idle := registryView(e, e.root()); v != nil || idle != 0 {
		t.Errorf("after Shutdown: view %v, %d lingering", v, idle)
	}
}

// TestViewLingerReplacedFolder: a folder deleted and made again while its
// view lingered is read afresh, not shown with its old messages.
func TestViewLingerReplacedFolder(t *testing.T) {
	e := newTestEnv(t, nil)
	setLinger(e, lingerPolicy{d: time.Hour, views: 4, maxMessages: 1000})
	c := e.login()
	c.cmd("c", "CREATE Work")
	c.cmd("z", "LOGOUT")
	c.expectEOF()
	for i := range 3 {
		deliver(t, e.root(), "Work", fmt.Sprintf("Subject: %d\n\nbody\n", i))
	}
	if n := selectCount(t, e, "Work"); n != "3" {
		t.Fatalf("EXISTS %q, want 3", n)
	}
	path := filepath.Join(e.root(), ".Work")
	old, _ := registryView(e, path)
	if old == nil {
		t.Fatal("no lingering view of Work")
	}
	// Another program replaces the folder: a new directory, one message.
	if err := os.Rename(path, filepath.Join(e.root(), "tmp", "old-work")); err != nil {
		t.Fatal(err)
	}
	c = e.login()
	c.cmd("c", "CREATE Work")
	c.cmd("z", "LOGOUT")
	c.expectEOF()
	deliver(t, e.root(), "Work", "Subject: new\n\nbody\n")
	if n := selectCount(t, e, "Work"); n != "1" {
		t.Errorf("EXISTS %q after the folder was replaced, want 1", n)
	}
	if v, _ := registryView(e, path); v == old {
		t.Error("the replaced folder's old view was reused")
	}
}

// TestViewLingerBounds: at most policy.views views and policy.maxMessages
// messages linger, the oldest going first, and none outlives policy.d.
func TestViewLingerBounds(t *testing.T) {
	e := newTestEnv(t, nil)
	setLinger(e, lingerPolicy{d: time.Hour, views: 2, maxMessages: 5})
	r := e.srv.views
	log := slog.New(slog.DiscardHandler)
	c := e.login()
	for i := range 4 {
		c.cmd("c", fmt.Sprintf("CREATE F%d", i))
	}
	c.cmd("z", "LOGOUT")
	c.expectEOF()
	var paths []string
	for i, n := range []int{1, 1, 1, 4} {
		folder := fmt.Sprintf("F%d", i)
		for j := range n {
			deliver(t, e.root(), folder, fmt.Sprintf("Subject: %d\n\nbody\n", j))
		}
		path := filepath.Join(e.root(), "."+folder)
		paths = append(paths, path)
		v, err := r.open(path, log)
		if err != nil {
			t.Fatal(err)
		}
		r.release(v)
	}
	// F0 went at the third release (3 views > 2), F1 at the fourth
	// (F2 + F3 = 5 messages fit; F1 + F2 + F3 = 6 do not).
	for i, want := range []bool{false, false, true, true} {
		if v, _ := registryView(e, paths[i]); (v != nil) != want {
			t.Errorf("F%d lingering = %v, want %v", i, v != nil, want)
		}
	}
	if closing := r.expireAt(time.Now().Add(time.Minute)); len(closing) != 0 {
		t.Errorf("%d views expired before their time", len(closing))
	}
	closing := r.expireAt(time.Now().Add(2 * time.Hour))
	for _, v := range closing {
		v.close()
	}
	if len(closing) != 2 {
		t.Errorf("%d views expired, want 2", len(closing))
	}
	if _, idle := registryView(e, paths[3]); idle != 0 {
		t.Errorf("%d views still linger after their time", idle)
	}
}

// TestViewLingerCompactsAtClose: the structure cache of a view that
// lingered is compacted when the view is closed, expunges made while it
// was open included.
func TestViewLingerCompactsAtClose(t *testing.T) {
	lowCompactMin(t)
	e := newTestEnv(t, nil)
	setLinger(e, lingerPolicy{d: time.Hour, views: 4, maxMessages: 1000})
	for i := range 12 {
		deliver(t, e.root(), "", fmt.Sprintf("From: f%d@x.test\nSubject: s%d\n\nbody %d\n", i, i, i))
	}
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	c.cmd("f", "FETCH 1:* (ENVELOPE)")
	full := cacheFileSize(t, e.root())
	c.cmd("d", `STORE 1:9 +FLAGS.SILENT (\Deleted)`)
	c.cmd("x", "EXPUNGE")
	c.cmd("z", "LOGOUT")
	c.expectEOF()
	if size := cacheFileSize(t, e.root()); size != full {
		t.Fatalf("cache %d octets while the view lingers, %d before", size, full)
	}
	for _, v := range e.srv.views.expireAt(time.Now().Add(2 * time.Hour)) {
		v.close()
	}
	if size := cacheFileSize(t, e.root()); size*2 >= full {
		t.Errorf("cache %d octets after the view closed, %d before", size, full)
	}
}
