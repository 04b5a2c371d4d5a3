package imapd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// inflater decodes a raw DEFLATE stream (RFC 1951) for COMPRESS=DEFLATE.
// compress/flate's Reader is not used for client input because it hands
// out decoded data only at a sync flush (an empty stored block), a full
// window or the end of the stream. Clients that end a command with zlib's
// Z_PARTIAL_FLUSH (mbsync/isync does) send the command's blocks complete,
// followed by one or two empty fixed-code blocks that are not byte-aligned:
// with compress/flate the server would wait for more input forever while
// the client waits for the answer. This inflater returns what it has at
// the end of every block, and never waits for input while it holds output.
//
// Memory: the 32 KiB window, the 4 KiB input buffer and about 1.3 KB of
// code tables. Every count and distance is checked: input that is not
// DEFLATE is an error, never a panic or an unbounded allocation.
type inflater struct {
	src    *bufio.Reader
	bitbuf uint32 // input bits not used yet, the next one lowest
	bitcnt uint   // how many; < 8 between calls to bits

	win   [inflateWindow]byte
	wpos  int   // where the next decoded octet goes in win
	total int64 // octets decoded so far, capped at inflateWindow

	inBlock  bool
	final    bool // the current or last block is the stream's last
	stored   int  // octets left in a stored block (inBlock, stored type)
	isStored bool
	lit      *huffman
	dist     *huffman
	dynLit   huffman
	dynDist  huffman
	copyLen  int // a back-reference not fully copied yet
	copyDist int

	err error
}

const (
	inflateWindow = 1 << 15
	maxCodeBits   = 15
	// maxSymbolBits is the most input one literal/length symbol with its
	// distance can take: 15 + 5 extra bits, 15 + 13 extra bits.
	maxSymbolBits = 48
)

var errInflateCorrupt = errors.New("invalid DEFLATE data")

func corrupt(what string) error { return fmt.Errorf("%w: %s", errInflateCorrupt, what) }

func newInflater(r io.Reader) *inflater {
	return &inflater{src: bufio.NewReaderSize(r, 4096)}
}

// huffman is a canonical prefix code (RFC 1951 §3.2.2): how many codes
// there are of each length, and the symbols ordered by code.
type huffman struct {
	count  [maxCodeBits + 1]uint16
	symbol [288]uint16
}

// build makes the code for lengths[sym] (0 = symbol unused). An
// over-subscribed set of lengths is an error; an incomplete one is kept,
// and a code it does not assign fails when it is met.
func (h *huffman) build(lengths []uint8) error {
	h.count = [maxCodeBits + 1]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l <= maxCodeBits; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return corrupt("over-subscribed code lengths")
		}
	}
	var offset [maxCodeBits + 2]uint16
	for l := 1; l <= maxCodeBits; l++ {
		offset[l+1] = offset[l] + h.count[l]
	}
	for sym, l := range lengths {
		if l != 0 {
			h.symbol[offset[l]] = uint16(sym)
			offset[l]++
		}
	}
	return nil
}

var fixedLit, fixedDist huffman

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	var d [30]uint8
	for i := range d {
		d[i] = 5
	}
	// Both are complete or under-subscribed constant tables: no error.
	_ = fixedLit.build(l[:])
	_ = fixedDist.build(d[:])
}

// RFC 1951 §3.2.5: base lengths and distances and their extra bits.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// RFC 1951 §3.2.7: the order code length code lengths are sent in.
	codeLengthOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// bits returns the next n (≤ 16) input bits, the first one lowest.
func (f *inflater) bits(n uint) (uint32, error) {
	for f.bitcnt < n {
		b, err := f.src.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		f.bitbuf |= uint32(b) << f.bitcnt
		f.bitcnt += 8
	}
	v := f.bitbuf & (1<<n - 1)
	f.bitbuf >>= n
	f.bitcnt -= n
	return v, nil
}

// decode reads one symbol of h. Codes are sent first bit first (RFC 1951
// §3.1.1), so the code grows by one bit at the bottom per step; first is
// the first code of the current length, index the position of its symbol.
// Bits are taken one at a time, and a byte is read only when the code
// needs it: decoding never reads past the symbol (which could wait for
// input the client has not sent).
func (f *inflater) decode(h *huffman) (int, error) {
	code, first, index := 0, 0, 0
	buf, cnt := f.bitbuf, f.bitcnt
	for l := 1; l <= maxCodeBits; l++ {
		if cnt == 0 {
			c, err := f.src.ReadByte()
			if err != nil {
				f.bitbuf, f.bitcnt = buf, cnt
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, err
			}
			buf, cnt = uint32(c), 8
		}
		code |= int(buf & 1)
		buf >>= 1
		cnt--
		n := int(h.count[l])
		if code-first < n {
			f.bitbuf, f.bitcnt = buf, cnt
			return int(h.symbol[index+code-first]), nil
		}
		index += n
		first = (first + n) << 1
		code <<= 1
	}
	f.bitbuf, f.bitcnt = buf, cnt
	return 0, corrupt("unassigned code")
}

// Read decodes into p. It returns at the end of every block that gave
// output, and before it would have to wait for input while holding
// output, so a client's flushed command is always seen.
func (f *inflater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && f.err == nil {
		switch {
		case f.copyLen > 0:
			n += f.copyOut(p[n:])
		case !f.inBlock:
			if f.final {
				f.err = io.EOF
				break
			}
			if n > 0 {
				return n, nil // a block ended: hand it out
			}
			f.err = f.header()
		case n > 0 && (f.isStored && f.src.Buffered() == 0 || !f.isStored && f.bitcnt+8*uint(f.src.Buffered()) < maxSymbolBits):
			return n, nil // more might mean waiting for the client
		case f.isStored:
			if f.stored == 0 {
				f.inBlock = false
				continue
			}
			var k int
			k, f.err = f.src.Read(p[n:min(len(p), n+f.stored)])
			if f.err == io.EOF {
				f.err = io.ErrUnexpectedEOF
			}
			f.remember(p[n : n+k])
			f.stored -= k
			n += k
		default:
			var lit bool
			lit, f.err = f.symbol(p[n:])
			if lit {
				n++
			}
		}
	}
	if n > 0 {
		return n, nil // the error, if any, comes with the next call
	}
	return 0, f.err
}

// header reads a block header (RFC 1951 §3.2.3) and what follows it up
// to the first symbol or stored octet.
func (f *inflater) header() error {
	h, err := f.bits(3)
	if err != nil {
		if err == io.ErrUnexpectedEOF {
			// The stream stopped between blocks: the client closed.
			return io.EOF
		}
		return err
	}
	f.final = h&1 == 1
	f.isStored = false
	switch h >> 1 {
	case 0:
		// RFC 1951 §3.2.4: byte-aligned LEN and its complement; bitcnt
		// is below 8, so dropping it aligns.
		f.bitbuf, f.bitcnt = 0, 0
		n, err := f.bits(16)
		if err != nil {
			return err
		}
		nn, err := f.bits(16)
		if err != nil {
			return err
		}
		if n != ^nn&0xffff {
			return corrupt("stored block length check")
		}
		f.isStored, f.stored = true, int(n)
	case 1:
		f.lit, f.dist = &fixedLit, &fixedDist
	case 2:
		if err := f.dynamicCodes(); err != nil {
			return err
		}
		f.lit, f.dist = &f.dynLit, &f.dynDist
	default:
		return corrupt("reserved block type")
	}
	f.inBlock = true
	return nil
}

// dynamicCodes reads the code tables of a dynamic block (RFC 1951 §3.2.7).
func (f *inflater) dynamicCodes() error {
	v, err := f.bits(14)
	if err != nil {
		return err
	}
	nlit, ndist, nclen := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlit > 286 || ndist > 30 {
		return corrupt("too many codes")
	}
	var clen [19]uint8
	for i := 0; i < nclen; i++ {
		b, err := f.bits(3)
		if err != nil {
			return err
		}
		clen[codeLengthOrder[i]] = uint8(b)
	}
	var clcode huffman
	if err := clcode.build(clen[:]); err != nil {
		return err
	}
	var lengths [286 + 30]uint8
	for i := 0; i < nlit+ndist; {
		sym, err := f.decode(&clcode)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var fill uint8
		var rep uint32
		switch sym {
		case 16:
			if i == 0 {
				return corrupt("repeat with no previous length")
			}
			fill = lengths[i-1]
			rep, err = f.bits(2)
			rep += 3
		case 17:
			rep, err = f.bits(3)
			rep += 3
		default:
			rep, err = f.bits(7)
			rep += 11
		}
		if err != nil {
			return err
		}
		if i+int(rep) > nlit+ndist {
			return corrupt("code lengths overflow")
		}
		for ; rep > 0; rep-- {
			lengths[i] = fill
			i++
		}
	}
	if lengths[256] == 0 {
		return corrupt("no end-of-block code")
	}
	if err := f.dynLit.build(lengths[:nlit]); err != nil {
		return err
	}
	return f.dynDist.build(lengths[nlit : nlit+ndist])
}

// symbol decodes one literal/length symbol of a compressed block: a
// literal goes to p[0] (lit is true), end-of-block ends the block, a
// length and distance start a copy.
func (f *inflater) symbol(p []byte) (lit bool, err error) {
	sym, err := f.decode(f.lit)
	if err != nil {
		return false, err
	}
	switch {
	case sym < 256:
		p[0] = byte(sym)
		f.remember(p[:1])
		return true, nil
	case sym == 256:
		f.inBlock = false
		return false, nil
	case sym > 285:
		return false, corrupt("invalid length symbol")
	}
	sym -= 257
	extra, err := f.bits(uint(lengthExtra[sym]))
	if err != nil {
		return false, err
	}
	length := int(lengthBase[sym]) + int(extra)
	dsym, err := f.decode(f.dist)
	if err != nil {
		return false, err
	}
	if dsym > 29 {
		return false, corrupt("invalid distance symbol")
	}
	if extra, err = f.bits(uint(distExtra[dsym])); err != nil {
		return false, err
	}
	dist := int(distBase[dsym]) + int(extra)
	if int64(dist) > f.total {
		return false, corrupt("distance before the start of the stream")
	}
	f.copyLen, f.copyDist = length, dist
	return false, nil
}

// copyOut copies the pending back-reference into p and the window, and
// returns how many octets it copied. It copies in runs no longer than the
// distance, so no run reads what it writes itself (the source of a long
// match overlaps its own output, RFC 1951 §3.2.3), and split where either
// end wraps around the window.
func (f *inflater) copyOut(p []byte) int {
	const mask = inflateWindow - 1
	k := min(len(p), f.copyLen)
	for done := 0; done < k; {
		src := (f.wpos - f.copyDist) & mask
		run := min(k-done, f.copyDist, inflateWindow-src, inflateWindow-f.wpos)
		copy(f.win[f.wpos:f.wpos+run], f.win[src:src+run])
		copy(p[done:done+run], f.win[f.wpos:f.wpos+run])
		f.wpos = (f.wpos + run) & mask
		done += run
	}
	f.copyLen -= k
	f.total = min(f.total+int64(k), inflateWindow)
	return k
}

// remember puts decoded octets into the window.
func (f *inflater) remember(b []byte) {
	f.total = min(f.total+int64(len(b)), inflateWindow)
	for len(b) > 0 {
		c := copy(f.win[f.wpos:], b)
		f.wpos = (f.wpos + c) & (inflateWindow - 1)
		b = b[c:]
	}
}
