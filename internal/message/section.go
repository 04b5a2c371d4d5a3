package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// ErrNoSection reports a section the message does not have: a part number
// beyond the parts there are, or HEADER/TEXT of a part that is not a
// message/rfc822. RFC 9051 §6.4.5 leaves the answer to the server (an
// empty string or NIL); the interop test checks Dovecot gives one of them.
var ErrNoSection = errors.New("message: no such section")

// Section names a part of a message, as BODY[section] does (RFC 9051
// §6.4.5): a part path, then a specifier. imapd's wire.Section has the
// same fields, so imapd converts one into the other without a copy.
type Section struct {
	// Part is the part path, "1.2" as [1 2]; empty for the whole message.
	Part []uint32
	// Specifier is "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT",
	// "TEXT" or "MIME".
	Specifier string
	// Fields are the header field names of HEADER.FIELDS[.NOT].
	Fields []string
}

// Partial is the <offset.count> of BODY[section]<partial> (RFC 9051
// §6.4.5), in octets of the CRLF form. HasCount is false for "all from
// Offset on".
type Partial struct {
	Offset   uint64
	Count    uint64
	HasCount bool
}

// maxFieldsHeader bounds the header a HEADER.FIELDS answer is built from;
// the answer is held in memory, and only small headers are worth it.
const maxFieldsHeader = 8 << 20

// Part returns the part a section-part path names (RFC 9051 §6.4.5):
// every message has part 1, which for a single-part message is its body;
// the numbers after a message/rfc822 part address the encapsulated
// message's parts.
func (s *Structure) Part(path []uint32) (*Part, error) {
	cur := s.Root
	for i, n := range path {
		if i > 0 {
			switch {
			case cur.IsMessage():
				cur = cur.Message
			case !cur.IsMultipart():
				return nil, fmt.Errorf("%w: %v", ErrNoSection, path)
			}
		}
		switch {
		case cur.IsMultipart():
			if n < 1 || int(n) > len(cur.Parts) {
				return nil, fmt.Errorf("%w: %v", ErrNoSection, path)
			}
			cur = cur.Parts[n-1]
		case n != 1:
			return nil, fmt.Errorf("%w: %v", ErrNoSection, path)
		}
	}
	return cur, nil
}

// Open returns the octets of BODY[section]<partial> in CRLF form and how
// many there are, reading the message file through ra. The partial
// applies to the CRLF form (RFC 9051 §6.4.5); a nil partial means all.
//
// A section inside the kept header block (HeaderBlock) is read from it,
// not through ra, which may then be nil (see NeedsFile): the octets are
// the file's own, so the answer is the same.
//
// A header-only Structure (ParseHeader) is completed first, through ra,
// when the section is not one of the message's header sections.
func (s *Structure) Open(ra io.ReaderAt, sec Section, partial *Partial) (io.Reader, int64, error) {
	skip, count := partialRange(partial)
	if s.headerOnly && !isHeaderSection(sec) && !isWholeMessage(sec) {
		if ra == nil {
			return nil, 0, errors.New("message: section needs the message file")
		}
		if err := s.Complete(ra); err != nil {
			return nil, 0, err
		}
	}
	sp, fields, err := s.resolve(sec)
	if err != nil {
		return nil, 0, err
	}
	if s.inHeader(sp) {
		ra = bytes.NewReader(s.header)
	} else if ra == nil {
		return nil, 0, errors.New("message: section needs the message file")
	}
	if fields == nil {
		return s.openCRLF(ra, sp, skip, count)
	}
	not := sec.Specifier == "HEADER.FIELDS.NOT"
	var b []byte
	if s.inHeader(sp) && sp.Start == 0 {
		// The usual case, in one pass over the kept block.
		b = AppendHeaderSection(nil, s.header[:sp.End], NewFieldSet(fields, not))
	} else if b, err = s.headerFields(ra, sp, fields, not); err != nil {
		return nil, 0, err
	}
	if skip >= int64(len(b)) {
		return emptyReader{}, 0, nil
	}
	b = b[skip:]
	if int64(len(b)) > count {
		b = b[:count]
	}
	return bytes.NewReader(b), int64(len(b)), nil
}

// NeedsFile reports whether Open needs the message file for sec: false
// for the message's HEADER, HEADER.FIELDS and HEADER.FIELDS.NOT when the
// header block is kept, and for a section that does not exist (Open
// answers ErrNoSection).
func (s *Structure) NeedsFile(sec Section) bool {
	if s.headerOnly && !isHeaderSection(sec) {
		return true
	}
	sp, _, err := s.resolve(sec)
	return err == nil && !s.inHeader(sp)
}

// isHeaderSection reports HEADER, HEADER.FIELDS or HEADER.FIELDS.NOT of
// the message itself: what a header-only Structure can answer.
func isHeaderSection(sec Section) bool {
	if len(sec.Part) > 0 {
		return false
	}
	switch sec.Specifier {
	case "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		return true
	}
	return false
}

// isWholeMessage reports BODY[], the whole message: its span is the
// file's, which a header-only Structure knows (Size, CRLFSize), and the
// CRLF form is read from the file as it streams, so it needs no MIME
// tree.
func isWholeMessage(sec Section) bool {
	return len(sec.Part) == 0 && sec.Specifier == ""
}

// inHeader reports whether sp lies inside the kept header block.
func (s *Structure) inHeader(sp Span) bool {
	return s.header != nil && sp.Start <= sp.End && sp.End <= int64(len(s.header))
}

func partialRange(p *Partial) (skip, count int64) {
	if p == nil {
		return 0, math.MaxInt64
	}
	skip = int64(min(p.Offset, math.MaxInt64))
	count = math.MaxInt64
	if p.HasCount {
		count = int64(min(p.Count, math.MaxInt64))
	}
	return skip, count
}

// resolve maps a section to a span of the file, and for HEADER.FIELDS
// the field names to select.
func (s *Structure) resolve(sec Section) (Span, []string, error) {
	msg := s.Root
	if len(sec.Part) > 0 {
		p, err := s.Part(sec.Part)
		if err != nil {
			return Span{}, nil, err
		}
		switch sec.Specifier {
		case "":
			return p.Body, nil, nil
		case "MIME":
			return p.Header, nil, nil
		}
		if !p.IsMessage() {
			return Span{}, nil, fmt.Errorf("%w: %s of a part that is not message/rfc822", ErrNoSection, sec.Specifier)
		}
		msg = p.Message
	}
	switch sec.Specifier {
	case "":
		return Span{End: s.Size, CRLFEnd: s.CRLFSize}, nil, nil
	case "HEADER":
		return msg.Header, nil, nil
	case "TEXT":
		return msg.Body, nil, nil
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		if len(sec.Fields) == 0 {
			return Span{}, nil, fmt.Errorf("%w: %s without fields", ErrNoSection, sec.Specifier)
		}
		return msg.Header, sec.Fields, nil
	}
	return Span{}, nil, fmt.Errorf("%w: %q", ErrNoSection, sec.Specifier)
}

// headerFields builds the answer to HEADER.FIELDS (or .NOT): the fields
// of the header in sp whose names are (or are not) in names, in CRLF form,
// followed by the blank line (RFC 9051 §6.4.5: "the delimiting blank line
// between the header and the body is ... included").
func (s *Structure) headerFields(ra io.ReaderAt, sp Span, names []string, not bool) ([]byte, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[strings.ToLower(n)] = true
	}
	if sp.Size() > maxFieldsHeader {
		sp.End = sp.Start + maxFieldsHeader
	}
	r, err := newCRLFReader(ra, sp.Start, sp.End)
	if err != nil {
		return nil, err
	}
	// A header shorter than the buffer needs no more: no line is split
	// either way, so the answer is the same.
	br := bufio.NewReaderSize(r, int(min(4096, sp.CRLFSize()+1)))
	var out bytes.Buffer
	out.Grow(256)
	selected := false
	for atLineStart := true; ; {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if atLineStart {
				if isBlank(line) {
					break
				}
				if line[0] != ' ' && line[0] != '\t' {
					name, _, ok := fieldName(line)
					selected = ok && want[name] != not
				}
			}
			if selected {
				out.Write(line)
			}
			atLineStart = line[len(line)-1] == '\n'
		}
		if errors.Is(err, io.EOF) {
			if selected && !atLineStart {
				out.WriteString("\r\n")
			}
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fileErr(err)
		}
	}
	out.WriteString("\r\n")
	return out.Bytes(), nil
}
