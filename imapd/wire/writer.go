package wire

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Writer writes server responses. Errors are sticky, as in bufio.Writer:
// the element methods write nothing once one failed, and Flush reports
// the first error. It is not safe for concurrent use.
type Writer struct {
	bw   *bufio.Writer // nil while a pooled Writer holds no buffer
	dst  io.Writer     // where a pooled Writer's buffer writes; nil if not pooled
	utf8 bool
}

// PoolBufferSize is the buffer size of a pooled Writer.
const PoolBufferSize = 32 << 10

// writerPool holds the buffers of pooled Writers while they hold none: a
// server with many connections waiting for their next command (or in
// IDLE) needs buffers only for those it is answering.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, PoolBufferSize) }}

// NewWriter returns a Writer on w, buffered unless w already is a
// *bufio.Writer.
func NewWriter(w io.Writer) *Writer {
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriter(w)
	}
	return &Writer{bw: bw}
}

// NewPooledWriter returns a Writer on w that takes a PoolBufferSize
// buffer from a pool when it writes and gives it back on Release.
func NewPooledWriter(w io.Writer) *Writer {
	return &Writer{dst: w}
}

// buf returns the buffer, taking one from the pool if needed.
func (w *Writer) buf() *bufio.Writer {
	if w.bw == nil {
		w.bw = writerPool.Get().(*bufio.Writer)
		w.bw.Reset(w.dst)
	}
	return w.bw
}

// Release gives a pooled Writer's buffer back to the pool when nothing is
// buffered and no write failed (a failed Writer keeps its sticky error).
// Call it after Flush, before waiting for the client; the next write takes
// a buffer again.
func (w *Writer) Release() {
	if w.dst == nil || w.bw == nil || w.bw.Buffered() > 0 || w.bw.Flush() != nil {
		return
	}
	w.bw.Reset(nil)
	writerPool.Put(w.bw)
	w.bw = nil
}

// SetUTF8 allows UTF-8 in quoted strings, once the client has enabled
// UTF8=ACCEPT (RFC 6855 §3) or IMAP4rev2 (RFC 9051 §4.3).
func (w *Writer) SetUTF8(on bool) { w.utf8 = on }

// Flush sends what is buffered.
func (w *Writer) Flush() error {
	if w.bw == nil {
		return nil
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("wire: writing response: %w", err)
	}
	return nil
}

// Untagged starts an untagged response: "* ".
func (w *Writer) Untagged() { w.buf().WriteString("* ") }

// SP writes a space.
func (w *Writer) SP() { w.buf().WriteByte(' ') }

// CRLF ends a response line.
func (w *Writer) CRLF() { w.buf().WriteString("\r\n") }

// Atom writes s as an atom when it is one and as a string otherwise, so
// no input can break the grammar.
func (w *Writer) Atom(s string) {
	if isAtom(s) {
		w.buf().WriteString(s)
		return
	}
	w.String(s)
}

// Number writes a decimal number. It formats into the buffer's free
// space: a FETCH of 100,000 messages writes two numbers per message and
// should allocate for none.
func (w *Writer) Number(n uint64) {
	bw := w.buf()
	bw.Write(strconv.AppendUint(bw.AvailableBuffer(), n, 10))
}

// NIL writes NIL.
func (w *Writer) NIL() { w.buf().WriteString("NIL") }

// OpenList and CloseList write "(" and ")".
func (w *Writer) OpenList()  { w.buf().WriteByte('(') }
func (w *Writer) CloseList() { w.buf().WriteByte(')') }

// String writes s as a quoted string when the grammar allows (no NUL, CR,
// LF, and 8-bit only as valid UTF-8 with UTF-8 enabled), and as a literal
// otherwise. NUL, which no IMAP string may hold (RFC 9051 §9 CHAR8),
// is sent as a space.
func (w *Writer) String(s string) {
	if w.quotable(s) {
		w.quoted(s)
		return
	}
	w.buf().WriteByte('{')
	w.Number(uint64(len(s)))
	w.buf().WriteString("}\r\n")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 0 {
			c = ' '
		}
		w.buf().WriteByte(c)
	}
}

// AString writes s as an atom when it is one (and not NIL, which would
// read back as nil), else as a string.
func (w *Writer) AString(s string) {
	if isAtom(s) && !strings.EqualFold(s, "NIL") {
		w.buf().WriteString(s)
		return
	}
	w.String(s)
}

// NString writes NIL when isNil, else the string.
func (w *Writer) NString(s string, isNil bool) {
	if isNil {
		w.NIL()
		return
	}
	w.String(s)
}

func (w *Writer) quotable(s string) bool {
	eightBit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0 || c == '\r' || c == '\n':
			return false
		case c >= 0x80:
			eightBit = true
		}
	}
	return !eightBit || (w.utf8 && utf8.ValidString(s))
}

func (w *Writer) quoted(s string) {
	w.buf().WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			w.buf().WriteByte('\\')
		}
		w.buf().WriteByte(s[i])
	}
	w.buf().WriteByte('"')
}

// Literal writes "{size}" CRLF and exactly size octets from r, streaming
// them (FETCH BODY[] of a large message). If r ends early the response is
// broken beyond repair and the connection must be closed; the error says
// so.
func (w *Writer) Literal(size int64, r io.Reader) error { return w.literal("{", size, r) }

// Literal8 is Literal for BINARY[] data: "~{size}" (RFC 3516 §4.2).
func (w *Writer) Literal8(size int64, r io.Reader) error { return w.literal("~{", size, r) }

// LiteralBytes writes b as a literal: "{len}" CRLF and b. It is Literal
// for an answer already in memory (BODY[HEADER.FIELDS ...]), without a
// reader around it.
func (w *Writer) LiteralBytes(b []byte) {
	bw := w.buf()
	bw.WriteByte('{')
	w.Number(uint64(len(b)))
	bw.WriteString("}\r\n")
	bw.Write(b)
}

func (w *Writer) literal(open string, size int64, r io.Reader) error {
	w.buf().WriteString(open)
	w.Number(uint64(size))
	w.buf().WriteString("}\r\n")
	n, err := io.CopyN(w.buf(), r, size)
	if err != nil {
		return fmt.Errorf("wire: literal of %d octets ended after %d: %w", size, n, err)
	}
	return nil
}

// Flags writes a flag list "(\Seen $Label)". A keyword that is not an
// atom (a damaged dovecot-keywords file) is left out: it could not be
// sent back by the client anyway.
func (w *Writer) Flags(flags []string) {
	w.OpenList()
	first := true
	for _, f := range flags {
		if !validFlag(f) {
			continue
		}
		if !first {
			w.SP()
		}
		first = false
		w.buf().WriteString(CanonicalFlag(f))
	}
	w.CloseList()
}

func validFlag(f string) bool {
	if f == `\*` {
		return true
	}
	return isAtom(strings.TrimPrefix(f, `\`))
}

// Status writes a whole status response: "tag OK [code] text" CRLF, or
// "* ..." for an empty tag. status is OK, NO, BAD, PREAUTH or BYE; code is
// the response code without brackets, or "".
func (w *Writer) Status(tag, status, code, text string) {
	if tag == "" {
		tag = "*"
	}
	w.buf().WriteString(tag)
	w.SP()
	w.buf().WriteString(status)
	w.SP()
	w.respText(code, text)
	w.CRLF()
}

// Continue writes a continuation request "+ text" and flushes it, as the
// client is waiting for it (RFC 9051 §7.5).
func (w *Writer) Continue(text string) error {
	w.buf().WriteString("+ ")
	w.buf().WriteString(w.cleanText(text))
	w.CRLF()
	return w.Flush()
}

// Challenge writes a SASL continuation "+ " followed by data in base64
// and flushes it (RFC 9051 §6.2.2, §9 continue-req). Empty data is the
// empty challenge "+ " that AUTHENTICATE PLAIN sends: base64 may be empty,
// resp-text may not, so Continue cannot send it.
func (w *Writer) Challenge(data []byte) error {
	w.buf().WriteString("+ ")
	w.buf().WriteString(base64.StdEncoding.EncodeToString(data))
	w.CRLF()
	return w.Flush()
}

// Raw writes s as it is. It is for response text the caller has built
// from the grammar and the element methods do not cover, such as a FETCH
// item name with its section, "BODY[HEADER.FIELDS (FROM)]<0>"; never for
// client or message data.
func (w *Writer) Raw(s string) { w.buf().WriteString(s) }

// WriteError answers a protocol error: "tag BAD [code] text", or "* BAD"
// when the tag is unknown. When e.Fatal the session then sends BYE and
// closes.
func (w *Writer) WriteError(e *Error) {
	w.Status(e.Tag, e.StatusWord(), e.Code, e.Text)
}

// respText writes resp-text = ["[" resp-text-code "]" SP] text.
func (w *Writer) respText(code, text string) {
	if code != "" {
		w.buf().WriteByte('[')
		w.buf().WriteString(cleanCode(code))
		w.buf().WriteString("] ")
	}
	text = w.cleanText(text)
	if code == "" && strings.HasPrefix(text, "[") {
		// A leading "[" would be read as a response code.
		text = " " + text[1:]
	}
	w.buf().WriteString(text)
}

// cleanText makes s valid "text": RFC 3501 requires at least one
// character, and no CR or LF; 8-bit only as UTF-8 for UTF-8 clients.
func (w *Writer) cleanText(s string) string {
	if s == "" {
		return "done"
	}
	ok := utf8.ValidString(s)
	return strings.Map(func(r rune) rune {
		switch {
		case r == 0 || r == '\r' || r == '\n':
			return ' '
		case r >= 0x80 && (!w.utf8 || !ok):
			return '?'
		}
		return r
	}, s)
}

// cleanCode keeps a response code on one line and inside its brackets.
func cleanCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ']' || r == '[' || r < 0x20 || r >= 0x7f {
			return ' '
		}
		return r
	}, s)
}

// formatAString renders s as an atom or a quoted string inside a larger
// string (a section's field names in a FETCH response item name); octets
// a quoted string cannot hold become '?'.
func formatAString(s string) string {
	if isAtom(s) && !strings.EqualFold(s, "NIL") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
		case c == 0 || c == '\r' || c == '\n' || c >= 0x80:
			c = '?'
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// FormatDateTime formats t as an IMAP date-time without quotes,
// "17-Jul-1996 02:44:25 -0700" (RFC 9051 §9: date-day-fixed is
// space-padded).
func FormatDateTime(t time.Time) string {
	return t.Format("_2-Jan-2006 15:04:05 -0700")
}

// DateTime writes t as a quoted date-time.
func (w *Writer) DateTime(t time.Time) {
	w.quoted(FormatDateTime(t))
}
