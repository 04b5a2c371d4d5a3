package textindex

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"mailroom/internal/fsx"
	"mailroom/internal/message"
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
	terms    termTable
	posts    []uint32  // term numbers, message after message
	docs     []docSpan // the messages of posts
	flat     []uint32  // flush's posting lists, kept from one to the next
	seg      []byte    // flush's segment, kept from one to the next
	covered  []uint32
	postings int
	uid      uint32
	key      []byte
	w        segmentWriter
	doc      Doc // for Add
}

// NewBuilder returns a Builder that extracts text with x.
func (ix *Index) NewBuilder(x *Extractor) *Builder {
	return &Builder{ix: ix, x: x}
}

// docSpan is one message of a Builder's postings: its UID and where its
// term numbers end in posts.
type docSpan struct{ uid, end uint32 }

// addPosting notes that the current message has term; h is termHash of
// the term.
func (b *Builder) addPosting(term []byte, h uint32) {
	n := b.terms.number(term, h)
	if e := &b.terms.entries[n]; e.last != b.uid {
		e.last = b.uid
		b.posts = append(b.posts, n)
		b.postings++
	}
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
	for i, f := range pendingFields {
		ws := &d.words[i]
		for _, w := range ws.order {
			b.key = append(append(b.key[:0], byte(f)), ws.arena[w.off:w.off+w.len]...)
			b.addPosting(b.key, termHash(byte(f), w.hash))
		}
	}
	return b.addOverflow(d.overflow)
}

// addRecord indexes the words of a pending record as those of uid.
func (b *Builder) addRecord(uid uint32, r *pendingRecord) error {
	b.uid = uid
	_ = r.eachWord(func(i int, w []byte) {
		f := byte(pendingFields[i])
		b.key = append(append(b.key[:0], f), w...)
		b.addPosting(b.key, termHash(f, fnv32(w)))
	})
	return b.addOverflow(r.overflow)
}

// addOverflow lists the current message as overflow for the fields
// that say so, and covers it.
func (b *Builder) addOverflow(overflow [2]bool) error {
	for i, f := range pendingFields {
		if overflow[i] {
			ov := overflowTerm(f)
			b.addPosting([]byte(ov), termHash(0, fnv32([]byte(ov))))
		}
	}
	b.covered = append(b.covered, b.uid)
	b.docs = append(b.docs, docSpan{b.uid, uint32(len(b.posts))})
	if b.postings >= maxPostings || b.terms.len() >= maxTerms {
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
	var start []uint32
	start, b.flat = postingLists(b.posts, b.docs, b.terms.len(), b.flat)
	slices.Sort(b.covered)
	// The segment is built in one buffer, framed in place (see
	// segmentWriter.frame): about the terms, two octets per posting.
	seg := slices.Grow(b.seg[:0], len(b.terms.arena)+2*b.postings+8*b.terms.len()+4*len(b.covered)+16)
	seg = append(seg, 0, 0, 0, 0)
	covered := slices.Compact(b.covered)
	seg = binary.AppendUvarint(seg, uint64(len(covered)))
	seg = appendPostings(seg, covered)
	seg = binary.AppendUvarint(seg, uint64(b.terms.len()))
	var scratch []byte
	for _, n := range b.terms.sorted() {
		seg, scratch = appendTermEntry(seg, scratch, b.terms.term(n), b.flat[start[n]:start[n+1]])
	}
	binary.BigEndian.PutUint32(seg, uint32(len(seg)-4))
	seg = binary.BigEndian.AppendUint32(seg, crc32.Checksum(seg[4:], crcTable))
	b.seg = seg
	b.terms.reset()
	b.posts, b.docs, b.covered, b.postings = b.posts[:0], b.docs[:0], b.covered[:0], 0
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
