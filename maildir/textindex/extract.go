package textindex

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"

	"mailroom/internal/message"
)

// Field says which text of a message a term or a match is about.
type Field byte

const (
	// Body is the body text, what SEARCH BODY matches (RFC 9051 §6.4.4):
	// the decoded text parts, and the header and text parts of every
	// attached message.
	Body Field = 'b'
	// Header is the message's own header, decoded; SEARCH TEXT matches
	// Header or Body.
	Header Field = 'h'
)

// Limits of extraction. What lies beyond them is not searched, by the
// index and by a verifying scan alike.
const (
	// MaxHeader bounds the octets of one header block that are read.
	MaxHeader = 1 << 20
	// chunkSize is the read size; every buffer of an Extractor is about
	// this big, whatever the message size.
	chunkSize = 32 << 10
)

// Extractor turns a message into the text a user sees, lowered (see
// Fold): transfer encodings (base64, quoted-printable) removed, text
// parts converted from ISO-8859-1 and Windows-1252 to UTF-8 (UTF-8,
// US-ASCII and other charsets stay as they are stored), header encoded
// words (RFC 2047) decoded. Only text/* and message/* leaf parts count:
// images and other attachments are not text a user reads. Pieces of text
// (parts, header fields) are separated by a line break, so that words of
// two pieces never join.
//
// An Extractor reuses its buffers: one per search or per index build,
// never one per message. It is not safe for concurrent use.
type Extractor struct {
	raw  []byte
	dec  []byte
	conv []byte
	out  []byte
	fold folder
	wd   mime.WordDecoder
}

// NewExtractor returns an Extractor with its buffers.
func NewExtractor() *Extractor {
	x := &Extractor{
		raw:  make([]byte, chunkSize),
		dec:  make([]byte, 0, chunkSize),
		conv: make([]byte, 0, 2*chunkSize),
		out:  make([]byte, 0, 3*chunkSize),
	}
	x.wd.CharsetReader = charsetReader
	return x
}

// charsetReader converts encoded words of the charsets toUTF8 knows and
// keeps the octets of any other (mime.WordDecoder itself does UTF-8,
// US-ASCII and ISO-8859-1).
func charsetReader(name string, r io.Reader) (io.Reader, error) {
	cs := charsetOf(name)
	if cs == charsetRaw {
		return r, nil
	}
	b, err := io.ReadAll(io.LimitReader(r, MaxHeader))
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(toUTF8(nil, b, cs)), nil
}

// Emit receives lowered text; it must not keep the slice.
type Emit func([]byte) error

// Header emits the decoded header of the message.
func (x *Extractor) Header(st *message.Structure, ra io.ReaderAt, emit Emit) error {
	x.fold = folder{} // an earlier call may have stopped half-way
	return x.header(st.Root.Header, ra, emit)
}

// Body emits the body text of the message.
func (x *Extractor) Body(st *message.Structure, ra io.ReaderAt, emit Emit) error {
	x.fold = folder{}
	return x.part(st.Root, ra, emit, 0)
}

func (x *Extractor) part(p *message.Part, ra io.ReaderAt, emit Emit, depth int) error {
	if depth > message.MaxDepth+1 {
		return nil
	}
	switch {
	case p.IsMultipart():
		for _, c := range p.Parts {
			if err := x.part(c, ra, emit, depth+1); err != nil {
				return err
			}
		}
		return nil
	case p.IsMessage():
		if err := x.header(p.Message.Header, ra, emit); err != nil {
			return err
		}
		return x.part(p.Message, ra, emit, depth+1)
	}
	switch strings.ToLower(p.Type) {
	case "text", "message", "":
	default:
		return nil
	}
	return x.leaf(p, ra, emit)
}

// leaf emits one text part: octets, transfer decoding, charset, folding.
func (x *Extractor) leaf(p *message.Part, ra io.ReaderAt, emit Emit) error {
	if err := x.emitFolded(newline, emit); err != nil {
		return err
	}
	var dec decoder = identity{}
	switch strings.ToLower(strings.TrimSpace(p.Encoding)) {
	case "base64":
		dec = &base64Decoder{}
	case "quoted-printable":
		dec = &qpDecoder{}
	}
	cs := charsetRaw
	for _, pr := range p.Params {
		if strings.EqualFold(pr.Name, "charset") {
			cs = charsetOf(pr.Value)
		}
	}
	off, end := p.Body.Start, p.Body.End
	for off < end {
		n, err := ra.ReadAt(x.raw[:min(int64(len(x.raw)), end-off)], off)
		if n == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				break // the file shrank: what is there is the text
			}
			return fmt.Errorf("textindex: read part: %w", err)
		}
		off += int64(n)
		x.dec = dec.decode(x.dec[:0], x.raw[:n])
		if err := x.emitText(x.dec, cs, emit); err != nil {
			return err
		}
	}
	x.dec = dec.finish(x.dec[:0])
	if err := x.emitText(x.dec, cs, emit); err != nil {
		return err
	}
	x.out = x.fold.flush(x.out[:0])
	if len(x.out) > 0 {
		return emit(x.out)
	}
	return nil
}

func (x *Extractor) emitText(b []byte, cs charsetKind, emit Emit) error {
	if cs != charsetRaw {
		x.conv = toUTF8(x.conv[:0], b, cs)
		b = x.conv
	}
	return x.emitFolded(b, emit)
}

func (x *Extractor) emitFolded(b []byte, emit Emit) error {
	if len(b) == 0 {
		return nil
	}
	x.out = x.fold.fold(x.out[:0], b)
	if len(x.out) == 0 {
		return nil
	}
	return emit(x.out)
}

// header emits a header block field by field: unfolded, encoded words
// decoded (a field whose encoded words do not decode is kept as it is).
func (x *Extractor) header(sp message.Span, ra io.ReaderAt, emit Emit) error {
	n := min(sp.Size(), MaxHeader)
	if n <= 0 {
		return nil
	}
	if int64(cap(x.conv)) < n {
		x.conv = make([]byte, n)
	}
	buf := x.conv[:n]
	got, err := ra.ReadAt(buf, sp.Start)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("textindex: read header: %w", err)
	}
	buf = buf[:got]
	for len(buf) > 0 {
		var field []byte
		field, buf = nextField(buf)
		line := unfoldField(field)
		if bytes.Contains(line, encodedWordStart) {
			if dl, err := x.wd.DecodeHeader(string(line)); err == nil {
				line = []byte(dl)
			}
		}
		if err := x.emitFolded(newline, emit); err != nil {
			return err
		}
		if err := x.emitFolded(line, emit); err != nil {
			return err
		}
	}
	x.out = x.fold.flush(x.out[:0])
	if len(x.out) > 0 {
		return emit(x.out)
	}
	return nil
}

var (
	newline          = []byte("\n")
	encodedWordStart = []byte("=?")
)

// nextField splits the first field (with its continuation lines) off a
// header block.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for {
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			return b, nil
		}
		i += nl + 1
		if i >= len(b) || (b[i] != ' ' && b[i] != '\t') {
			return b[:i], b[i:]
		}
	}
}

// unfoldField drops the line breaks of a field (RFC 5322 §2.2.3) and its
// trailing line end.
func unfoldField(f []byte) []byte {
	f = bytes.TrimRight(f, "\r\n")
	if bytes.IndexByte(f, '\n') < 0 {
		return f
	}
	out := make([]byte, 0, len(f))
	for _, c := range f {
		if c != '\r' && c != '\n' {
			out = append(out, c)
		}
	}
	return out
}
