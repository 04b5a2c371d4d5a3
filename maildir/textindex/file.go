package textindex

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// File layout (see the package doc). Integers in the fixed parts are
// big-endian; inside a segment body they are unsigned varints
// (encoding/binary's Uvarint).
const (
	// FileName is the index's name beside the Maildir's new/ and cur/.
	FileName = "mailroom-textindex"
	magic    = "MRTI"
	// Version is the format version; a file of another is rebuilt.
	Version   = 1
	headerLen = 16
	// maxSegment bounds one segment's body; a longer length is damage.
	maxSegment = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errDamaged marks a file or segment that does not parse.
var errDamaged = errors.New("textindex: damaged index")

// fileHeader returns the 16-octet header of an index of uidValidity.
func fileHeader(uidValidity uint32) []byte {
	h := make([]byte, headerLen)
	copy(h, magic)
	binary.BigEndian.PutUint32(h[4:], Version)
	binary.BigEndian.PutUint32(h[8:], uidValidity)
	binary.BigEndian.PutUint32(h[12:], crc32.Checksum(h[:12], crcTable))
	return h
}

// checkHeader reports whether b starts with a valid header of this
// version and uidValidity.
func checkHeader(b []byte, uidValidity uint32) bool {
	if len(b) < headerLen || string(b[:4]) != magic {
		return false
	}
	return binary.BigEndian.Uint32(b[4:]) == Version &&
		binary.BigEndian.Uint32(b[8:]) == uidValidity &&
		binary.BigEndian.Uint32(b[12:]) == crc32.Checksum(b[:12], crcTable)
}

// segment is one parsed segment: the UIDs it covers and its term entries.
type segment struct {
	covered []uint32 // ascending
	terms   []byte   // the entries region of the body
	nterms  int
}

// nextSegment parses the segment at the start of b and returns it and its
// total length (len, body, crc).
func nextSegment(b []byte) (segment, int, error) {
	if len(b) < 8 {
		return segment{}, 0, errDamaged
	}
	n := binary.BigEndian.Uint32(b)
	if n > maxSegment || uint64(len(b)) < 8+uint64(n) {
		return segment{}, 0, errDamaged
	}
	body := b[4 : 4+n]
	if binary.BigEndian.Uint32(b[4+n:]) != crc32.Checksum(body, crcTable) {
		return segment{}, 0, errDamaged
	}
	seg, err := parseSegmentBody(body)
	return seg, int(8 + n), err
}

// parseSegmentBody reads the covered UIDs and checks that the term
// entries are well formed and in ascending order, so that later walks
// over them need no checks of their own.
func parseSegmentBody(body []byte) (segment, error) {
	var seg segment
	d := decoderAt{b: body}
	ncov := d.uvarint()
	if ncov > uint64(len(body)) {
		return seg, errDamaged
	}
	seg.covered = make([]uint32, 0, ncov)
	var uid uint64
	for i := uint64(0); i < ncov; i++ {
		delta := d.uvarint()
		if i > 0 && delta == 0 {
			return seg, errDamaged
		}
		uid += delta
		if uid == 0 || uid > 0xffffffff {
			return seg, errDamaged
		}
		seg.covered = append(seg.covered, uint32(uid))
	}
	nterms := d.uvarint()
	if d.err || nterms > uint64(len(body)) {
		return seg, errDamaged
	}
	// The term entries are checked as they are walked (termIter), not
	// here: opening the index must not cost a pass over every posting.
	seg.terms, seg.nterms = body[d.off:], int(nterms)
	return seg, nil
}

// decoderAt reads varints from b; err sticks.
type decoderAt struct {
	b   []byte
	off int
	err bool
}

func (d *decoderAt) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.err = true
		return 0
	}
	d.off += n
	return v
}

func (d *decoderAt) bytes(n uint64) []byte {
	if d.err || n > uint64(len(d.b)-d.off) {
		d.err = true
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

// termIter walks the term entries of a segment:
//
//	entry = tlen term[tlen] npost plen postings[plen]
type termIter struct {
	d     decoderAt
	left  int
	term  []byte
	npost uint64
	post  []byte
}

func (it *termIter) next() bool {
	if it.left == 0 || it.d.err {
		return false
	}
	it.left--
	it.term = it.d.bytes(it.d.uvarint())
	it.npost = it.d.uvarint()
	it.post = it.d.bytes(it.d.uvarint())
	return !it.d.err
}

// decodePostings appends the n ascending UIDs of a posting list (deltas)
// to dst; ok is false if the list is malformed.
func decodePostings(dst []uint32, b []byte, n uint64) ([]uint32, bool) {
	if n > uint64(len(b)) {
		return dst, false
	}
	d := decoderAt{b: b}
	var uid uint64
	for i := uint64(0); i < n; i++ {
		delta := d.uvarint()
		if d.err || (i > 0 && delta == 0) {
			return dst, false
		}
		uid += delta
		if uid == 0 || uid > 0xffffffff {
			return dst, false
		}
		dst = append(dst, uint32(uid))
	}
	return dst, d.off == len(b)
}

// appendPostings appends uids (ascending, unique) as deltas.
func appendPostings(dst []byte, uids []uint32) []byte {
	var prev uint32
	for _, u := range uids {
		dst = binary.AppendUvarint(dst, uint64(u-prev))
		prev = u
	}
	return dst
}

// segmentWriter builds a segment body in memory and frames it.
type segmentWriter struct {
	terms   []byte
	n       int
	scratch []byte
}

// appendTerm adds an entry; terms must come in ascending order.
func (w *segmentWriter) appendTerm(term []byte, uids []uint32) {
	w.terms, w.scratch = appendTermEntry(w.terms, w.scratch, term, uids)
	w.n++
}

// appendTermEntry appends one term entry to dst, encoding the postings
// through scratch first (their length comes before them).
func appendTermEntry(dst, scratch, term []byte, uids []uint32) ([]byte, []byte) {
	scratch = appendPostings(scratch[:0], uids)
	dst = binary.AppendUvarint(dst, uint64(len(term)))
	dst = append(dst, term...)
	dst = binary.AppendUvarint(dst, uint64(len(uids)))
	dst = binary.AppendUvarint(dst, uint64(len(scratch)))
	return append(dst, scratch...), scratch
}

// reset empties the writer, keeping its buffers.
func (w *segmentWriter) reset() { w.terms, w.n = w.terms[:0], 0 }

// frame returns len, body and crc of a segment covering the given UIDs.
func (w *segmentWriter) frame(covered []uint32) []byte {
	body := binary.AppendUvarint(nil, uint64(len(covered)))
	body = appendPostings(body, covered)
	body = binary.AppendUvarint(body, uint64(w.n))
	out := make([]byte, 4, 8+len(body)+len(w.terms))
	out = append(out, body...)
	out = append(out, w.terms...)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out[4:], crcTable))
}
