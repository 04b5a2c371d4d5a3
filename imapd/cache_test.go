package imapd

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailroom/internal/message"
	"mailroom/maildir"
)

// TestStructureCache: FETCH fills mailroom-cache; a damaged cache is cut
// and rebuilt, and answers stay the same.
func TestStructureCache(t *testing.T) {
	e := newTestEnv(t, nil)
	deliver(t, e.root(), "", fixture1)
	deliver(t, e.root(), "", fixture2)
	cachePath := filepath.Join(e.root(), CacheName)
	fetch := func() []string {
		c := e.login()
		c.cmd("s", "EXAMINE INBOX")
		r := c.cmd("f", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
		c.cmd("z", "LOGOUT")
		c.expectEOF()
		return r
	}
	first := fetch()
	fi, err := os.Stat(cachePath)
	if err != nil || fi.Size() <= cacheHeaderLen {
		t.Fatalf("cache after FETCH: %v, %v", fi, err)
	}
	// Flip a byte in the second record's data: the CRC must catch it.
	data, err := os.ReadFile(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-10] ^= 0xff
	if err := os.WriteFile(cachePath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	second := fetch()
	if len(first) != len(second) {
		t.Fatalf("answers differ: %q vs %q", first, second)
	}
	for i := range first {
		if first[i] != second[i] {
			t.Errorf("line %d: %q vs %q", i, first[i], second[i])
		}
	}
	st := openStructCache(e.root(), 0, e.srv.Logger)
	defer st.close()
	if len(st.index) != 0 {
		t.Errorf("a cache of another UIDVALIDITY was kept")
	}
}

// TestHeaderOnlyCache: ENVELOPE and the header sections add header-only
// records; later sessions get the same answers from them; BODYSTRUCTURE
// and the body upgrade a record to a whole one, and every answer stays
// the same through each step, for well-formed and malformed messages.
func TestHeaderOnlyCache(t *testing.T) {
	e := newTestEnv(t, nil)
	msgs := []string{fixture1, fixture2,
		"Subject: no blank line\nFrom: a@b",
		" leading continuation\nSubject: caf\xc3\xa9 \x00\nFrom a@b no colon\n\nbody\x00\n",
		"Subject: bare\rcr\r\n\r\nbody\r",
	}
	for _, m := range msgs {
		deliver(t, e.root(), "", m)
	}
	headerItems := "(ENVELOPE INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (FROM SUBJECT X-NONE)] BODY.PEEK[HEADER.FIELDS.NOT (To)] RFC822.HEADER)"
	wholeItems := "(BODYSTRUCTURE BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[]<2.20>)"
	fetch := func(items string) []string {
		c := e.login()
		c.cmd("s", "EXAMINE INBOX")
		r := c.cmd("f", "FETCH 1:* "+items)
		must(t, last(r), "f OK")
		c.cmd("z", "LOGOUT")
		c.expectEOF()
		return r
	}
	headerOnly := func() (n int) {
		c := openStructCache(e.root(), uidValidity(t, e.root()), e.srv.Logger)
		defer c.close()
		for uid := range c.index {
			if st, _ := c.get(uid, -1); st != nil && st.HeaderOnly() {
				n++
			}
		}
		return n
	}
	first := fetch(headerItems)
	if n := headerOnly(); n != len(msgs) {
		t.Errorf("after ENVELOPE: %d header-only records, want %d", n, len(msgs))
	}
	same(t, "header items from the cache", first, fetch(headerItems))
	whole := fetch(wholeItems)
	if n := headerOnly(); n != 0 {
		t.Errorf("after BODYSTRUCTURE: %d header-only records left", n)
	}
	same(t, "header items from whole records", first, fetch(headerItems))
	same(t, "whole items from the cache", whole, fetch(wholeItems))
	if err := os.Remove(filepath.Join(e.root(), CacheName)); err != nil {
		t.Fatal(err)
	}
	same(t, "whole items parsed again", whole, fetch(wholeItems))
}

func same(t *testing.T, what string, a, b []string) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d responses:\n%q\n%q", what, len(a), len(b), a, b)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("%s: response %d: %q vs %q", what, i, a[i], b[i])
		}
	}
}

func uidValidity(t *testing.T, root string) uint32 {
	t.Helper()
	mb, err := maildir.OpenMailbox(root)
	if err != nil {
		t.Fatal(err)
	}
	return mb.UIDValidity()
}

// TestPerfHarness profiles the FETCH rows of issue 7 in process, on the
// Maildir named by MAILROOM_PERF_MAILDIR (used in place: a copy of a
// `mailbench mkmaildir` fixture the caller owns), each step
// MAILROOM_PERF_REPEAT times, so that `go test -cpuprofile -memprofile`
// shows the steady state of one step. MAILROOM_PERF_STEPS picks steps by
// name (select, flags, fields, envelope; default all). Skipped without
// the variable.
func TestPerfHarness(t *testing.T) {
	src := os.Getenv("MAILROOM_PERF_MAILDIR")
	if src == "" {
		t.Skip("MAILROOM_PERF_MAILDIR not set")
	}
	repeat, _ := strconv.Atoi(os.Getenv("MAILROOM_PERF_REPEAT"))
	repeat = max(1, min(repeat, 1000))
	steps := os.Getenv("MAILROOM_PERF_STEPS")
	if steps == "" {
		steps = "select,flags,envelope,fields"
	}
	e := newTestEnv(t, nil)
	root := e.root()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src, root); err != nil {
		t.Fatal(err)
	}
	c := e.login()
	r := &harnessReader{t: t, br: bufio.NewReaderSize(c.conn, 64<<10)}
	var ms runtime.MemStats
	step := func(name, tag, cmd string) {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		runtime.ReadMemStats(&ms)
		m0 := ms.Mallocs
		start := time.Now()
		c.send(tag + " " + cmd + "\r\n")
		n := r.until(tag)
		wall := time.Since(start)
		runtime.ReadMemStats(&ms)
		t.Logf("%-36s %8.4f s  %9d allocs  %d responses", name, wall.Seconds(), ms.Mallocs-m0, n)
	}
	cmds := map[string][2]string{
		"flags":    {"FETCH 1:* (UID FLAGS)", "FETCH 1:* (UID FLAGS)"},
		"envelope": {"UID FETCH 1:* (ENVELOPE)", "UID FETCH 1:* (ENVELOPE)"},
		"fields":   {"HEADER.FIELDS (FROM SUBJECT DATE)", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"},
	}
	for _, s := range strings.Split(steps, ",") {
		if s == "select" {
			for i := 0; i < repeat; i++ {
				step("SELECT", "s", "SELECT INBOX")
				step("UNSELECT", "u", "UNSELECT")
			}
			continue
		}
		cmd, ok := cmds[s]
		if !ok {
			t.Fatalf("unknown step %q", s)
		}
		// One SELECT, as in the bench's session: the view and its
		// structure cache stay loaded from one FETCH to the next.
		step("SELECT", "s", "SELECT INBOX")
		for i := 0; i < repeat; i++ {
			step(cmd[0], "f", cmd[1])
		}
	}
	step("LOGOUT", "z", "LOGOUT")
}

// testStructure is a parsed message for cache records.
func testStructure(t *testing.T, i int) *message.Structure {
	t.Helper()
	text := fmt.Sprintf("From: a%d@x.test\nSubject: message %d %s\n\nbody %d\n", i, i, strings.Repeat("x", i%50), i)
	s, err := message.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lowCompactMin makes small files worth compacting for one test.
func lowCompactMin(t *testing.T) {
	old := cacheCompactMin
	cacheCompactMin = 1
	t.Cleanup(func() { cacheCompactMin = old })
}

// fillCache puts records for uids 1..n, twice (the second round replaces
// the first), flushing after each round.
func fillCache(t *testing.T, c *structCache, n int) {
	t.Helper()
	for round := 0; round < 2; round++ {
		for i := 1; i <= n; i++ {
			c.put(uint32(i), int64(100+i), int64(1000+i), testStructure(t, i))
		}
		c.flush()
	}
}

func cacheFileSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, CacheName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// checkCacheHolds loads the file afresh and checks it holds exactly the
// given UIDs, each with the record fillCache wrote.
func checkCacheHolds(t *testing.T, dir string, uids []uint32) {
	t.Helper()
	c := openStructCache(dir, 7, slog.New(slog.DiscardHandler))
	defer c.close()
	if len(c.index) != len(uids) {
		t.Fatalf("%d records, want %d", len(c.index), len(uids))
	}
	for _, uid := range uids {
		st, mtime := c.get(uid, int64(100+uid))
		if st == nil || mtime != int64(1000+uid) {
			t.Fatalf("uid %d: %v, %d", uid, st, mtime)
		}
		if got, want := st.HeaderBlock(), testStructure(t, int(uid)).HeaderBlock(); !bytes.Equal(got, want) {
			t.Fatalf("uid %d: header %q, want %q", uid, got, want)
		}
	}
}

// TestCacheCompaction: replaced records and those of expunged UIDs are
// dropped once they are more than half the file; the rewritten file
// loads with the same answers, and a cache that did not compact leaves
// the file alone.
func TestCacheCompaction(t *testing.T) {
	lowCompactMin(t)
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	c := openStructCache(dir, 7, log)
	defer c.close()
	fillCache(t, c, 40)
	before := cacheFileSize(t, dir)
	// Expunge-heavy: three UIDs in four are gone.
	alive := func(uid uint32) bool { return uid%4 == 0 }
	c.compactIfWasteful(alive)
	if c.compacts != 1 {
		t.Fatalf("%d compactions, want 1", c.compacts)
	}
	after := cacheFileSize(t, dir)
	if after >= before/4 {
		t.Errorf("file %d octets after compaction, %d before", after, before)
	}
	var live []uint32
	for uid := uint32(4); uid <= 40; uid += 4 {
		live = append(live, uid)
	}
	checkCacheHolds(t, dir, live)
	// The compacted cache keeps serving and appending.
	if st, _ := c.get(8, 108); st == nil {
		t.Fatal("uid 8 lost from memory")
	}
	c.put(44, 144, 1044, testStructure(t, 44))
	c.flush()
	checkCacheHolds(t, dir, append(live, 44))
	// Nothing dead: no rewrite.
	c.compactIfWasteful(func(uint32) bool { return true })
	if c.compacts != 1 {
		t.Errorf("%d compactions of a file without waste", c.compacts)
	}
	if _, err := os.Stat(filepath.Join(dir, cacheNewName)); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", cacheNewName, err)
	}
}

// TestCacheCompactionConcurrent: two caches of one Maildir (two
// processes' views); one compacts, the other, whose descriptor now leads
// to the replaced file, appends to the new file, and a third load sees
// both.
func TestCacheCompactionConcurrent(t *testing.T) {
	lowCompactMin(t)
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	a := openStructCache(dir, 7, log)
	defer a.close()
	fillCache(t, a, 20)
	b := openStructCache(dir, 7, log)
	defer b.close()
	if len(b.index) != 20 {
		t.Fatalf("b loaded %d records", len(b.index))
	}
	a.compactIfWasteful(func(uid uint32) bool { return uid > 10 })
	if a.compacts != 1 {
		t.Fatalf("a: %d compactions", a.compacts)
	}
	// b still answers from what it loaded, including UIDs a dropped.
	for uid := uint32(1); uid <= 20; uid++ {
		if st, _ := b.get(uid, int64(100+uid)); st == nil {
			t.Fatalf("b lost uid %d", uid)
		}
	}
	b.put(21, 121, 1021, testStructure(t, 21))
	b.flush()
	a.put(22, 122, 1022, testStructure(t, 22))
	a.flush()
	var want []uint32
	for uid := uint32(11); uid <= 22; uid++ {
		want = append(want, uid)
	}
	checkCacheHolds(t, dir, want)
	// b appended to a file a did not write: a must not compact over it
	// without reading it.
	a.dead = a.fileSize
	a.compactIfWasteful(func(uint32) bool { return true })
	if a.compacts != 1 {
		t.Errorf("a compacted a file with another process's records unread")
	}
	checkCacheHolds(t, dir, want)
}

// TestCacheCompactionCrash: a compaction that cannot finish (here the
// new file cannot be made; a crash before the rename leaves the same
// state, with a partial mailroom-cache.new) leaves the old file whole and
// in use; a stale new file does not disturb loading or the next
// compaction.
func TestCacheCompactionCrash(t *testing.T) {
	lowCompactMin(t)
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	c := openStructCache(dir, 7, log)
	defer c.close()
	fillCache(t, c, 10)
	newPath := filepath.Join(dir, cacheNewName)
	if err := os.Mkdir(newPath, 0o700); err != nil {
		t.Fatal(err)
	}
	c.compactIfWasteful(func(uid uint32) bool { return uid <= 2 })
	if c.compacts != 0 {
		t.Fatal("compacted without a new file")
	}
	var all []uint32
	for uid := uint32(1); uid <= 10; uid++ {
		all = append(all, uid)
	}
	checkCacheHolds(t, dir, all)
	// A crash mid-write: a torn new file beside the old one.
	if err := os.Remove(newPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(newPath, []byte("MRC2\x00\x00\x00\x07torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkCacheHolds(t, dir, all)
	c.expungeChecked = false // a later load would look again
	c.compactIfWasteful(func(uid uint32) bool { return uid <= 2 })
	if c.compacts != 1 {
		t.Fatal("no compaction over a stale new file")
	}
	checkCacheHolds(t, dir, []uint32{1, 2})
	// A crash right after the rename: the new file is the file, whole.
	data, err := os.ReadFile(filepath.Join(dir, CacheName))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != c.fileSize {
		t.Fatalf("file %d octets, cache thinks %d", len(data), c.fileSize)
	}
}

// TestCacheCompactionSession: through IMAP, an expunge-heavy mailbox's
// cache is compacted by a later session's FETCH, and the answers stay
// the same. Views do not linger here, so that the later session loads
// the cache again (TestViewLingerCompactsAtClose covers the other way).
func TestCacheCompactionSession(t *testing.T) {
	lowCompactMin(t)
	e := newTestEnv(t, nil)
	e.srv.init()
	e.srv.views.linger = lingerPolicy{}
	for i := 0; i < 12; i++ {
		deliver(t, e.root(), "", fmt.Sprintf("From: f%d@x.test\nSubject: s%d\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody %d\n", i, i, i))
	}
	fetch := "FETCH 1:* (UID ENVELOPE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])"
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	c.cmd("f", fetch)
	full := cacheFileSize(t, e.root())
	c.cmd("d", `STORE 1:9 +FLAGS.SILENT (\Deleted)`)
	c.cmd("x", "EXPUNGE")
	want := c.cmd("f", fetch)
	c.cmd("z", "LOGOUT")
	c.expectEOF()
	c = e.login()
	c.cmd("s", "SELECT INBOX")
	got := c.cmd("f", fetch)
	c.cmd("z", "LOGOUT")
	c.expectEOF()
	same(t, "after compaction", want, got)
	if size := cacheFileSize(t, e.root()); size*2 >= full {
		t.Errorf("cache %d octets after expunging 9 of 12, %d before", size, full)
	}
}

// TestDefaultFoldersAtLogin: the first login makes the default folders;
// later ones only read the root (tmp/, where CreateDefaultFolders
// stages, is left untouched); a deleted default folder comes back.
func TestDefaultFoldersAtLogin(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if defaultFoldersPresent(root) {
		t.Fatal("present before creation")
	}
	if err := ensureDefaultFolders(root); err != nil {
		t.Fatal(err)
	}
	if !defaultFoldersPresent(root) {
		t.Fatal("not present after creation")
	}
	tmp := filepath.Join(root, "tmp")
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(tmp, old, old); err != nil {
		t.Fatal(err)
	}
	if err := ensureDefaultFolders(root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(tmp); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("tmp/ touched by a login with every folder there: %v, %v", fi.ModTime(), err)
	}
	trash, err := maildir.FolderPath(root, "Trash")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(trash); err != nil {
		t.Fatal(err)
	}
	if defaultFoldersPresent(root) {
		t.Fatal("present without Trash")
	}
	if err := ensureDefaultFolders(root); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(trash, "cur")); err != nil || !fi.IsDir() {
		t.Errorf("Trash not made again: %v", err)
	}
}

// TestHeaderSectionsFromBlock: FETCH of header sections alone is answered
// from the cached header block (the second session) exactly as from a
// parse (the first), partials and .NOT included; a header too big to keep
// is read from the file; BODY[HEADER.FIELDS] without .PEEK sets \Seen.
func TestHeaderSectionsFromBlock(t *testing.T) {
	e := newTestEnv(t, nil)
	big := "Subject: big\nX-Big: " + strings.Repeat("b", message.MaxHeaderBlock) + "\nFrom: big@x.test\n\nbody\n"
	msgs := []string{
		"From: a@x.test\nSubject: one\n two\nTo: t@x.test\nsubject: again\n\nbody\n",
		"Subject: no blank line\nFrom: a@b",
		" leading continuation\nSubject: caf\xc3\xa9\nFrom a@b no colon\n\nbody\n",
		"Subject: bare\rcr\r\nFROM: crlf@x.test\r\n\r\nbody\r\n",
		big,
	}
	for _, m := range msgs {
		deliver(t, e.root(), "", m)
	}
	items := "(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] BODY.PEEK[HEADER.FIELDS.NOT (To X-Big)] BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (subject)]<3.9> BODY.PEEK[HEADER]<500.1000>)"
	fetch := func() []string {
		c := e.login()
		c.cmd("s", "EXAMINE INBOX")
		r := c.cmd("f", "FETCH 1:* "+items)
		must(t, last(r), "f OK")
		// Again in the same view: the block's place is remembered.
		same(t, "second FETCH in one view", r, c.cmd("f", "FETCH 1:* "+items))
		c.cmd("z", "LOGOUT")
		c.expectEOF()
		return r
	}
	parsed := fetch()
	fromBlock := fetch()
	same(t, "header sections from the block", parsed, fromBlock)
	want := "BODY[HEADER.FIELDS (FROM SUBJECT)] {54}\r\nFrom: a@x.test\r\nSubject: one\r\n two\r\nsubject: again\r\n\r\n BODY[HEADER.FIELDS.NOT (To X-Big)]"
	if !strings.Contains(strings.Join(fromBlock, "\r\n"), want) {
		t.Errorf("message 1: no %q in %q", want, fromBlock[0])
	}
	if got := strings.Join(fromBlock, "\r\n"); !strings.Contains(got, "BODY[HEADER.FIELDS (subject)]<3> {9}\r\nject: one") {
		t.Errorf("partial: %q", got)
	}
	// Without .PEEK the read-write session sets \Seen and says so.
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	r := c.cmd("f", "FETCH 1 (BODY[HEADER.FIELDS (SUBJECT)])")
	if !strings.Contains(strings.Join(r, "\n"), `\Seen`) {
		t.Errorf("no \\Seen in %q", r)
	}
	c.cmd("z", "LOGOUT")
	c.expectEOF()
}
