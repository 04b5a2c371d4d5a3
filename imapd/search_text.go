package imapd

import (
	"errors"
	"runtime"
	"sync"

	"mailroom/imapd/textindex"
	"mailroom/imapd/wire"
)

// textSearch answers the BODY and TEXT keys of one SEARCH command from
// the mailbox's text index (imapd/textindex, file mailroom-textindex):
// the index names the candidates, and each candidate is verified against
// its decoded text, so the answer is exactly that of a scan. The index is
// brought up to date at the start of every SEARCH that has such a key:
// the first one indexes the whole mailbox, later ones only the messages
// that arrived since. Messages the index cannot cover (a file that does
// not parse, an index that cannot be written) are scanned.
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
	// for the first to finish indexing instead of doing it again.
	mu := textIndexLock(v.path)
	mu.Lock()
	defer mu.Unlock()
	ix, err := textindex.Open(v.path, uidValidity)
	if err != nil {
		ss.log.Warn("text index unavailable, scanning", "mailbox", v.path, "err", err)
		return ts
	}
	ts.ix = ix
	ss.updateTextIndex(ts)
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

var textIndexLocks sync.Map // Maildir path → *sync.Mutex

func textIndexLock(path string) *sync.Mutex {
	mu, _ := textIndexLocks.LoadOrStore(path, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

func collectTextKeys(k wire.SearchKey, into map[textKey]*textQuery) {
	if k.Op == "BODY" || k.Op == "TEXT" {
		into[textKey{k.Op, k.Value}] = &textQuery{}
	}
	for _, sub := range k.Keys {
		collectTextKeys(sub, into)
	}
}

// updateTextIndex adds the session's messages the index lacks and
// compacts it when many of its messages are gone.
func (ss *session) updateTextIndex(ts *textSearch) {
	v := ss.sel.view
	if missing := ts.ix.Missing(ss.sel.uids); len(missing) > 0 {
		ss.indexMessages(ts, missing)
	}
	live := func(uid uint32) bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.index(uid) >= 0
	}
	if ts.ix.NeedsCompact(live) {
		if err := ts.ix.Compact(live); err != nil {
			ss.log.Warn("text index compaction", "mailbox", v.path, "err", err)
		}
	}
}

// maxIndexWorkers bounds the goroutines that read messages for the index.
const maxIndexWorkers = 4

// indexMessages adds messages to the index. Reading, decoding and cutting
// them into words is most of the work and runs on one goroutine per CPU;
// one goroutine (this one) feeds the words to the Builder, which is not
// safe for concurrent use. Documents circulate through a fixed pool, so
// memory stays bounded.
func (ss *session) indexMessages(ts *textSearch, uids []uint32) {
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
			for uid := range jobs {
				d := <-free
				if err := ss.collectOne(x, d, uid); err != nil {
					if !errors.Is(err, errExpunged) {
						// The message stays uncovered and is scanned,
						// which reports the error if it persists.
						ss.log.Debug("text index: message not indexed", "uid", uid, "err", err)
					}
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
	b := ts.ix.NewBuilder(ts.x)
	var addErr error
	for d := range docs {
		if addErr == nil {
			addErr = b.AddDoc(d)
		}
		free <- d
	}
	if addErr == nil {
		addErr = b.Finish()
	}
	if addErr != nil {
		ss.log.Warn("text index update", "mailbox", ss.sel.view.path, "err", addErr)
	}
}

// collectOne reads one message's words into d; it runs on an indexing
// goroutine and touches only what is safe for concurrent use (the
// engine's mailbox, the structure cache).
func (ss *session) collectOne(x *textindex.Extractor, d *textindex.Doc, uid uint32) error {
	// The whole structure at once: a header-only one from the cache
	// would be completed by a second parse anyway.
	fm := &fetchedMsg{ss: ss, uid: uid}
	defer fm.close()
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
