package textindex

import "slices"

// Set is a set of UIDs: the candidates of a query.
type Set struct {
	all  bool
	base uint32
	bits []uint64
	m    map[uint32]struct{}
}

// Has reports whether uid is in the set.
func (s *Set) Has(uid uint32) bool {
	if s.all {
		return true
	}
	if s.bits != nil {
		if uid < s.base {
			return false
		}
		i := uint64(uid - s.base)
		return i/64 < uint64(len(s.bits)) && s.bits[i/64]&(1<<(i%64)) != 0
	}
	_, ok := s.m[uid]
	return ok
}

// All reports a set that holds every message (the query has no word to
// look up).
func (s *Set) All() bool { return s.all }

// maxBitmap bounds the UID range a bitmap set spans (8 MiB); wider
// ranges use a map.
const maxBitmap = 64 << 20

func (ix *Index) newSet() *Set {
	if len(ix.covered) == 0 {
		return &Set{m: map[uint32]struct{}{}}
	}
	lo, hi := ix.covered[0], ix.covered[len(ix.covered)-1]
	if hi-lo >= maxBitmap {
		return &Set{m: map[uint32]struct{}{}}
	}
	return &Set{base: lo, bits: make([]uint64, (uint64(hi-lo)+64)/64)}
}

// add puts uid in the set. UIDs outside the covered range are postings
// of a message whose indexing failed half-way: it is not covered, so the
// caller scans it anyway, and the set may drop it.
func (s *Set) add(uid uint32) {
	if s.bits == nil {
		s.m[uid] = struct{}{}
		return
	}
	if uid < s.base {
		return
	}
	if i := uint64(uid - s.base); i/64 < uint64(len(s.bits)) {
		s.bits[i/64] |= 1 << (i % 64)
	}
}

func (s *Set) intersect(o *Set) {
	if s.bits != nil {
		for i := range s.bits {
			s.bits[i] &= o.bits[i]
		}
		return
	}
	for u := range s.m {
		if _, ok := o.m[u]; !ok {
			delete(s.m, u)
		}
	}
}

func (s *Set) union(o *Set) {
	if s.bits != nil {
		for i := range s.bits {
			s.bits[i] |= o.bits[i]
		}
		return
	}
	for u := range o.m {
		s.m[u] = struct{}{}
	}
}

// Answer is what the index says about one query on one field of the
// covered messages.
type Answer struct {
	// Candidates holds every covered message whose field holds the query,
	// and maybe others.
	Candidates *Set
	// Verify holds the candidates that must be checked against their
	// text; a candidate outside it is a match. When the query is a
	// single word (no separator in it), an occurrence lies inside one
	// word of the text, so the word lists answer exactly and only the
	// overflow messages need a look; otherwise every candidate does.
	Verify *Set
}

// Candidates answers a folded query (see Fold) for the covered messages:
// messages the index does not cover are the caller's to scan. errDamaged
// means the index is inconsistent; the caller Resets it.
func (ix *Index) Candidates(field Field, needle []byte) (ans Answer, err error) {
	err = ix.readLocked(func() error {
		ans, err = ix.candidates(field, needle)
		return err
	})
	return ans, err
}

func (ix *Index) candidates(field Field, needle []byte) (Answer, error) {
	runs := planQuery(needle)
	if len(runs) == 0 {
		all := &Set{all: true}
		if len(needle) == 0 {
			return Answer{Candidates: all, Verify: &Set{m: map[uint32]struct{}{}}}, nil
		}
		return Answer{Candidates: all, Verify: all}, nil
	}
	sets := make([]*Set, len(runs))
	for i := range sets {
		sets[i] = ix.newSet()
	}
	overflow := ix.newSet()
	ovKey := overflowTerm(field)
	var uids []uint32
	var targets []*Set
	for _, s := range ix.segs {
		it := termIter{d: decoderAt{b: s.terms}, left: s.nterms}
		for it.next() {
			t := it.term
			targets = targets[:0]
			switch {
			case string(t) == ovKey:
				targets = append(targets, overflow)
			case len(t) > 0 && t[0] == byte(field):
				for i, r := range runs {
					if r.matches(t[1:]) {
						targets = append(targets, sets[i])
					}
				}
			}
			if len(targets) == 0 {
				continue
			}
			var ok bool
			if uids, ok = decodePostings(uids[:0], it.post, it.npost); !ok {
				return Answer{}, errDamaged
			}
			for _, set := range targets {
				for _, u := range uids {
					set.add(u)
				}
			}
		}
		if it.d.err || it.left != 0 {
			return Answer{}, errDamaged
		}
	}
	res := sets[0]
	for _, s := range sets[1:] {
		res.intersect(s)
	}
	res.union(overflow)
	if len(runs) == 1 && runs[0].kind == runContains {
		return Answer{Candidates: res, Verify: overflow}, nil
	}
	return Answer{Candidates: res, Verify: res}, nil
}

// Missing returns the UIDs of uids (ascending) the index does not cover.
func (ix *Index) Missing(uids []uint32) []uint32 {
	var out []uint32
	for _, u := range uids {
		if _, ok := slices.BinarySearch(ix.covered, u); !ok {
			out = append(out, u)
		}
	}
	return out
}

// IsDamaged reports whether err says the index is inconsistent.
func IsDamaged(err error) bool { return err == errDamaged }
