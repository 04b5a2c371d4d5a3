package imapd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailroom/internal/testutil"
	"mailroom/maildir"
	"mailroom/maildir/textindex"
)

// bgWait bounds the waits for the background indexer.
const bgWait = 20 * time.Second

func backgroundEnv(t *testing.T, extra int) *testEnv {
	t.Helper()
	saved, savedDelay := textIndexBackgroundMin, textIndexBackgroundDelay
	textIndexBackgroundMin, textIndexBackgroundDelay = 1, 0
	t.Cleanup(func() { textIndexBackgroundMin, textIndexBackgroundDelay = saved, savedDelay })
	e := newTestEnv(t, func(s *Server) { s.TextIndexBackground = true })
	for _, m := range searchFixtures {
		deliver(t, e.root(), "", m)
	}
	for i := range extra {
		deliver(t, e.root(), "", fmt.Sprintf("Subject: filler %d\n\nfiller text number %d\n", i, i))
	}
	return e
}

// indexMissing opens the text index of the Maildir at dir as a SEARCH
// would and returns the messages it lacks of those the Maildir has.
func indexMissing(t *testing.T, dir string) (missing []uint32, covered int) {
	t.Helper()
	mbox, err := maildir.OpenMailbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	mbox.Range(func(m maildir.Message) bool {
		uids = append(uids, m.UID)
		return true
	})
	ix, err := textindex.Open(dir, mbox.UIDValidity())
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	defer func() { _ = ix.Close() }()
	return ix.Missing(uids), ix.CoveredCount()
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// After SELECT the index comes to cover every message without a SEARCH,
// and the SEARCHes that follow index nothing and answer as a scan does.
func TestTextIndexBackgroundCoversMailbox(t *testing.T) {
	e := backgroundEnv(t, 50)
	total := len(searchFixtures) + 50
	g := textIndexGateOf(e.root())
	c := e.login()
	must(t, last(c.cmd("s", "SELECT INBOX")), "s OK")
	if !testutil.WaitFor(bgWait, func() bool { return g.indexed.Load() == int64(total) && !g.background.Load() }) {
		t.Fatalf("background indexer indexed %d of %d (running %v)", g.indexed.Load(), total, g.background.Load())
	}
	if missing, covered := indexMissing(t, e.root()); len(missing) != 0 || covered != total {
		t.Fatalf("index lacks %v, covers %d of %d", missing, covered, total)
	}
	path := filepath.Join(e.root(), textindex.FileName)
	size := fileSize(t, path)
	tests := []struct{ query, want string }{
		{`SEARCH BODY "xyzzy"`, "* SEARCH 2 6"},
		{`SEARCH BODY "invoice IS"`, "* SEARCH 1"},
		{"SEARCH CHARSET UTF-8 BODY {12+}\r\nCAFÉ CRÈME", "* SEARCH 3"},
		{"SEARCH TEXT {7+}\r\ngrüße", "* SEARCH 5"},
		{`SEARCH BODY "binary"`, "* SEARCH"},
		{`SEARCH OR BODY "xyzzy" TEXT "three"`, "* SEARCH 2 3 6"},
		{`SEARCH BODY "number 7"`, fmt.Sprintf("* SEARCH %d", len(searchFixtures)+8)},
	}
	for _, tc := range tests {
		r := c.cmd("a", tc.query)
		if len(r) != 2 || r[0] != tc.want || !strings.HasPrefix(r[1], "a OK") {
			t.Fatalf("%s: got %q, want %q", tc.query, r, tc.want)
		}
	}
	if got := fileSize(t, path); got != size {
		t.Errorf("SEARCH after background indexing changed the index: %d -> %d octets", size, got)
	}
	if n := g.started.Load(); n != 1 {
		t.Errorf("%d background indexers started, want 1", n)
	}
	// A message delivered later is indexed by the next SEARCH.
	deliver(t, e.root(), "", "Subject: late\n\nlate xyzzy\n")
	must(t, c.cmd("n", "NOOP")[0], fmt.Sprintf("* %d EXISTS", total+1))
	if r := c.cmd("b", `SEARCH BODY "xyzzy"`); r[0] != fmt.Sprintf("* SEARCH 2 6 %d", total+1) {
		t.Fatalf("after arrival: %q", r)
	}
	if missing, _ := indexMissing(t, e.root()); len(missing) != 0 {
		t.Fatalf("index lacks %v after SEARCH", missing)
	}
}

// The indexer carries on after the session that started it leaves.
func TestTextIndexBackgroundOutlivesSession(t *testing.T) {
	e := backgroundEnv(t, 30)
	total := len(searchFixtures) + 30
	g := textIndexGateOf(e.root())
	c, release := selectPausedIndexer(t, e, g)
	must(t, last(c.cmd("l", "LOGOUT")), "l OK")
	close(release)
	if !testutil.WaitFor(bgWait, func() bool { return !g.background.Load() }) {
		t.Fatal("background indexer did not finish")
	}
	if missing, covered := indexMissing(t, e.root()); len(missing) != 0 || covered != total {
		t.Fatalf("index lacks %v, covers %d of %d", missing, covered, total)
	}
}

// Background indexing is off in a bare Server: SELECT writes no index.
func TestTextIndexBackgroundOffByDefault(t *testing.T) {
	e, c := searchEnv(t)
	must(t, last(c.cmd("n", "NOOP")), "n OK")
	if g := textIndexGateOf(e.root()); g.started.Load() != 0 {
		t.Fatalf("%d background indexers started", g.started.Load())
	}
	if _, err := os.Stat(filepath.Join(e.root(), textindex.FileName)); !os.IsNotExist(err) {
		t.Fatalf("index file after SELECT: %v", err)
	}
}

// Two sessions selecting one mailbox start one indexer.
func TestTextIndexBackgroundOnePerMailbox(t *testing.T) {
	e := backgroundEnv(t, 20)
	total := len(searchFixtures) + 20
	g := textIndexGateOf(e.root())
	// Holding the gate keeps the first indexer from finishing while the
	// second session selects.
	g.mu.Lock()
	a, b := e.login(), e.login()
	must(t, last(a.cmd("s", "SELECT INBOX")), "s OK")
	must(t, last(b.cmd("s", "EXAMINE INBOX")), "s OK")
	started := g.started.Load()
	g.mu.Unlock()
	if started != 1 {
		t.Fatalf("%d background indexers started for two sessions, want 1", started)
	}
	if !testutil.WaitFor(bgWait, func() bool { return !g.background.Load() }) {
		t.Fatal("background indexer did not finish")
	}
	if n := g.indexed.Load(); n != int64(total) {
		t.Fatalf("indexed %d messages, want %d (each once)", n, total)
	}
	if missing, _ := indexMissing(t, e.root()); len(missing) != 0 {
		t.Fatalf("index lacks %v", missing)
	}
}

// A SEARCH that arrives while the indexer runs takes over: the indexer
// stops at the next message and the SEARCH indexes the rest and answers.
func TestTextIndexBackgroundSearchTakesOver(t *testing.T) {
	e := backgroundEnv(t, 40)
	total := len(searchFixtures) + 40
	g := textIndexGateOf(e.root())
	c, release := selectPausedIndexer(t, e, g)
	c.send("a SEARCH BODY xyzzy\r\n")
	if !testutil.WaitFor(bgWait, func() bool { return g.waiting.Load() > 0 }) {
		t.Fatal("SEARCH did not wait for the indexer")
	}
	close(release)
	r := c.until("a")
	if len(r) != 2 || r[0] != "* SEARCH 2 6" {
		t.Fatalf("SEARCH: %q", r)
	}
	if !testutil.WaitFor(bgWait, func() bool { return !g.background.Load() }) {
		t.Fatal("background indexer did not stop")
	}
	if n := g.indexed.Load(); n != 1 {
		t.Errorf("background indexer indexed %d messages after a SEARCH came, want 1", n)
	}
	if missing, covered := indexMissing(t, e.root()); len(missing) != 0 || covered != total {
		t.Fatalf("index lacks %v, covers %d of %d", missing, covered, total)
	}
}

// Shutdown while the indexer runs returns promptly and leaves an index
// that opens cleanly with what was indexed, and that a later SEARCH
// completes.
func TestTextIndexBackgroundShutdown(t *testing.T) {
	e := backgroundEnv(t, 40)
	g := textIndexGateOf(e.root())
	_, release := selectPausedIndexer(t, e, g)
	shutdown := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), bgWait)
	defer cancel()
	go func() { shutdown <- e.srv.Shutdown(ctx) }()
	if !testutil.WaitFor(bgWait, e.srv.shutting.Load) {
		t.Fatal("Shutdown did not start")
	}
	close(release)
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown waited more than 5s for the background indexer")
	}
	if g.background.Load() {
		t.Fatal("background indexer still running after Shutdown")
	}
	missing, covered := indexMissing(t, e.root())
	if covered != 1 || len(missing) != len(searchFixtures)+40-1 {
		t.Fatalf("after Shutdown the index covers %d and lacks %d messages, want 1 and %d", covered, len(missing), len(searchFixtures)+39)
	}
}

// pauseAfterFirstMessage makes g's background indexer signal first
// after its first message and wait there until release is closed.
// selectPausedIndexer SELECTs INBOX in a new session and waits until its
// background indexer has indexed one message and is held there; closing
// release lets it go on.
func selectPausedIndexer(t *testing.T, e *testEnv, g *textIndexGate) (*client, chan struct{}) {
	t.Helper()
	first, release := pauseAfterFirstMessage(g)
	c := e.login()
	must(t, last(c.cmd("s", "SELECT INBOX")), "s OK")
	select {
	case <-first:
	case <-time.After(bgWait):
		t.Fatal("background indexer did not start")
	}
	return c, release
}

func pauseAfterFirstMessage(g *textIndexGate) (first chan struct{}, release chan struct{}) {
	first, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	hook := func() {
		once.Do(func() {
			close(first)
			<-release
		})
	}
	g.afterMessage.Store(&hook)
	return first, release
}

// Mail indexed at delivery (deliver's hook: textindex.IndexDelivered on
// the delivered file) is folded into the index by the first SEARCH,
// which then answers without opening a single message file, and answers
// as a scan does. With background indexing off, so that the SEARCH
// itself is what folds.
func TestTextIndexAtDeliveryOpensNoMessage(t *testing.T) {
	e := newTestEnv(t, nil)
	const filler = 40
	for _, m := range searchFixtures {
		if err := textindex.IndexDelivered(deliver(t, e.root(), "", m)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range filler {
		path := deliver(t, e.root(), "", fmt.Sprintf("Subject: filler %d\n\nfiller text number %d\n", i, i))
		if err := textindex.IndexDelivered(path); err != nil {
			t.Fatal(err)
		}
	}
	if fileSize(t, filepath.Join(e.root(), textindex.PendingName)) == 0 {
		t.Fatal("no pending records after delivery")
	}
	c := e.login()
	must(t, last(c.cmd("s", "SELECT INBOX")), "s OK")
	before := textFileOpens.Load()
	tests := []struct{ query, want string }{
		{`SEARCH BODY "xyzzy"`, "* SEARCH 2 6"},
		{`SEARCH BODY "softbreak"`, "* SEARCH 3"},
		{`SEARCH BODY "binary"`, "* SEARCH"},
		{`SEARCH BODY "number"`, "* SEARCH " + seqRange(len(searchFixtures)+1, len(searchFixtures)+filler)},
		{"SEARCH TEXT {7+}\r\ngrüße", "* SEARCH 5"},
	}
	for _, tc := range tests {
		r := c.cmd("a", tc.query)
		if len(r) != 2 || r[0] != tc.want || !strings.HasPrefix(r[1], "a OK") {
			t.Fatalf("%s: got %q, want %q", tc.query, r, tc.want)
		}
	}
	if n := textFileOpens.Load() - before; n != 0 {
		t.Fatalf("the searches opened %d message files; the index was built at delivery", n)
	}
	if fileSize(t, filepath.Join(e.root(), textindex.PendingName)) != 0 {
		t.Fatal("pending records left after the fold")
	}
	// Without the hook, the first search reads every message: the count
	// above is not zero for want of counting.
	e2 := newTestEnv(t, nil)
	for _, m := range searchFixtures {
		deliver(t, e2.root(), "", m)
	}
	c2 := e2.login()
	must(t, last(c2.cmd("s", "SELECT INBOX")), "s OK")
	before = textFileOpens.Load()
	must(t, c2.cmd("a", `SEARCH BODY "xyzzy"`)[0], "* SEARCH 2 6")
	if n := textFileOpens.Load() - before; n < int64(len(searchFixtures)) {
		t.Fatalf("a search without delivery-time indexing opened %d message files, want at least %d", n, len(searchFixtures))
	}
}

// seqRange lists the numbers lo..hi, space-separated.
func seqRange(lo, hi int) string {
	var b strings.Builder
	for i := lo; i <= hi; i++ {
		if i > lo {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, i)
	}
	return b.String()
}

// selectHeldIndexer SELECTs INBOX in a new session, waits for its
// background indexer to start, and checks that it has indexed nothing
// by the end of a NOOP (it is held back); it returns the session.
func selectHeldIndexer(t *testing.T, e *testEnv, g *textIndexGate) *client {
	t.Helper()
	c := e.login()
	must(t, last(c.cmd("s", "SELECT INBOX")), "s OK")
	if !testutil.WaitFor(bgWait, func() bool { return g.started.Load() == 1 }) {
		t.Fatal("background indexer not started")
	}
	must(t, last(c.cmd("n", "NOOP")), "n OK")
	if n := g.indexed.Load(); n != 0 {
		t.Fatalf("%d messages indexed while the indexer was held back", n)
	}
	return c
}

// One background indexer works at a time in a process: while the slot
// is taken, a selected mailbox waits, and is indexed once it is free.
// Below textIndexBackgroundMin messages, no indexer starts at all.
func TestTextIndexBackgroundOneSlot(t *testing.T) {
	e := backgroundEnv(t, 10)
	g := textIndexGateOf(e.root())
	e.srv.init()
	e.srv.indexSlot <- struct{}{} // another mailbox's indexer at work
	selectHeldIndexer(t, e, g)    // the slot was never free
	<-e.srv.indexSlot
	if !testutil.WaitFor(bgWait, func() bool { return !g.background.Load() }) {
		t.Fatal("background indexer did not finish")
	}
	if missing, _ := indexMissing(t, e.root()); len(missing) != 0 {
		t.Fatalf("index lacks %v", missing)
	}

	textIndexBackgroundMin = 1000
	e2 := newTestEnv(t, func(s *Server) { s.TextIndexBackground = true })
	deliver(t, e2.root(), "", "Subject: small\n\nsmall mailbox\n")
	c2 := e2.login()
	must(t, last(c2.cmd("s", "SELECT INBOX")), "s OK")
	must(t, last(c2.cmd("n", "NOOP")), "n OK")
	if n := textIndexGateOf(e2.root()).started.Load(); n != 0 {
		t.Fatalf("%d background indexers for a 1-message mailbox", n)
	}
}

// The background indexer waits textIndexBackgroundDelay after SELECT
// before it works, and a Shutdown meanwhile ends the wait at once.
func TestTextIndexBackgroundDelay(t *testing.T) {
	e := backgroundEnv(t, 10)
	textIndexBackgroundDelay = time.Hour
	g := textIndexGateOf(e.root())
	c := selectHeldIndexer(t, e, g)
	c.cmd("z", "LOGOUT")
	c.expectEOF()
	ctx, cancel := context.WithTimeout(t.Context(), bgWait)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown during the delay: %v", err)
	}
	if g.background.Load() {
		t.Error("background indexer still running after Shutdown")
	}
}
