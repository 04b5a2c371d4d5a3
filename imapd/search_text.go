package imapd

import (
	"errors"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"mailroom/imapd/wire"
	"mailroom/maildir/textindex"
)

// textSearch answers the BODY and TEXT keys of one SEARCH command from
// the mailbox's text index (maildir/textindex, file mailroom-textindex):
// the index names the candidates, and each candidate is verified against
// its decoded text, so the answer is exactly that of a scan. The index is
// brought up to date at the start of every SEARCH that has such a key:
// first the words deliver gathered at delivery (the pending file) are
// folded in under their UIDs, without opening the messages; then the
// messages still missing are read, all of them on the first search of a
// mailbox whose mail did not come through deliver (unless the background
// indexer did it), later only those that arrived since. Messages the
// index cannot cover (a file that does not parse, an index that cannot
// be written) are scanned.
type textSearch struct {
	x    *textindex.Extractor
	ix   *textindex.Index // nil: scan every message
	keys map[textKey]*textQuery
}

type textKey struct{ op, value string }

// textQuery is one key's folded needle, its candidates and its matcher.
type textQuery struct {
	needle       []byte
	body, header textindex.Answer // zero without an index
	m            *textindex.Matcher
}

// errTextFound stops an extraction once the needle is found.
var errTextFound = errors.New("found")

// prepareTextSearch returns nil when the program has no BODY or TEXT key.
func (ss *session) prepareTextSearch(k wire.SearchKey) *textSearch {
	ts := &textSearch{keys: map[textKey]*textQuery{}}
	collectTextKeys(k, ts.keys)
	if len(ts.keys) == 0 {
		return nil
	}
	ts.x = textindex.NewExtractor()
	for tk, q := range ts.keys {
		q.needle = textindex.Fold([]byte(tk.value))
		q.m = textindex.NewMatcher(q.needle)
	}
	v := ss.sel.view
	v.mu.Lock()
	uidValidity := v.mbox.UIDValidity()
	v.mu.Unlock()
	// One indexer per mailbox in this process: a second SEARCH waits
	// for the first to finish indexing instead of doing it again, and a
	// background indexer (textindex_bg.go) stops at the next message and
	// leaves the rest to this one, which indexes faster.
	g := textIndexGateOf(v.path)
	g.lockForeground()
	defer g.mu.Unlock()
	ix, err := textindex.Open(v.path, uidValidity)
	if err != nil {
		ss.log.Warn("text index unavailable, scanning", "mailbox", v.path, "err", err)
		return ts
	}
	ts.ix = ix
	foldPending(v, ix, ss.log, foregroundPace)
	updateTextIndex(v, ix, ss.sel.uids, ss.log, foregroundPace)
	if err := ts.lookup(); err != nil {
		if textindex.IsDamaged(err) {
			ss.log.Warn("text index damaged, starting over", "mailbox", v.path, "err", err)
			if err := ix.Reset(); err != nil {
				ss.log.Warn("text index reset", "err", err)
			}
		} else {
			ss.log.Warn("text index unusable, scanning", "mailbox", v.path, "err", err)
		}
		_ = ix.Close()
		ts.ix = nil
	}
	return ts
}

// foldPending moves the records deliver appended at delivery into the
// index, mapping base names to UIDs through the engine's mailbox, which
// lists every message of its last sync (some not yet announced to this
// session: they are indexed for the session that sees them), on one
// goroutine per CPU in the foreground and on one in the background.
// Errors are logged: the messages are then read by updateTextIndex.
func foldPending(v *view, ix *textindex.Index, log *slog.Logger, pace indexPace) {
	uidOf := func(base string) (uint32, bool) {
		m, ok := v.mbox.LookupBase(base)
		return m.UID, ok
	}
	workers := 0
	if pace.background {
		workers = 1
	}
	st, err := ix.FoldPendingWorkers(uidOf, workers)
	if err != nil {
		log.Warn("text index: folding delivered words", "mailbox", v.path, "err", err)
		return
	}
	if st != (textindex.FoldStats{}) {
		log.Debug("text index: folded delivered words", "mailbox", v.path,
			"folded", st.Folded, "covered", st.Covered, "dropped", st.Dropped, "kept", st.Kept, "damaged", st.Damaged)
	}
}

// textFileOpens counts the message files the text search opened, to
// index or to verify a candidate (tests: a mailbox indexed at delivery
// answers its first SEARCH BODY without opening any).
var textFileOpens atomic.Int64

// textIndexGate serialises the indexing of one Maildir in this process:
// SEARCHes and the background indexer hold mu while they update the
// index.
type textIndexGate struct {
	mu sync.Mutex
	// waiting counts the SEARCHes waiting for mu: the background indexer
	// gives way to them.
	waiting atomic.Int32
	// background is set while a background indexer runs (or is about to):
	// there is never more than one per Maildir.
	background atomic.Bool
	// started and indexed count background indexers and the messages
	// they indexed (tests and logs).
	started, indexed atomic.Int64
	// afterMessage, when set (tests only), is called by the background
	// indexer after each message.
	afterMessage atomic.Pointer[func()]
}

var textIndexGates sync.Map // Maildir path → *textIndexGate

func textIndexGateOf(path string) *textIndexGate {
	g, _ := textIndexGates.LoadOrStore(path, &textIndexGate{})
	return g.(*textIndexGate)
}

// lockForeground takes mu for a SEARCH, telling the background indexer
// that someone waits.
func (g *textIndexGate) lockForeground() {
	g.waiting.Add(1)
	g.mu.Lock()
	g.waiting.Add(-1)
}

func collectTextKeys(k wire.SearchKey, into map[textKey]*textQuery) {
	if k.Op == "BODY" || k.Op == "TEXT" {
		into[textKey{k.Op, k.Value}] = &textQuery{}
	}
	for _, sub := range k.Keys {
		collectTextKeys(sub, into)
	}
}

// indexPace says how an index update runs: in the foreground (a SEARCH
// waits for it) with one reader per CPU, or in the background with one,
// yielding between messages and ending early when stop says so.
type indexPace struct {
	background bool
	stop       func() bool // nil: never
}

var foregroundPace = indexPace{}

// updateTextIndex adds the messages of uids (ascending) the index lacks
// and compacts it when many of its messages are gone. It returns how
// many messages it read into the index and whether it stopped early.
// Errors are logged: a message the index lacks is scanned.
func updateTextIndex(v *view, ix *textindex.Index, uids []uint32, log *slog.Logger, pace indexPace) (int, bool) {
	var n int
	if missing := ix.Missing(uids); len(missing) > 0 {
		var stopped bool
		if pace.background {
			n, stopped = indexInBackground(v, ix, missing, log, pace.stop)
		} else {
			n = indexMessages(v, ix, missing, log)
		}
		if stopped {
			return n, true
		}
	}
	live := func(uid uint32) bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.index(uid) >= 0
	}
	if ix.NeedsCompact(live) {
		if err := ix.Compact(live); err != nil {
			log.Warn("text index compaction", "mailbox", v.path, "err", err)
		}
	}
	return n, false
}

// maxIndexWorkers bounds the goroutines that read messages for the index.
const maxIndexWorkers = 4

// indexMessages adds messages to the index and returns how many it read.
// Reading, decoding and cutting them into words is most of the work and
// runs on one goroutine per CPU; one goroutine (this one) feeds the
// words to the Builder, which is not safe for concurrent use. Documents
// circulate through a fixed pool, so memory stays bounded.
func indexMessages(v *view, ix *textindex.Index, uids []uint32, log *slog.Logger) int {
	workers := max(1, min(runtime.GOMAXPROCS(0), maxIndexWorkers, len(uids)))
	jobs := make(chan uint32)
	docs := make(chan *textindex.Doc, workers)
	free := make(chan *textindex.Doc, 2*workers)
	for range 2 * workers {
		free <- new(textindex.Doc)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := textindex.NewExtractor()
			rd := viewReader(v)
			for uid := range jobs {
				d := <-free
				if err := collectOne(rd, x, d, uid); err != nil {
					logUnindexed(log, uid, err)
					free <- d
					continue
				}
				docs <- d
			}
		}()
	}
	go func() {
		for _, uid := range uids {
			jobs <- uid
		}
		close(jobs)
		wg.Wait()
		close(docs)
	}()
	b := ix.NewBuilder(textindex.NewExtractor())
	var addErr error
	n := 0
	for d := range docs {
		if addErr == nil {
			addErr = b.AddDoc(d)
			n++
		}
		free <- d
	}
	if addErr == nil {
		addErr = b.Finish()
	}
	if addErr != nil {
		log.Warn("text index update", "mailbox", v.path, "err", addErr)
	}
	return n
}

// logUnindexed notes a message the index could not take: it stays
// uncovered and is scanned, which reports the error if it persists.
func logUnindexed(log *slog.Logger, uid uint32, err error) {
	if !errors.Is(err, errExpunged) {
		log.Debug("text index: message not indexed", "uid", uid, "err", err)
	}
}

// viewReader is a stand-in session through which an indexer reads the
// messages of v: fetchedMsg reaches the mailbox, the structure cache and
// the resync through its session's selected view, and nothing else of it.
func viewReader(v *view) *session {
	return &session{sel: &selected{view: v}}
}

// collectOne reads one message's words into d; it runs on an indexing
// goroutine and touches only what is safe for concurrent use (the
// engine's mailbox, the structure cache).
func collectOne(rd *session, x *textindex.Extractor, d *textindex.Doc, uid uint32) error {
	// The whole structure at once: a header-only one from the cache
	// would be completed by a second parse anyway.
	fm := &fetchedMsg{ss: rd, uid: uid}
	defer fm.close()
	textFileOpens.Add(1)
	st, err := fm.complete()
	if err != nil {
		return err
	}
	f, err := fm.openFile()
	if err != nil {
		return err
	}
	return x.Collect(d, uid, st, f)
}

// lookup asks the index for every key's candidates.
func (ts *textSearch) lookup() error {
	for tk, q := range ts.keys {
		var err error
		if q.body, err = ts.ix.Candidates(textindex.Body, q.needle); err != nil {
			return err
		}
		if tk.op == "TEXT" {
			if q.header, err = ts.ix.Candidates(textindex.Header, q.needle); err != nil {
				return err
			}
		}
	}
	return nil
}

func (ts *textSearch) close() {
	if ts != nil && ts.ix != nil {
		_ = ts.ix.Close()
	}
}

// textContains answers BODY (header false) and TEXT for one message: a
// covered message that is no candidate does not match; any other is
// verified on its decoded text.
func (sm *searchMsg) textContains(op, value string) (bool, error) {
	ts := sm.text
	q := ts.keys[textKey{op, value}]
	if uid := sm.ref.uid; ts.ix != nil && ts.ix.Covered(uid) {
		body, header := q.body.Candidates.Has(uid), op == "TEXT" && q.header.Candidates.Has(uid)
		switch {
		case !body && !header:
			return false, nil
		case body && !q.body.Verify.Has(uid), header && !q.header.Verify.Has(uid):
			return true, nil // the index is exact here
		}
	}
	fm, err := sm.fetched()
	if err != nil {
		return false, err
	}
	textFileOpens.Add(1)
	f, err := fm.open()
	if err != nil {
		return false, err
	}
	q.m.Reset()
	emit := func(b []byte) error {
		if q.m.Write(b); q.m.Found() {
			return errTextFound
		}
		return nil
	}
	if op == "TEXT" {
		err = ts.x.Header(fm.st, f, emit)
		if err == nil {
			// A match does not run from the header into the body: the
			// two are matched apart (as the index keeps them).
			q.m.Reset()
			err = ts.x.Body(fm.st, f, emit)
		}
	} else {
		err = ts.x.Body(fm.st, f, emit)
	}
	if errors.Is(err, errTextFound) {
		return true, nil
	}
	return false, err
}
