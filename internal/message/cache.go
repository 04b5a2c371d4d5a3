package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The cache record of a Structure:
//
//	record  = magic version payload crc
//	magic   = "MRst"
//	version = 1 octet (cacheVersion)
//	crc     = CRC-32C of magic, version and payload, 4 octets big-endian
//
// The payload is uvarints and length-prefixed strings in a fixed order
// (see encoder), ending with the header block (HeaderBlock: a flag, then
// its octets) since version 2. Any change of layout bumps cacheVersion; a
// record of another version is refused like a damaged one, and imapd
// parses the message again.
const (
	cacheMagic   = "MRst"
	cacheVersion = 2
)

// ErrCorrupt reports a cache record that is damaged, truncated, of
// another version, or describes an impossible structure.
var ErrCorrupt = errors.New("message: corrupt cache record")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MarshalBinary encodes the Structure as a cache record.
func (s *Structure) MarshalBinary() ([]byte, error) { return s.AppendBinary(nil) }

// AppendBinary appends the Structure's cache record to b
// (encoding.BinaryAppender), so a caller filling a buffer of many
// records allocates nothing per record.
func (s *Structure) AppendBinary(b []byte) ([]byte, error) {
	if s.Root == nil {
		return b, errors.New("message: marshal: no root part")
	}
	start := len(b)
	e := &encoder{b: append(append(b, cacheMagic...), cacheVersion)}
	e.uint(uint64(s.Size))
	e.uint(uint64(s.CRLFSize))
	e.bool(s.Truncated)
	e.bool(s.headerOnly)
	e.uint(uint64(len(s.marks)))
	for _, m := range s.marks {
		e.uint(uint64(m.raw))
		e.uint(uint64(m.crlf))
	}
	e.part(s.Root)
	e.bool(s.header != nil)
	if s.header != nil {
		e.uint(uint64(len(s.header)))
		e.b = append(e.b, s.header...)
	}
	return binary.BigEndian.AppendUint32(e.b, crc32.Checksum(e.b[start:], castagnoli)), nil
}

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *encoder) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) nstr(n NString) {
	e.bool(n.Valid)
	if n.Valid {
		e.str(n.S)
	}
}

func (e *encoder) span(s Span) {
	for _, v := range []int64{s.Start, s.End, s.CRLFStart, s.CRLFEnd} {
		e.uint(uint64(v))
	}
}

func (e *encoder) params(ps []Param) {
	e.uint(uint64(len(ps)))
	for _, p := range ps {
		e.str(p.Name)
		e.str(p.Value)
	}
}

func (e *encoder) part(p *Part) {
	e.span(p.Header)
	e.span(p.Body)
	e.uint(uint64(p.Lines))
	e.str(p.Type)
	e.str(p.Subtype)
	e.params(p.Params)
	e.nstr(p.ID)
	e.nstr(p.Description)
	e.str(p.Encoding)
	e.nstr(p.MD5)
	e.str(p.Disposition)
	e.params(p.DispParams)
	e.bool(p.Language != nil)
	e.uint(uint64(len(p.Language)))
	for _, l := range p.Language {
		e.str(l)
	}
	e.nstr(p.Location)
	e.bool(p.Envelope != nil)
	if p.Envelope != nil {
		e.envelope(p.Envelope)
	}
	e.bool(p.Message != nil)
	if p.Message != nil {
		e.part(p.Message)
	}
	e.uint(uint64(len(p.Parts)))
	for _, c := range p.Parts {
		e.part(c)
	}
}

func (e *encoder) envelope(env *Envelope) {
	e.nstr(env.Date)
	e.nstr(env.Subject)
	e.nstr(env.InReplyTo)
	e.nstr(env.MessageID)
	for _, l := range [][]Address{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		e.bool(l != nil)
		e.uint(uint64(len(l)))
		for _, a := range l {
			e.b = append(e.b, byte(a.Kind))
			e.str(a.Name)
			e.str(a.Route)
			e.str(a.Mailbox)
			e.str(a.Host)
		}
	}
}

// UnmarshalShared decodes a cache record as UnmarshalBinary does, but the
// Structure's header block refers to data instead of a copy: data must
// not change while the Structure is in use (imapd's in-memory cache
// records never do).
func UnmarshalShared(data []byte) (*Structure, error) {
	s := &Structure{}
	if err := s.unmarshal(data, true); err != nil {
		return nil, err
	}
	return s, nil
}

// UnmarshalBinary decodes a cache record. It is strict: a wrong checksum,
// version or length, a count beyond the limits, or spans outside the file
// or out of order are ErrCorrupt.
func (s *Structure) UnmarshalBinary(data []byte) error { return s.unmarshal(data, false) }

func (s *Structure) unmarshal(data []byte, shared bool) error {
	const head = len(cacheMagic) + 1
	if len(data) < head+4 || string(data[:len(cacheMagic)]) != cacheMagic {
		return fmt.Errorf("%w: no header", ErrCorrupt)
	}
	if data[len(cacheMagic)] != cacheVersion {
		return fmt.Errorf("%w: version %d", ErrCorrupt, data[len(cacheMagic)])
	}
	body := data[:len(data)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(data[len(data)-4:]) {
		return fmt.Errorf("%w: checksum", ErrCorrupt)
	}
	d := &decoder{b: body[head:]}
	var out Structure
	out.Size = d.int()
	out.CRLFSize = d.int()
	out.Truncated = d.bool()
	out.headerOnly = d.bool()
	d.headerOnly = out.headerOnly
	n := d.count(uint64(out.Size/markEvery + 2))
	var last mark
	for i := 0; i < n && d.err == nil; i++ {
		m := mark{raw: d.int(), crlf: d.int()}
		if (i > 0 && m.raw <= last.raw) || m.raw > out.Size || m.crlf < m.raw || m.crlf > out.CRLFSize {
			d.fail("checkpoint")
		}
		out.marks = append(out.marks, m)
		last = m
	}
	d.size, d.crlfSize = out.Size, out.CRLFSize
	out.Root = d.part(0)
	if d.bool() {
		n := d.count(MaxHeaderBlock)
		if d.err == nil && out.Root != nil && int64(n) != out.Root.Header.End {
			d.fail("header block")
		}
		if d.err == nil {
			if shared {
				out.header = d.b[:n:n]
			} else {
				out.header = make([]byte, n)
				copy(out.header, d.b)
			}
			d.b = d.b[n:]
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing data")
	}
	if d.err != nil {
		return d.err
	}
	out.parts = d.parts
	*s = out
	return nil
}

type decoder struct {
	b              []byte
	err            error
	parts          int
	size, crlfSize int64
	headerOnly     bool // the root has no body, and no children
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrCorrupt, what)
	}
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v := d.uint()
	if v > 1<<62 {
		d.fail("number")
		return 0
	}
	return int64(v)
}

// count reads a count and checks it against max and the octets left
// (every element takes at least one).
func (d *decoder) count(max uint64) int {
	v := d.uint()
	if v > max || v > uint64(len(d.b)) {
		d.fail("count")
		return 0
	}
	return int(v)
}

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("flag")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) str() string {
	n := d.count(uint64(len(d.b)))
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) nstr() NString {
	if !d.bool() {
		return NString{}
	}
	return NString{S: d.str(), Valid: true}
}

func (d *decoder) span() Span {
	s := Span{Start: d.int(), End: d.int(), CRLFStart: d.int(), CRLFEnd: d.int()}
	if s.Start > s.End || s.End > d.size || s.CRLFStart > s.CRLFEnd || s.CRLFEnd > d.crlfSize ||
		s.CRLFStart < s.Start || s.CRLFEnd-s.CRLFStart < s.End-s.Start {
		d.fail("span")
	}
	return s
}

func (d *decoder) params() []Param {
	n := d.count(maxParams + 1)
	var ps []Param
	for i := 0; i < n && d.err == nil; i++ {
		ps = append(ps, Param{Name: d.str(), Value: d.str()})
	}
	return ps
}

func (d *decoder) part(depth int) *Part {
	d.parts++
	if depth > MaxDepth+1 || d.parts > MaxParts+MaxDepth+2 {
		d.fail("nesting")
	}
	if d.err != nil {
		return nil
	}
	p := &Part{Header: d.span(), Body: d.span()}
	p.Lines = d.int()
	p.Type, p.Subtype = d.str(), d.str()
	p.Params = d.params()
	p.ID, p.Description = d.nstr(), d.nstr()
	p.Encoding = d.str()
	p.MD5 = d.nstr()
	p.Disposition = d.str()
	p.DispParams = d.params()
	hasLang := d.bool()
	n := d.count(maxLanguages)
	for i := 0; i < n && d.err == nil; i++ {
		p.Language = append(p.Language, d.str())
	}
	if hasLang && p.Language == nil {
		p.Language = []string{}
	}
	p.Location = d.nstr()
	if d.bool() {
		p.Envelope = d.envelope()
	}
	if d.bool() {
		p.Message = d.part(depth + 1)
	}
	n = d.count(MaxParts + 1)
	for i := 0; i < n && d.err == nil; i++ {
		p.Parts = append(p.Parts, d.part(depth+1))
	}
	if d.headerOnly && (depth > 0 || p.Message != nil || len(p.Parts) > 0 || p.Lines != 0 || p.Body.Size() != 0) {
		d.fail("header-only part")
	}
	if d.err == nil && (p.Header.End > p.Body.Start || p.Lines > p.Body.CRLFSize() ||
		(p.IsMultipart() && len(p.Parts) == 0 && !d.headerOnly) || (!p.IsMultipart() && len(p.Parts) > 0)) {
		d.fail("part")
	}
	return p
}

func (d *decoder) envelope() *Envelope {
	e := &Envelope{Date: d.nstr(), Subject: d.nstr(), InReplyTo: d.nstr(), MessageID: d.nstr()}
	for _, l := range []*[]Address{&e.From, &e.Sender, &e.ReplyTo, &e.To, &e.Cc, &e.Bcc} {
		present := d.bool()
		n := d.count(maxListAddress + 1)
		if present {
			*l = make([]Address, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			if len(d.b) == 0 || d.b[0] > byte(AddrGroupEnd) {
				d.fail("address")
				break
			}
			a := Address{Kind: AddrKind(d.b[0])}
			d.b = d.b[1:]
			a.Name, a.Route, a.Mailbox, a.Host = d.str(), d.str(), d.str(), d.str()
			*l = append(*l, a)
		}
	}
	return e
}

// RecordHeaderBlock returns the header block kept in a cache record
// (MarshalBinary), shared with data, without decoding the rest: what
// BODY[HEADER.FIELDS (...)] needs, at the cost of stepping over the
// record's numbers and strings instead of allocating them. It does not
// check the record's checksum (imapd's cache checked the file record
// that holds it). ok is false for a record without a header block or one
// that does not follow the layout.
func RecordHeaderBlock(data []byte) (block []byte, ok bool) {
	const head = len(cacheMagic) + 1
	if len(data) < head+4 || string(data[:len(cacheMagic)]) != cacheMagic || data[len(cacheMagic)] != cacheVersion {
		return nil, false
	}
	w := &walker{b: data[head : len(data)-4], ok: true}
	w.uint() // Size
	w.uint() // CRLFSize
	w.flag() // Truncated
	w.flag() // headerOnly
	for n := w.uint(); n > 0 && w.ok; n-- {
		w.uint()
		w.uint()
	}
	start, end := w.part(0)
	if !w.flag() || !w.ok {
		return nil, false
	}
	n := w.uint()
	if !w.ok || start != 0 || n != end || n != uint64(len(w.b)) || n > MaxHeaderBlock {
		return nil, false
	}
	return w.b[:n:n], true
}

// walker steps over a cache record's payload as decoder reads it,
// allocating nothing; ok turns false at the first octet that does not fit.
type walker struct {
	b  []byte
	ok bool
}

func (w *walker) uint() uint64 {
	if len(w.b) > 0 && w.b[0] < 0x80 {
		// Most numbers of a record fit one octet: this much inlines.
		v := uint64(w.b[0])
		w.b = w.b[1:]
		return v
	}
	return w.uintLong()
}

func (w *walker) uintLong() uint64 {
	v, n := binary.Uvarint(w.b)
	if n <= 0 {
		w.ok, w.b = false, nil
		return 0
	}
	w.b = w.b[n:]
	return v
}

func (w *walker) flag() bool {
	if len(w.b) == 0 || w.b[0] > 1 {
		w.ok, w.b = false, nil
		return false
	}
	v := w.b[0] == 1
	w.b = w.b[1:]
	return v
}

func (w *walker) str() {
	n := w.uint()
	if n > uint64(len(w.b)) {
		w.ok, w.b = false, nil
		return
	}
	w.b = w.b[n:]
}

func (w *walker) nstr() {
	if w.flag() {
		w.str()
	}
}

func (w *walker) params() {
	for n := w.uint(); n > 0 && w.ok; n-- {
		w.str()
		w.str()
	}
}

// part steps over a part and returns its header span's Start and End.
func (w *walker) part(depth int) (start, end uint64) {
	if depth > MaxDepth+1 {
		w.ok, w.b = false, nil
		return 0, 0
	}
	start, end = w.uint(), w.uint()
	for i := 0; i < 6; i++ { // the rest of the header span, the body span
		w.uint()
	}
	w.uint() // Lines
	w.str()  // Type
	w.str()  // Subtype
	w.params()
	w.nstr() // ID
	w.nstr() // Description
	w.str()  // Encoding
	w.nstr() // MD5
	w.str()  // Disposition
	w.params()
	w.flag() // Language present
	for n := w.uint(); n > 0 && w.ok; n-- {
		w.str()
	}
	w.nstr() // Location
	if w.flag() {
		w.envelope()
	}
	if w.flag() {
		w.part(depth + 1)
	}
	for n := w.uint(); n > 0 && w.ok; n-- {
		w.part(depth + 1)
	}
	return start, end
}

func (w *walker) envelope() {
	for i := 0; i < 4; i++ { // Date, Subject, InReplyTo, MessageID
		w.nstr()
	}
	for l := 0; l < 6 && w.ok; l++ {
		w.flag()
		for n := w.uint(); n > 0 && w.ok; n-- {
			if len(w.b) == 0 {
				w.ok, w.b = false, nil
				return
			}
			w.b = w.b[1:] // kind
			w.str()
			w.str()
			w.str()
			w.str()
		}
	}
}
