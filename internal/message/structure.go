package message

import (
	"io"
	"strings"
)

// Limits of Parse.
const (
	// MaxDepth bounds the nesting of multiparts and message/rfc822 parts.
	MaxDepth = 64
	// MaxParts bounds the number of parts of one message.
	MaxParts = 10000
	// MaxHeaderBlock bounds the message header block a Structure keeps
	// (HeaderBlock): headers up to this size are served from the cache
	// record, larger ones from the file.
	MaxHeaderBlock = 8 << 10
)

// Span is a range of the message file: Start and End are file offsets;
// CRLFStart and CRLFEnd are the same points in the CRLF form of the file.
type Span struct {
	Start, End         int64
	CRLFStart, CRLFEnd int64
}

// Size is the span's length in the file.
func (s Span) Size() int64 { return s.End - s.Start }

// CRLFSize is the span's length in the CRLF form, the size IMAP reports.
func (s Span) CRLFSize() int64 { return s.CRLFEnd - s.CRLFStart }

// NString is an IMAP nstring: NIL unless Valid.
type NString struct {
	S     string
	Valid bool
}

func nstr(s string, ok bool) NString { return NString{S: s, Valid: ok} }

// Part is one MIME entity: the message itself, a part of a multipart, or
// the message inside a message/rfc822 part.
type Part struct {
	// Header is the header block, the blank line after it included; Body
	// the rest of the entity up to the line break before the next
	// boundary delimiter (RFC 2046 §5.1.1), or to the end of the file.
	Header, Body Span
	// Lines counts the line breaks in Body (BODYSTRUCTURE body-fld-lines).
	Lines int64

	// Type and Subtype as the message writes them, text/plain when
	// absent or invalid (RFC 2045 §5.2).
	Type, Subtype string
	Params        []Param
	ID            NString
	Description   NString
	Encoding      string // Content-Transfer-Encoding as written, "7bit" when absent
	MD5           NString
	Disposition   string // "" for NIL
	DispParams    []Param
	Language      []string // nil for NIL
	Location      NString

	// Envelope is set on a message: the root and Part.Message.
	Envelope *Envelope
	// Message is the encapsulated message of a message/rfc822 part.
	Message *Part
	// Parts are the children of a multipart; never empty for one.
	Parts []*Part
}

// IsMultipart reports a multipart entity, which has children.
func (p *Part) IsMultipart() bool { return strings.EqualFold(p.Type, "multipart") }

// IsMessage reports a message/rfc822 entity with a parsed encapsulated
// message (RFC 2046 §5.2.1).
func (p *Part) IsMessage() bool { return p.Message != nil }

// IsText reports a text/* part: one whose BODYSTRUCTURE has
// body-fld-lines and a default charset (RFC 9051 §9, RFC 2045 §5.2).
func (p *Part) IsText() bool { return strings.EqualFold(p.Type, "text") }

// mark is a checkpoint: the CRLF offset of a file offset.
type mark struct{ raw, crlf int64 }

// markEvery is the distance between checkpoints in the file.
const markEvery = 64 << 10

// Structure is everything FETCH needs to know about one message file.
type Structure struct {
	// Size is the file's size; CRLFSize the size of its CRLF form
	// (RFC822.SIZE).
	Size, CRLFSize int64
	// Root is the message; Root.Envelope is its ENVELOPE.
	Root *Part
	// Truncated reports that MaxDepth or MaxParts was reached.
	Truncated bool

	marks []mark
	parts int
	// header is the file's octets [0, Root.Header.End) when that is at
	// most MaxHeaderBlock, else nil.
	header []byte
	// headerOnly marks a Structure from ParseHeader: Root has its header,
	// Envelope and Content-* fields, nothing of its body.
	headerOnly bool
}

// HeaderOnly reports a Structure made by ParseHeader, which knows the
// message's header but not its body: BODYSTRUCTURE, Part and the BINARY
// methods need Complete first; Open completes it by itself.
func (s *Structure) HeaderOnly() bool { return s.headerOnly }

// Complete makes a header-only Structure whole by parsing the message
// file through ra; it does nothing to one that is whole.
func (s *Structure) Complete(ra io.ReaderAt) error {
	if !s.headerOnly {
		return nil
	}
	full, err := Parse(io.NewSectionReader(ra, 0, s.Size))
	if err != nil {
		return err
	}
	if full.Size != s.Size {
		return ErrFileChanged
	}
	*s = *full
	return nil
}

// HeaderBlock returns the message's header block as the file has it, the
// blank line after it included, or nil when it was longer than
// MaxHeaderBlock. Sections within it are served without the file.
func (s *Structure) HeaderBlock() []byte { return s.header }

// Envelope returns the message's ENVELOPE fields.
func (s *Structure) Envelope() *Envelope { return s.Root.Envelope }
