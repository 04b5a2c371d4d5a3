package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// position is a point in the file: its offset, its offset in the CRLF
// form, and the number of line feeds before it.
type position struct{ raw, crlf, lf int64 }

// scanner reads the file in chunks that never span a line end: a whole
// line, or a piece of a line longer than the buffer. It keeps the
// position of every chunk in both forms of the file.
type scanner struct {
	br        *bufio.Reader
	chunk     []byte
	start     position // of the current chunk
	pos       position // after the current chunk
	lineStart bool     // the current chunk starts a line
	endsLine  bool     // the current chunk ends with LF
	eolBefore int      // octets of the line end just before the current chunk
	lastEOL   int
	prevCR    bool
	eof       bool
	err       error
	marks     []mark
	nextMark  int64
}

// scanBuffer is the chunk size: the longest piece of a line held at once.
const scanBuffer = 64 << 10

func newScanner(r io.Reader) *scanner { return newScannerSize(r, scanBuffer) }

// newScannerSize reads through a buffer of size octets, r itself when it
// is a *bufio.Reader at least that big.
func newScannerSize(r io.Reader, size int) *scanner {
	return &scanner{br: bufio.NewReaderSize(r, size), endsLine: true}
}

// next reads the next chunk; false at the end of the file or on error.
func (s *scanner) next() bool {
	if s.eof || s.err != nil {
		return false
	}
	line, err := s.br.ReadSlice('\n')
	switch {
	case err == nil, errors.Is(err, bufio.ErrBufferFull):
	case errors.Is(err, io.EOF):
		s.eof = true
	default:
		s.err = err
		return false
	}
	if len(line) == 0 {
		return false
	}
	s.chunk = line
	s.lineStart = s.endsLine
	s.start = s.pos
	s.eolBefore = s.lastEOL
	if s.start.raw >= s.nextMark {
		s.marks = append(s.marks, mark{raw: s.start.raw, crlf: s.start.crlf})
		s.nextMark = (s.start.raw/markEvery + 1) * markEvery
	}
	n := len(line)
	s.endsLine = line[n-1] == '\n'
	s.pos.raw += int64(n)
	s.pos.crlf += int64(n)
	if s.endsLine {
		s.pos.lf++
		cr := (n >= 2 && line[n-2] == '\r') || (n == 1 && s.prevCR)
		s.lastEOL = 1
		if cr {
			s.lastEOL = 2
		} else {
			s.pos.crlf++ // a bare LF becomes CRLF
		}
	}
	s.prevCR = line[n-1] == '\r'
	return true
}

// endBefore is where content ends when the current chunk is a boundary
// line: before the line break that precedes it, which belongs to the
// delimiter (RFC 2046 §5.1.1).
func (s *scanner) endBefore() position {
	p := s.start
	if p.raw == 0 || s.eolBefore == 0 {
		return p
	}
	return position{raw: p.raw - int64(s.eolBefore), crlf: p.crlf - 2, lf: p.lf - 1}
}

// finishBoundary consumes the rest of a boundary line. Its line end
// belongs to it: content that ends at the next boundary does not give
// that line end up a second time (a close delimiter followed at once by
// an outer boundary leaves the inner entity its CRLF, as Dovecot counts).
func (s *scanner) finishBoundary() {
	for !s.endsLine && s.next() {
	}
	s.lastEOL = 0
}

// term says what ended an entity: the boundary at level of the parser's
// stack (close for a close delimiter), or the end of the file (level -1).
// end is where the entity's content stops.
type term struct {
	level int
	close bool
	end   position
}

type parser struct {
	sc     *scanner
	bounds [][]byte // "--boundary" of the open multiparts, outermost first
	st     *Structure
	// rootHeader collects the octets of the message's own header block
	// while capture is set (see Structure.HeaderBlock); over
	// MaxHeaderBlock it is dropped and overflow set.
	capture    bool
	overflow   bool
	rootHeader []byte
}

// Parse reads a message in one pass and returns its Structure. Memory is
// bounded by the scan buffer, the kept header values and the part tree,
// whatever the size of the message. Only read errors fail it: every
// octet sequence is some message.
func Parse(r io.Reader) (*Structure, error) {
	p := &parser{sc: newScanner(r), st: &Structure{}, capture: true}
	root := &Part{}
	p.st.parts = 1
	p.entity(root, 0, false, true)
	if p.sc.err != nil {
		return nil, fmt.Errorf("message: reading: %w", p.sc.err)
	}
	// Whatever follows the last term is consumed: the root ends at EOF.
	for p.sc.next() {
	}
	if p.sc.err != nil {
		return nil, fmt.Errorf("message: reading: %w", p.sc.err)
	}
	p.st.Root = root
	p.st.Size = p.sc.pos.raw
	p.st.CRLFSize = p.sc.pos.crlf
	p.st.marks = p.sc.marks
	if !p.overflow && int64(len(p.rootHeader)) == root.Header.End {
		p.st.header = p.rootHeader
		if p.st.header == nil {
			p.st.header = []byte{} // an empty file: kept, and empty
		}
	}
	return p.st, nil
}

// HeaderScanBuffer is the read buffer ParseHeader needs: a caller that
// passes a *bufio.Reader of this size (or more) has it used as it is.
const HeaderScanBuffer = 4 << 10

// ParseHeader reads only the message's header block and returns a
// header-only Structure (HeaderOnly): the ENVELOPE, the root's Content-*
// fields, the header's span and the header block, what ENVELOPE and the
// HEADER sections need, at the cost of reading the header instead of the
// whole message. size and crlfSize are the file's size and the size of
// its CRLF form (RFC822.SIZE, which the Maildir name carries), which
// cannot be counted without reading the body; a header that does not fit
// them is ErrFileChanged. Open completes the Structure (Complete) when a
// section needs the body.
func ParseHeader(r io.Reader, size, crlfSize int64) (*Structure, error) {
	p := &parser{sc: newScannerSize(r, HeaderScanBuffer), st: &Structure{headerOnly: true}, capture: true}
	root := &Part{}
	p.st.parts = 1
	hdr, start, _, _ := p.header()
	if p.sc.err != nil {
		return nil, fmt.Errorf("message: reading: %w", p.sc.err)
	}
	setContent(root, hdr, false)
	root.Envelope = buildEnvelope(hdr)
	end := p.sc.pos
	root.Header = span(start, end)
	root.Body = span(end, end)
	if end.raw > size || end.crlf > crlfSize || size > crlfSize {
		return nil, ErrFileChanged
	}
	p.st.Root = root
	p.st.Size, p.st.CRLFSize = size, crlfSize
	p.st.marks = p.sc.marks
	if !p.overflow && int64(len(p.rootHeader)) == root.Header.End {
		p.st.header = p.rootHeader
		if p.st.header == nil {
			p.st.header = []byte{}
		}
	}
	return p.st, nil
}

// match checks the current chunk against the open boundaries, innermost
// first: an outer boundary also ends every inner part, which is what a
// multipart missing its close delimiter needs.
func (p *parser) match() (term, bool) {
	c := p.sc.chunk
	if !p.sc.lineStart || len(c) < 3 || c[0] != '-' || c[1] != '-' {
		return term{}, false
	}
	for i := len(p.bounds) - 1; i >= 0; i-- {
		b := p.bounds[i]
		if bytes.HasPrefix(c, b) {
			rest := c[len(b):]
			return term{level: i, close: bytes.HasPrefix(rest, []byte("--")), end: p.sc.endBefore()}, true
		}
	}
	return term{}, false
}

// skip reads up to the next boundary line (consumed) or the end.
func (p *parser) skip() term {
	for p.sc.next() {
		if t, ok := p.match(); ok {
			p.sc.finishBoundary()
			return t
		}
	}
	return term{level: -1, end: p.sc.pos}
}

// entity parses one entity from the current position: its header, then
// its body according to its type. digest selects the default type of a
// multipart/digest child (RFC 2046 §5.1.5); isMessage asks for an
// ENVELOPE.
func (p *parser) entity(part *Part, depth int, digest, isMessage bool) term {
	hdr, hstart, t, ended := p.header()
	p.capture = false // only the root's header block is kept
	setContent(part, hdr, digest)
	if isMessage {
		part.Envelope = buildEnvelope(hdr)
	}
	if ended {
		// A boundary or EOF inside the header: no body.
		end := t.end
		if end.raw < hstart.raw {
			end = hstart
		}
		part.Header = span(hstart, end)
		part.Body = span(end, end)
		p.finishEmpty(part)
		return t
	}
	bodyStart := p.sc.pos
	part.Header = span(hstart, bodyStart)
	switch {
	case part.IsMultipart():
		t = p.multipart(part, depth)
	case isRFC822(part) && p.room(depth):
		msg := &Part{}
		p.st.parts++
		t = p.entity(msg, depth+1, false, true)
		part.Message = msg
	default:
		t = p.skip()
	}
	end := t.end
	if end.raw < bodyStart.raw {
		end = bodyStart
	}
	part.Body = span(bodyStart, end)
	part.Lines = end.lf - bodyStart.lf
	return t
}

// finishEmpty gives an entity cut short in its header what its type
// needs to be written: a child for a multipart, a message for
// message/rfc822.
func (p *parser) finishEmpty(part *Part) {
	if part.IsMultipart() {
		part.Parts = []*Part{p.empty(part.Body)}
	}
	if isRFC822(part) {
		msg := p.empty(part.Body)
		msg.Envelope = &Envelope{}
		part.Message = msg
	}
}

func isRFC822(p *Part) bool {
	return strings.EqualFold(p.Type, "message") && strings.EqualFold(p.Subtype, "rfc822")
}

// room reports whether another nested entity fits the limits.
func (p *parser) room(depth int) bool {
	if depth+1 >= MaxDepth || p.st.parts >= MaxParts {
		p.st.Truncated = true
		return false
	}
	return true
}

// multipart parses the body of a multipart: preamble, children, epilogue
// (RFC 2046 §5.1.1). Without a usable boundary, or beyond the limits, the
// body is opaque and the part gets one empty text/plain child, as
// BODYSTRUCTURE needs at least one (RFC 9051 §9 body-type-mpart).
func (p *parser) multipart(part *Part, depth int) term {
	boundary := paramValue(part.Params, "boundary")
	if boundary == "" || !p.room(depth) {
		t := p.skip()
		part.Parts = []*Part{p.empty(span(p.sc.pos, p.sc.pos))}
		return t
	}
	level := len(p.bounds)
	p.bounds = append(p.bounds, []byte("--"+boundary))
	digest := strings.EqualFold(part.Subtype, "digest")
	t := p.skip() // the preamble
	for t.level == level && !t.close {
		if p.st.parts >= MaxParts {
			p.st.Truncated = true
			t = p.skip()
			continue
		}
		child := &Part{}
		p.st.parts++
		part.Parts = append(part.Parts, child)
		t = p.entity(child, depth+1, digest, false)
	}
	p.bounds = p.bounds[:level]
	if t.level == level { // our close delimiter: the epilogue follows
		t = p.skip()
	}
	if len(part.Parts) == 0 {
		part.Parts = []*Part{p.empty(span(p.sc.pos, p.sc.pos))}
	}
	return t
}

// header reads a header block up to and including the blank line. ended
// is true when a boundary line or the end of the file came first; t then
// says which.
func (p *parser) header() (hdr *header, start position, t term, ended bool) {
	hdr = &header{}
	start = p.sc.pos
	var cur []byte
	curName := ""
	keep := false
	flush := func() {
		if keep {
			hdr.add(curName, cur)
		}
		cur, keep = nil, false
	}
	for p.sc.next() {
		c := p.sc.chunk
		if p.capture {
			p.keepRoot(c)
		}
		if p.sc.lineStart {
			if bt, ok := p.match(); ok {
				flush()
				p.sc.finishBoundary()
				return hdr, start, bt, true
			}
			if isBlank(c) {
				flush()
				return hdr, start, term{}, false
			}
			if c[0] != ' ' && c[0] != '\t' {
				flush()
				name, value, ok := fieldName(c)
				if ok && keptFields[name] {
					curName, keep = name, true
					cur = hdr.keep(cur, value)
				}
				continue
			}
		}
		if keep {
			cur = hdr.keep(cur, c)
		}
	}
	flush()
	return hdr, start, term{level: -1, end: p.sc.pos}, true
}

// keepRoot adds a chunk of the root header to the kept header block, or
// gives the block up once it would exceed MaxHeaderBlock.
func (p *parser) keepRoot(c []byte) {
	if p.overflow {
		return
	}
	if len(p.rootHeader)+len(c) > MaxHeaderBlock {
		p.overflow, p.rootHeader = true, nil
		return
	}
	if p.rootHeader == nil {
		// Most headers fit the first chunk: one allocation of their size.
		p.rootHeader = make([]byte, 0, max(len(c), 1024))
	}
	p.rootHeader = append(p.rootHeader, c...)
}

// keep appends to a kept value within the bounds on kept octets.
func (h *header) keep(dst, b []byte) []byte {
	room := min(maxFieldValue-len(dst), maxHeaderKept-h.kept)
	if room <= 0 {
		return dst
	}
	if len(b) > room {
		b = b[:room]
	}
	h.kept += len(b)
	return append(dst, b...)
}

func isBlank(c []byte) bool {
	return len(c) == 1 && c[0] == '\n' || len(c) == 2 && c[0] == '\r' && c[1] == '\n'
}

func span(a, b position) Span {
	return Span{Start: a.raw, End: b.raw, CRLFStart: a.crlf, CRLFEnd: b.crlf}
}

// empty returns an empty text/plain entity at the end of at: the child a
// multipart without parts gets, or the message of a message/rfc822 part
// cut short.
func (p *parser) empty(at Span) *Part {
	p.st.parts++
	s := Span{Start: at.End, End: at.End, CRLFStart: at.CRLFEnd, CRLFEnd: at.CRLFEnd}
	return &Part{Header: s, Body: s, Type: "text", Subtype: "plain", Encoding: "7bit"}
}

func paramValue(ps []Param, name string) string {
	for _, p := range ps {
		if strings.EqualFold(p.Name, name) {
			return p.Value
		}
	}
	return ""
}

// setContent fills the BODYSTRUCTURE fields of a part from its header.
func setContent(part *Part, hdr *header, digest bool) {
	typ, sub, params, ok := "", "", []Param(nil), false
	if v, present := hdr.get("content-type"); present {
		typ, sub, params, ok = parseContentType(v)
	}
	switch {
	case ok:
	case digest && !hdr.has("content-type"):
		// RFC 2046 §5.1.5: in a digest the default is message/rfc822.
		typ, sub = "message", "rfc822"
	default:
		// RFC 2045 §5.2: absent or invalid means text/plain; us-ascii.
		// The charset is added when written, as for every text part.
		typ, sub, params = "text", "plain", nil
	}
	part.Type, part.Subtype, part.Params = typ, sub, params
	part.Encoding = "7bit"
	if v, ok := hdr.get("content-transfer-encoding"); ok {
		if e := parseToken(v); e != "" {
			part.Encoding = e
		}
	}
	part.ID = nstr(hdr.get("content-id"))
	part.Description = nstr(hdr.get("content-description"))
	part.MD5 = nstr(hdr.get("content-md5"))
	part.Location = nstr(hdr.get("content-location"))
	if v, ok := hdr.get("content-disposition"); ok {
		part.Disposition, part.DispParams = parseDisposition(v)
	}
	if v, ok := hdr.get("content-language"); ok {
		part.Language = parseLanguage(v)
	}
}

func (h *header) has(name string) bool {
	_, ok := h.fields[name]
	return ok
}
