package textindex

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"slices"
)

// termTable is a Builder's terms: an open-addressing table over an arena
// of term octets, each term numbered in the order it came. Folding
// pending records makes millions of lookups, so this, and not a
// map[string][]uint32 with a slice per term, is what a fold costs.
type termTable struct {
	slots   []uint32 // 0 empty, else a term number plus 1
	entries []termEntry
	arena   []byte
}

type termEntry struct {
	hash     uint32
	off, len uint32
	last     uint32 // the last UID posted (UIDs are never 0)
}

// termHash is the hash of a term: its word's hash (fnv32, as wordSet
// computes it) mixed with its field octet.
func termHash(field byte, wordHash uint32) uint32 {
	return (wordHash ^ uint32(field)) * 0x9e3779b1
}

func (t *termTable) len() int { return len(t.entries) }

// number returns the number of term, adding it when missing.
func (t *termTable) number(term []byte, h uint32) uint32 {
	if 2*(len(t.entries)+1) > len(t.slots) {
		t.grow()
	}
	mask := uint32(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			n := uint32(len(t.entries))
			t.entries = append(t.entries, termEntry{hash: h, off: uint32(len(t.arena)), len: uint32(len(term))})
			t.arena = append(t.arena, term...)
			t.slots[i] = n + 1
			return n
		}
		e := &t.entries[s-1]
		if e.hash == h && bytes.Equal(t.arena[e.off:e.off+e.len], term) {
			return s - 1
		}
	}
}

// presize makes room for about n terms of eight octets, so that the
// table does not grow (copying) as they come.
func (t *termTable) presize(n int) {
	t.entries = slices.Grow(t.entries, n)
	t.arena = slices.Grow(t.arena, 8*n)
	if size := 1024; len(t.slots) < 2*n {
		for size < 2*n {
			size *= 2
		}
		t.slots = make([]uint32, size)
		mask := uint32(size - 1)
		for k := range t.entries {
			i := t.entries[k].hash & mask
			for t.slots[i] != 0 {
				i = (i + 1) & mask
			}
			t.slots[i] = uint32(k + 1)
		}
	}
}

func (t *termTable) grow() {
	t.slots = make([]uint32, max(1024, 2*len(t.slots)))
	mask := uint32(len(t.slots) - 1)
	for n := range t.entries {
		i := t.entries[n].hash & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = uint32(n + 1)
	}
}

func (t *termTable) term(n uint32) []byte {
	e := &t.entries[n]
	return t.arena[e.off : e.off+e.len]
}

// sorted returns the term numbers in term order. The sort compares the
// terms' first eight octets as one integer, held in the slice it sorts,
// and reaches for the arena only on a tie: hundreds of thousands of
// terms sort without a cache miss per comparison.
func (t *termTable) sorted() []uint32 {
	type key struct {
		prefix uint64
		n      uint32
	}
	keys := make([]key, len(t.entries))
	for n := range t.entries {
		var p [8]byte
		copy(p[:], t.term(uint32(n)))
		keys[n] = key{binary.BigEndian.Uint64(p[:]), uint32(n)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.prefix, b.prefix); c != 0 {
			return c
		}
		return bytes.Compare(t.term(a.n), t.term(b.n))
	})
	out := make([]uint32, len(keys))
	for i, k := range keys {
		out[i] = k.n
	}
	return out
}

// reset empties the table, keeping its memory.
func (t *termTable) reset() {
	clear(t.slots)
	t.entries, t.arena = t.entries[:0], t.arena[:0]
}

// postingLists groups the postings of docs by term (a counting sort):
// the UIDs of term n are flat[start[n]:start[n+1]], ascending and unique.
func postingLists(posts []uint32, docs []docSpan, nterms int, flat []uint32) (start, _ []uint32) {
	start = make([]uint32, nterms+1)
	for _, n := range posts {
		start[n+1]++
	}
	for i := 1; i <= nterms; i++ {
		start[i] += start[i-1]
	}
	flat = slices.Grow(flat[:0], len(posts))[:len(posts)]
	fill := slices.Clone(start[:nterms])
	sorted := true
	from := uint32(0)
	for _, d := range docs {
		for _, n := range posts[from:d.end] {
			i := fill[n]
			if i > start[n] && flat[i-1] >= d.uid {
				sorted = false
			}
			flat[i] = d.uid
			fill[n] = i + 1
		}
		from = d.end
	}
	if !sorted {
		// Messages came out of UID order (or one twice): sort and
		// compact every list, moving the lists down over the gaps.
		out := uint32(0)
		for n := range nterms {
			l := flat[start[n]:start[n+1]]
			slices.Sort(l)
			l = slices.Compact(l)
			start[n] = out
			out += uint32(copy(flat[out:], l))
		}
		start[nterms] = out
	}
	return start, flat
}
