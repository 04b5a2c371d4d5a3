package pop3d

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// MaxLine is the longest command line accepted, CRLF included
// (RFC 2449 §4: "255 octets, including the terminating CRLF").
const MaxLine = 255

// maxSASLLine bounds a client's SASL response line: RFC 5034 §4 lets
// responses exceed the command limit, but not without end.
const maxSASLLine = 2048

// maxDiscard is how much of an overlong line is skipped before the
// connection is closed instead: a client that never sends LF is not a
// client.
const maxDiscard = 64 * 1024

var (
	errLineTooLong = errors.New("line too long")
	errLineHuge    = errors.New("line too long to skip")
)

// deadlineConn sets a fresh deadline before every Read and Write, so that a
// client is timed out only when it stops moving bytes, not when a long
// transfer outlasts one period.
type deadlineConn struct {
	net.Conn
	read, write func() time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.read())); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Write sets a deadline too. A connection that cannot have one (inetd on
// a terminal or a file) is served without: it is not a network peer.
func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.write())); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return 0, err
	}
	return c.Conn.Write(p)
}

// readLine reads one line of at most limit octets (terminator included)
// and returns it without its CRLF (a bare LF is accepted too, as every
// POP3 server does). A longer line is skipped up to its LF and reported as
// errLineTooLong; one longer than maxDiscard as errLineHuge. The returned
// slice is valid until the next read.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == nil && len(line) <= limit {
		line = line[:len(line)-1]
		return bytes.TrimSuffix(line, []byte{'\r'}), nil
	}
	if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if err == nil {
		return nil, errLineTooLong // too long, but already consumed
	}
	skipped := len(line)
	for skipped <= maxDiscard {
		chunk, err := r.ReadSlice('\n')
		skipped += len(chunk)
		switch {
		case err == nil:
			return nil, errLineTooLong
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
	return nil, errLineHuge
}

// messageWriter copies a message file to the client as a POP3 multi-line
// body (RFC 1939 §3): every line end becomes CRLF, a line starting with
// "." gets another ".", and at most maxBody lines after the header (TOP's
// m) are sent when maxBody >= 0. It holds no more than one buffer.
type messageWriter struct {
	w        *bufio.Writer
	maxBody  int  // body lines still to send; < 0 = all
	inBody   bool // the blank line ending the header was sent
	midLine  bool // the last chunk did not end a line
	lastCR   bool // the last byte of the last chunk was CR
	lineOnly bool // the current line so far is empty (for the header end)
}

// copyMessage streams src to w in POP3 form. bodyLines < 0 sends the whole
// message; otherwise the header, the blank line and bodyLines body lines
// (TOP). It always leaves w at the start of a line; the caller writes the
// terminating ".\r\n".
func copyMessage(w *bufio.Writer, src io.Reader, buf *bufio.Reader, bodyLines int) error {
	buf.Reset(src)
	m := messageWriter{w: w, maxBody: bodyLines}
	for {
		if m.inBody && m.maxBody == 0 && !m.midLine {
			return nil
		}
		chunk, err := buf.ReadSlice('\n')
		if len(chunk) > 0 {
			if werr := m.chunk(chunk); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			if m.midLine {
				_, werr := w.WriteString("\r\n")
				return werr
			}
			return nil
		default:
			return err
		}
	}
}

// chunk writes one piece of a line: the whole line with its LF, or a
// piece of a line longer than the buffer.
func (m *messageWriter) chunk(c []byte) error {
	startOfLine := !m.midLine
	if startOfLine {
		m.lineOnly = true
		if c[0] == '.' {
			// RFC 1939 §3: byte-stuff a line beginning with the
			// termination octet.
			if err := m.w.WriteByte('.'); err != nil {
				return err
			}
		}
	}
	if c[len(c)-1] != '\n' {
		// A piece of a long line: the line continues in the next chunk.
		m.midLine = true
		m.lastCR = c[len(c)-1] == '\r'
		if len(c) > 1 || c[0] != '\r' {
			m.lineOnly = false
		}
		_, err := m.w.Write(c)
		return err
	}
	body := c[:len(c)-1]
	hasCR := len(body) > 0 && body[len(body)-1] == '\r' || len(body) == 0 && m.lastCR
	content := body
	if len(content) > 0 && content[len(content)-1] == '\r' {
		content = content[:len(content)-1]
	}
	empty := m.lineOnly && len(content) == 0
	if _, err := m.w.Write(body); err != nil {
		return err
	}
	var err error
	if hasCR {
		err = m.w.WriteByte('\n')
	} else {
		_, err = m.w.WriteString("\r\n")
	}
	m.midLine, m.lastCR = false, false
	switch {
	case !m.inBody && empty:
		m.inBody = true
	case m.inBody && m.maxBody > 0:
		m.maxBody--
	}
	return err
}

// fileBufSize is the read buffer for message files: long lines pass
// through in pieces of this size.
const fileBufSize = 32 * 1024

func newFileReader() *bufio.Reader { return bufio.NewReaderSize(nil, fileBufSize) }

// fileReaderPool holds file buffers between RETRs, shared by all sessions.
var fileReaderPool = sync.Pool{New: func() any { return newFileReader() }}
