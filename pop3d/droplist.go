package pop3d

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// dropList holds a snapshot's messages (UID, CRLF size, file name) in
// little space: a session keeps it from login to QUIT, and a server holds
// many. Records are added in ascending UID order and found by number
// through a block index holding every dropBlock-th record's offset and UID.
//
// A record is a sequence of uvarints:
//
//	uidDelta<<1 | fromW   the UID minus the previous record's (0 for the
//	                      first of a block); fromW: the size is the
//	                      name's ,W= value
//	size                  only when fromW is 0
//	name tokens           ending with token 0
//
// Name tokens, each a uvarint x:
//
//	x&1 == 1    a run of 1–18 decimal digits not starting with '0': x>>1,
//	            except that a name's first token, when the previous record
//	            of the block also began with a number, is the zigzag
//	            difference from that number (delivery times grow slowly)
//	x&3 == 0    text number x>>2 of texts; text 0 ends the name
//	x&3 == 2    x>>2 bytes of text inline, which follow
//
// Text is what lies between the numbers: ".M", "P", ".<host>,S=", ",W=",
// ":2,S" repeat in every name of a Maildir and are stored once in texts. A
// message named in Dovecot's form takes about 20 bytes.
type dropList struct {
	data   []byte
	blocks []dropBlockRef
	n      int
	texts  []string          // texts[0] is "" and ends a name
	index  map[string]uint64 // texts -> number, while records are added
	// scratch is the pooled buffer data grows in until finish.
	scratch *[]byte
	// The state of the last record added, for the next one's deltas.
	lastUID   uint32
	lastFirst uint64
	lastHas   bool // the last record of the block began with a number
}

// dropBlockRef locates a block: its first record's offset and UID.
type dropBlockRef struct {
	off uint32
	uid uint32
}

// dropBlock is how many records share a block-index entry.
const dropBlock = 32

// nameTextsMax bounds the text table: names with random text (no repeats)
// get it inline instead.
const nameTextsMax = 1024

// dropEntry is one decoded record. name is only valid until the buffer it
// was decoded into is reused.
type dropEntry struct {
	uid  uint32
	size int64
	name []byte
}

// add appends a message; uid must be above the last one's.
func (l *dropList) add(uid uint32, name string, size int64) {
	if l.n%dropBlock == 0 {
		l.blocks = append(l.blocks, dropBlockRef{off: uint32(len(l.data)), uid: uid})
		l.lastUID, l.lastHas = uid, false
	}
	w, ok := nameVSize(name)
	fromW := ok && w == size
	head := uint64(uid-l.lastUID) << 1
	if fromW {
		head |= 1
	}
	l.data = binary.AppendUvarint(l.data, head)
	if !fromW {
		l.data = binary.AppendUvarint(l.data, uint64(size))
	}
	l.lastUID = uid
	l.addName(name)
	l.n++
}

// addName appends name's tokens.
func (l *dropList) addName(name string) {
	has := false
	for i := 0; i < len(name); {
		j := i
		if c := name[i]; c >= '1' && c <= '9' {
			var v uint64
			for j < len(name) && j-i < 18 && name[j] >= '0' && name[j] <= '9' {
				v = v*10 + uint64(name[j]-'0')
				j++
			}
			x := v
			if i == 0 {
				if l.lastHas {
					x = zigzag(int64(v - l.lastFirst))
				}
				has, l.lastFirst = true, v
			}
			l.data = binary.AppendUvarint(l.data, x<<1|1)
		} else {
			for j < len(name) && (name[j] < '1' || name[j] > '9') {
				j++
			}
			l.appendText(name[i:j])
		}
		i = j
	}
	l.data = append(l.data, 0)
	l.lastHas = has
}

// appendText appends a token for the non-empty text t.
func (l *dropList) appendText(t string) {
	if l.index == nil {
		if len(l.texts) == 0 {
			l.texts = []string{""}
		}
		l.index = make(map[string]uint64, len(l.texts))
		for k, s := range l.texts[1:] {
			l.index[s] = uint64(k + 1)
		}
	}
	k, ok := l.index[t]
	if !ok && len(l.texts) < nameTextsMax {
		k, ok = uint64(len(l.texts)), true
		t = strings.Clone(t) // t may be a slice of a much larger string
		l.texts = append(l.texts, t)
		l.index[t] = k
	}
	if ok {
		l.data = binary.AppendUvarint(l.data, k<<2)
		return
	}
	l.data = binary.AppendUvarint(l.data, uint64(len(t))<<2|2)
	l.data = append(l.data, t...)
}

// dropScratch holds buffers to build a list in: a login appends records
// to one, then keeps an exact copy, so building a 10,000-message list
// leaves no garbage from growing.
var dropScratch = sync.Pool{New: func() any { return new([]byte) }}

// begin prepares to add about n records.
func (l *dropList) begin(n int) {
	l.scratch = dropScratch.Get().(*[]byte)
	l.data = (*l.scratch)[:0]
	l.blocks = make([]dropBlockRef, 0, n/dropBlock+1)
}

// finish drops what only adding needs: the text index, and the scratch
// buffer, whose records are copied to a block of their exact size.
func (l *dropList) finish() {
	l.index = nil
	if l.scratch != nil {
		*l.scratch = l.data
		l.data = slices.Clone(l.data)
		dropScratch.Put(l.scratch)
		l.scratch = nil
	}
	l.blocks = slices.Clip(l.blocks)
}

// len is the number of records.
func (l *dropList) len() int { return l.n }

// dropCursor decodes records one after another.
type dropCursor struct {
	l         *dropList
	i         int // the next record's number
	p         int // its offset in l.data
	uid       uint32
	lastFirst uint64
	lastHas   bool
	buf       []byte
}

// cursor returns a cursor at record i.
func (l *dropList) cursor(i int, buf []byte) *dropCursor {
	b := l.blocks[i/dropBlock]
	c := &dropCursor{l: l, i: i / dropBlock * dropBlock, p: int(b.off), uid: b.uid, buf: buf[:0]}
	for c.i < i {
		c.next()
	}
	return c
}

// at decodes record i into buf.
func (l *dropList) at(i int, buf []byte) dropEntry {
	return l.cursor(i, buf).next()
}

// each decodes every record in order until fn returns false.
func (l *dropList) each(fn func(i int, e dropEntry) bool) {
	if l.n == 0 {
		return
	}
	c := l.cursor(0, make([]byte, 0, 128))
	for c.i < l.n {
		i := c.i
		if !fn(i, c.next()) {
			return
		}
	}
}

// next decodes the record at the cursor and moves past it. The data was
// written by add, so it is well formed.
func (c *dropCursor) next() dropEntry {
	if c.i%dropBlock == 0 {
		c.uid, c.lastHas = c.l.blocks[c.i/dropBlock].uid, false
	}
	head := c.uvarint()
	c.uid += uint32(head >> 1)
	var size int64 = -1
	if head&1 == 0 {
		size = int64(c.uvarint())
	}
	c.buf = c.buf[:0]
	has := false
	for first := true; ; first = false {
		x := c.uvarint()
		switch {
		case x&1 == 1:
			v := x >> 1
			if first {
				if c.lastHas {
					v = c.lastFirst + uint64(unzigzag(v))
				}
				has, c.lastFirst = true, v
			}
			c.buf = strconv.AppendUint(c.buf, v, 10)
		case x == 0:
			c.lastHas = has
			c.i++
			if size < 0 {
				size, _ = nameVSize(c.buf)
			}
			return dropEntry{uid: c.uid, size: size, name: c.buf}
		case x&3 == 0:
			c.buf = append(c.buf, c.l.texts[x>>2]...)
		default:
			n := int(x >> 2)
			c.buf = append(c.buf, c.l.data[c.p:c.p+n]...)
			c.p += n
		}
	}
}

// uvarint reads one uvarint at the cursor.
func (c *dropCursor) uvarint() uint64 {
	x, n := binary.Uvarint(c.l.data[c.p:])
	c.p += n
	return x
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(x uint64) int64 { return int64(x>>1) ^ -int64(x&1) }

// nameVSize is the ,W= field of a file name's base (the part before the
// first ':'), as maildir.Name.VSize reads it, without allocating.
func nameVSize[T string | []byte](name T) (int64, bool) {
	end := len(name)
	for i := 0; i < len(name); i++ {
		if name[i] == ':' {
			end = i
			break
		}
	}
	for i := 0; i+3 <= end; i++ {
		if name[i] != ',' || name[i+1] != 'W' || name[i+2] != '=' {
			continue
		}
		j := i + 3
		var v int64
		for ; j < end && name[j] != ','; j++ {
			c := name[j]
			if c < '0' || c > '9' || v > (1<<62)/10 {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		}
		if j == i+3 {
			return 0, false
		}
		return v, true
	}
	return 0, false
}
