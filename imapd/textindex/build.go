package textindex

import (
	"container/heap"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"mailroom/imapd/message"
	"mailroom/internal/fsx"
)

// Segment limits: a Builder (and Compact) writes a segment out when it
// holds this many postings or distinct terms, so that memory stays
// bounded whatever the mailbox size.
const (
	maxPostings     = 2 << 20
	maxTerms        = 256 << 10
	maxSegmentBytes = 16 << 20
)

// overflowTerm is the entry listing a field's overflow messages; it sorts
// before every word entry.
func overflowTerm(f Field) string { return "\x00" + string(f) }

// Builder adds messages to an Index, writing a segment each time its
// limits are reached and at Finish.
type Builder struct {
	ix       *Index
	x        *Extractor
	terms    map[string]*[]uint32
	covered  []uint32
	postings int
	uid      uint32
	key      []byte
	w        segmentWriter
	doc      Doc // for Add
}

// NewBuilder returns a Builder that extracts text with x.
func (ix *Index) NewBuilder(x *Extractor) *Builder {
	return &Builder{ix: ix, x: x, terms: map[string]*[]uint32{}}
}

// addPosting appends the current UID to a term's list: one map lookup
// for a known term (the list is reached through a pointer).
func (b *Builder) addPosting(term []byte) {
	list := b.terms[string(term)]
	if list == nil {
		list = new([]uint32)
		b.terms[string(term)] = list
	}
	if n := len(*list); n > 0 && (*list)[n-1] == b.uid {
		return
	}
	*list = append(*list, b.uid)
	b.postings++
}

// wordSet is an open-addressing set of the words of one message and
// field, its memory reused from message to message.
type wordSet struct {
	slots []wordSlot
	arena []byte
	order []wordSlot // the words in the order they came
	n     int
}

type wordSlot struct {
	hash     uint32
	off, len uint32
	used     bool
}

func (s *wordSet) reset() {
	if s.n > 0 {
		clear(s.slots)
	}
	s.arena, s.order, s.n = s.arena[:0], s.order[:0], 0
}

// add reports whether w was not in the set, and adds it.
func (s *wordSet) add(w []byte) bool {
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	h := fnv32(w)
	mask := uint32(len(s.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		sl := &s.slots[i]
		if !sl.used {
			*sl = wordSlot{hash: h, off: uint32(len(s.arena)), len: uint32(len(w)), used: true}
			s.order = append(s.order, *sl)
			s.arena = append(s.arena, w...)
			s.n++
			return true
		}
		if sl.hash == h && string(s.arena[sl.off:sl.off+sl.len]) == string(w) {
			return false
		}
	}
}

func (s *wordSet) grow() {
	old := s.slots
	s.slots = make([]wordSlot, max(256, 2*len(old)))
	mask := uint32(len(s.slots) - 1)
	for _, sl := range old {
		if !sl.used {
			continue
		}
		i := sl.hash & mask
		for s.slots[i].used {
			i = (i + 1) & mask
		}
		s.slots[i] = sl
	}
}

func fnv32(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// Add indexes one message, given its structure and its file. An error
// leaves the message uncovered.
func (b *Builder) Add(uid uint32, st *message.Structure, ra io.ReaderAt) error {
	if err := b.x.Collect(&b.doc, uid, st, ra); err != nil {
		return err
	}
	return b.AddDoc(&b.doc)
}

// AddDoc indexes the words of one message that Collect gathered, maybe
// in another goroutine; documents may come in any UID order.
func (b *Builder) AddDoc(d *Doc) error {
	b.uid = d.uid
	for i, f := range []Field{Header, Body} {
		ws := &d.words[i]
		for _, w := range ws.order {
			b.key = append(append(b.key[:0], byte(f)), ws.arena[w.off:w.off+w.len]...)
			b.addPosting(b.key)
		}
		if d.overflow[i] {
			b.addPosting([]byte(overflowTerm(f)))
		}
	}
	b.covered = append(b.covered, d.uid)
	if b.postings >= maxPostings || len(b.terms) >= maxTerms {
		return b.flush()
	}
	return nil
}

// Doc holds the distinct words of one message per field, gathered by
// Collect for AddDoc. Its memory is reused from message to message.
type Doc struct {
	uid      uint32
	words    [2]wordSet // Header, Body
	overflow [2]bool
	split    wordSplitter
}

// Collect gathers the distinct words of a message into d.
func (x *Extractor) Collect(d *Doc, uid uint32, st *message.Structure, ra io.ReaderAt) error {
	d.uid = uid
	for i, f := range []Field{Header, Body} {
		ws := &d.words[i]
		ws.reset()
		d.split.overflow = false
		d.split.add = func(w []byte) { ws.add(w) }
		emit := func(p []byte) error { d.split.write(p); return nil }
		var err error
		if f == Header {
			err = x.Header(st, ra, emit)
		} else {
			err = x.Body(st, ra, emit)
		}
		d.split.end()
		if err != nil {
			return err
		}
		d.overflow[i] = d.split.overflow
	}
	return nil
}

// flush writes what the Builder holds as one segment.
func (b *Builder) flush() error {
	if len(b.covered) == 0 {
		return nil
	}
	keys := make([]string, 0, len(b.terms))
	for k := range b.terms {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b.w.reset()
	for _, k := range keys {
		list := *b.terms[k]
		slices.Sort(list) // Add may get UIDs out of order
		b.w.appendTerm([]byte(k), slices.Compact(list))
	}
	slices.Sort(b.covered)
	seg := b.w.frame(slices.Compact(b.covered))
	clear(b.terms)
	b.covered, b.postings = b.covered[:0], 0
	return b.ix.appendSegment(seg)
}

// Finish writes the rest, syncs the file and reloads the index so that
// it answers for the added messages.
func (b *Builder) Finish() error {
	if err := b.flush(); err != nil {
		return err
	}
	if err := b.ix.f.Sync(); err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	return b.ix.reopen()
}

// NeedsCompact reports whether Compact is worth it: many segments, or
// many covered messages that are gone (live reports the present ones).
func (ix *Index) NeedsCompact(live func(uint32) bool) bool {
	if len(ix.segs) > 16 {
		return true
	}
	dead := 0
	for _, u := range ix.covered {
		if !live(u) {
			dead++
		}
	}
	return dead > 0 && dead*4 >= len(ix.covered)
}

// Compact rewrites the index without the messages live reports gone,
// merging its segments, into a new file renamed over the old one. Memory
// is bounded by maxSegmentBytes and one term's postings.
func (ix *Index) Compact(live func(uint32) bool) error {
	err := ix.withLock(func() error {
		if err := ix.load(); err != nil {
			return err
		}
		return ix.rewrite(live)
	})
	if err != nil {
		return err
	}
	return ix.reopen()
}

func (ix *Index) rewrite(live func(uint32) bool) error {
	tmp := ix.path + ".tmp" + strconv.Itoa(os.Getpid())
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	ok := false
	defer func() {
		_ = f.Close()
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(fileHeader(ix.uidValidity)); err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	var covered []uint32
	for _, u := range ix.covered {
		if live(u) {
			covered = append(covered, u)
		}
	}
	if err := ix.mergeInto(f, covered, live); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	if err := os.Rename(tmp, ix.path); err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	ok = true
	return fsx.SyncDir(filepath.Dir(ix.path))
}

// mergeInto writes the union of the segments' entries, in term order,
// as segments of at most maxSegmentBytes each; the first carries the
// covered list.
func (ix *Index) mergeInto(f *os.File, covered []uint32, live func(uint32) bool) error {
	var w segmentWriter
	h := &iterHeap{}
	for _, s := range ix.segs {
		it := &termIter{d: decoderAt{b: s.terms}, left: s.nterms}
		if it.next() {
			heap.Push(h, it)
		} else if it.d.err {
			return errDamaged
		}
	}
	var list, merged []uint32
	write := func(force bool) error {
		if w.n == 0 && !force {
			return nil
		}
		if _, err := f.Write(w.frame(covered)); err != nil {
			return fmt.Errorf("textindex: %w", err)
		}
		covered = nil
		w.reset()
		return nil
	}
	var term []byte
	for h.Len() > 0 {
		term = append(term[:0], (*h)[0].term...)
		list = list[:0]
		for h.Len() > 0 && string((*h)[0].term) == string(term) {
			it := (*h)[0]
			var ok bool
			if list, ok = decodePostings(list, it.post, it.npost); !ok {
				return errDamaged
			}
			if it.next() {
				heap.Fix(h, 0)
			} else {
				if it.d.err {
					return errDamaged
				}
				heap.Pop(h)
			}
		}
		slices.Sort(list)
		merged = merged[:0]
		for _, u := range slices.Compact(list) {
			if live(u) {
				merged = append(merged, u)
			}
		}
		if len(merged) > 0 {
			w.appendTerm(term, merged)
		}
		if len(w.terms) >= maxSegmentBytes {
			if err := write(false); err != nil {
				return err
			}
		}
	}
	return write(covered != nil)
}

// iterHeap orders segment iterators by their current term.
type iterHeap []*termIter

func (h iterHeap) Len() int           { return len(h) }
func (h iterHeap) Less(i, j int) bool { return string(h[i].term) < string(h[j].term) }
func (h iterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *iterHeap) Push(x any)        { *h = append(*h, x.(*termIter)) }
func (h *iterHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
