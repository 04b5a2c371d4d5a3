package imapd

import (
	"log/slog"
	"runtime"
	"time"

	"mailroom/maildir/textindex"
)

// Background text indexing, as Dovecot's fts_autoindex: after SELECT or
// EXAMINE, with Server.TextIndexBackground, one goroutine per Maildir and
// process adds the messages the text index lacks, so that the first
// SEARCH BODY or TEXT finds the index ready instead of building it.
//
// It must cost the foreground little: one goroutine reads the messages
// one at a time (a SEARCH indexing in the foreground uses one per CPU)
// and yields between them (about every millisecond). It holds the
// Maildir's textIndexGate while it works, and between messages it stops
// when
//   - a SEARCH waits for the gate: it writes what it has and leaves the
//     rest to the SEARCH, which indexes faster;
//   - the server shuts down (Shutdown waits for it, one message at most).
//
// It carries on when the sessions leave the mailbox (a client that
// checks mail briefly finds the index ready next time), holding a
// reference on the view until it is done.
//
// What it indexed before stopping is written as a segment, as a SEARCH
// would write it, so no work is lost and the file is never left half
// written by a stop (a crash mid-write is caught by the segment CRC and
// cut off when the index is next opened). Errors are logged, never
// returned: the index is a cache, and SEARCH scans what it lacks.

// textIndexBackgroundMin is the fewest messages a mailbox needs for a
// background indexer: a smaller one is indexed by its first SEARCH in
// well under a second (and folding what deliver gathered costs
// microseconds), while an indexer per small mailbox would cost every
// login of a thousand users a goroutine and a builder's buffers at once.
// A variable for tests.
var textIndexBackgroundMin = 1000

// textIndexBackgroundDelay is how long the background indexer waits after
// the SELECT that started it: a client's sync right after it (FLAGS,
// ENVELOPEs, a new login) gets the processors first. Folding the words
// of 100,000 deliveries takes seconds of CPU and its garbage makes the
// collector take a processor too; on 2 CPUs, a login right after a
// first SELECT of such a mailbox took 0.37 s instead of 0.25 s while it
// ran. A SEARCH that comes earlier does the work itself. A variable for
// tests.
var textIndexBackgroundDelay = 5 * time.Second

// startTextIndexer starts the background indexer of the selected
// mailbox v, unless background indexing is off, the mailbox is smaller
// than textIndexBackgroundMin, or one already runs for its Maildir. It
// runs on the session's goroutine and returns at once; the indexer waits
// for the process's one indexing slot (shared.indexSlot) before it works.
func (ss *session) startTextIndexer(v *view, messages int) {
	if !ss.srv.TextIndexBackground || messages == 0 || messages < textIndexBackgroundMin {
		return
	}
	g := textIndexGateOf(v.path)
	if !g.background.CompareAndSwap(false, true) {
		return
	}
	srv := ss.srv
	// Counted in the server's WaitGroup under mu after the shutting
	// check, as a session is: Shutdown waits for it, and never races it.
	srv.mu.Lock()
	if srv.shutting.Load() {
		srv.mu.Unlock()
		g.background.Store(false)
		return
	}
	srv.wg.Add(1)
	srv.mu.Unlock()
	// The indexer holds a reference on the view so that its structure
	// cache stays open while it reads; the session's own reference
	// keeps the view alive until this one is taken.
	srv.views.retain(v)
	g.started.Add(1)
	log := ss.log
	go func() {
		defer srv.wg.Done()
		defer srv.views.release(v)
		defer g.background.Store(false)
		// One background indexer works at a time in the process: its
		// buffers and its CPU are the foreground's cost, not one per
		// mailbox selected at once.
		delay := time.NewTimer(textIndexBackgroundDelay)
		defer delay.Stop()
		select {
		case <-delay.C:
		case <-srv.done:
			return
		}
		select {
		case srv.indexSlot <- struct{}{}:
			defer func() { <-srv.indexSlot }()
		case <-srv.done:
			return
		}
		runTextIndexer(v, g, srv.done, log)
	}()
}

// retain takes one more reference on v, which the caller already holds
// one on.
func (r *registry) retain(v *view) {
	r.mu.Lock()
	v.refs++
	r.mu.Unlock()
}

// runTextIndexer is the background indexer's work: one update of the
// index to the messages v has now.
func runTextIndexer(v *view, g *textIndexGate, done <-chan struct{}, log *slog.Logger) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v.mu.Lock()
	uidValidity := v.mbox.UIDValidity()
	uids := make([]uint32, len(v.msgs))
	for i := range v.msgs {
		uids[i] = v.msgs[i].uid
	}
	v.mu.Unlock()
	if len(uids) == 0 {
		return
	}
	ix, err := textindex.Open(v.path, uidValidity)
	if err != nil {
		log.Warn("background text index: unavailable", "mailbox", v.path, "err", err)
		return
	}
	defer func() { _ = ix.Close() }()
	foldPending(v, ix, log, indexPace{background: true})
	stop := func() bool {
		select {
		case <-done:
			return true
		default:
		}
		return g.waiting.Load() > 0
	}
	n, stopped := updateTextIndex(v, ix, uids, log, indexPace{background: true, stop: stop})
	if n > 0 || stopped {
		log.Debug("background text index", "mailbox", v.path, "indexed", n, "stopped", stopped)
	}
}

// yieldEvery is how long the background indexer works before it yields
// the processor: a tenth of the scheduler's 10 ms preemption slice, a few
// messages.
const yieldEvery = time.Millisecond

// indexInBackground adds uids to the index one message at a time on
// this goroutine, yielding the processor between messages about every
// yieldEvery, until done
// or stop reports true. It writes what it read either way, and returns
// how many messages that was and whether it stopped early.
func indexInBackground(v *view, ix *textindex.Index, uids []uint32, log *slog.Logger, stop func() bool) (int, bool) {
	g := textIndexGateOf(v.path)
	x := textindex.NewExtractor()
	rd := viewReader(v)
	b := ix.NewBuilder(x)
	var d textindex.Doc
	n, stopped := 0, false
	lastYield := time.Now()
	for _, uid := range uids {
		if stop != nil && stop() {
			stopped = true
			break
		}
		if err := collectOne(rd, x, &d, uid); err != nil {
			logUnindexed(log, uid, err)
		} else if err := b.AddDoc(&d); err != nil {
			log.Warn("background text index: update", "mailbox", v.path, "err", err)
			return n, true
		} else {
			n++
			g.indexed.Add(1)
		}
		if hook := g.afterMessage.Load(); hook != nil {
			(*hook)()
		}
		// Sessions' commands get the processor between messages. Not
		// after every one: a Gosched wakes an idle P (a futex call),
		// which cost a tenth of the indexing time when done per message.
		if now := time.Now(); now.Sub(lastYield) >= yieldEvery {
			runtime.Gosched()
			lastYield = now
		}
	}
	if err := b.Finish(); err != nil {
		log.Warn("background text index: update", "mailbox", v.path, "err", err)
		return n, true
	}
	return n, stopped
}
