package sendmail

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// lineSource yields a message line by line, each line ending in LF: the
// caller's CRLF becomes LF (a lone CR stays), and a last line without a
// line end gets one. A line longer than the reader's buffer comes in
// pieces; only the last piece ends in LF. Lines are valid until the next
// call. io.EOF marks the end of the message.
type lineSource interface {
	next() ([]byte, error)
}

// stdinSource reads sendmail's standard input. Without -i a line holding
// only "." ends the message (sendmail's and Postfix's rule), and what
// follows it is not read; with -i only the end of input does.
type stdinSource struct {
	r         *bufio.Reader
	dotEnds   bool
	lineStart bool // the next piece starts a line
	done      bool
	buf       []byte
}

func newStdinSource(r io.Reader, ignoreDots bool) *stdinSource {
	return &stdinSource{r: bufio.NewReaderSize(r, 64<<10), dotEnds: !ignoreDots, lineStart: true}
}

func (s *stdinSource) next() ([]byte, error) {
	if s.done {
		return nil, io.EOF
	}
	piece, partial, err := readPiece(s.r)
	switch {
	case err == io.EOF && len(piece) == 0:
		s.done = true
		return nil, io.EOF
	case err != nil && err != io.EOF:
		return nil, err
	}
	s.buf = append(s.buf[:0], piece...)
	if !partial && s.buf[len(s.buf)-1] != '\n' {
		s.buf = append(s.buf, '\n')
	}
	line := fixLineEnd(s.buf)
	start := s.lineStart
	s.lineStart = line[len(line)-1] == '\n'
	if s.dotEnds && start && string(line) == ".\n" {
		s.done = true
		return nil, io.EOF
	}
	return line, nil
}

// readPiece reads up to and including the next LF, or a buffer's worth
// (partial).
// A piece cut after a CR gives the CR back, so that a CRLF split by the
// buffer is still seen whole by the next call.
func readPiece(r *bufio.Reader) (piece []byte, partial bool, err error) {
	piece, err = r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		if len(piece) > 1 && piece[len(piece)-1] == '\r' {
			if uerr := r.UnreadByte(); uerr != nil {
				return nil, false, uerr
			}
			piece = piece[:len(piece)-1]
		}
		return piece, true, nil
	}
	return piece, false, err
}

// fixLineEnd turns a final CRLF into LF in place.
func fixLineEnd(line []byte) []byte {
	if bytes.HasSuffix(line, []byte("\r\n")) {
		line[len(line)-2] = '\n'
		return line[:len(line)-1]
	}
	return line
}
