package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrFileChanged reports a message file shorter than its Structure says:
// the file is not the one that was parsed.
var ErrFileChanged = errors.New("message: file does not match its structure")

// crlfReader yields the CRLF form of the file octets [pos, end): every LF
// not preceded by CR becomes CRLF (see the package doc). It reads through
// a small buffer with ReadAt, so many readers may share one file.
type crlfReader struct {
	ra        io.ReaderAt
	pos, end  int64
	prevCR    bool
	pendingLF bool
	buf       []byte
	i, n      int
}

const crlfBuffer = 32 << 10

// newCRLFReader starts at file offset start. Whether a first LF is bare
// depends on the octet before it, so that octet is read too.
func newCRLFReader(ra io.ReaderAt, start, end int64) (*crlfReader, error) {
	r := &crlfReader{ra: ra, pos: start, end: end}
	if start > 0 && start < end {
		var b [1]byte
		if _, err := ra.ReadAt(b[:], start-1); err != nil {
			return nil, fileErr(err)
		}
		r.prevCR = b[0] == '\r'
	}
	return r, nil
}

func fileErr(err error) error {
	if errors.Is(err, io.EOF) {
		return ErrFileChanged
	}
	return fmt.Errorf("message: reading file: %w", err)
}

func (r *crlfReader) fill() error {
	if r.pos >= r.end {
		return io.EOF
	}
	if r.buf == nil {
		// A header or a small part needs no 32 KiB buffer.
		r.buf = make([]byte, min(crlfBuffer, r.end-r.pos))
	}
	want := min(int64(len(r.buf)), r.end-r.pos)
	n, err := r.ra.ReadAt(r.buf[:want], r.pos)
	if int64(n) < want {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return fileErr(err)
	}
	r.pos += want
	r.i, r.n = 0, n
	return nil
}

func (r *crlfReader) Read(p []byte) (int, error) {
	k := 0
	for k < len(p) {
		if r.pendingLF {
			p[k] = '\n'
			k++
			r.pendingLF, r.prevCR = false, false
			continue
		}
		if r.i == r.n {
			if k > 0 {
				break
			}
			if err := r.fill(); err != nil {
				return 0, err
			}
		}
		// Copy up to the next LF in one go; only the LF needs a look.
		src := r.buf[r.i:r.n]
		if room := len(p) - k; len(src) > room {
			src = src[:room]
		}
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			k += copy(p[k:], src)
			r.i += len(src)
			r.prevCR = src[len(src)-1] == '\r'
			continue
		}
		k += copy(p[k:], src[:j])
		crBefore := r.prevCR
		if j > 0 {
			crBefore = src[j-1] == '\r'
		}
		r.i += j + 1
		if crBefore {
			p[k] = '\n'
			r.prevCR = false
		} else {
			p[k] = '\r' // a bare LF becomes CRLF
			r.pendingLF = true
		}
		k++
	}
	return k, nil
}

// openCRLF returns a reader of the CRLF form of sp from CRLF octet offset
// skip within it, at most count octets, and the number of octets it will
// yield. It starts at the last checkpoint before the origin, so a partial
// far into a large part reads little it does not send.
func (s *Structure) openCRLF(ra io.ReaderAt, sp Span, skip, count int64) (io.Reader, int64, error) {
	size := sp.CRLFSize()
	if skip >= size {
		return emptyReader{}, 0, nil
	}
	n := min(size-skip, count)
	target := sp.CRLFStart + skip
	from := mark{raw: sp.Start, crlf: sp.CRLFStart}
	// The last checkpoint inside the span not beyond the target.
	i := sort.Search(len(s.marks), func(i int) bool { return s.marks[i].crlf > target })
	if i > 0 {
		if m := s.marks[i-1]; m.raw > from.raw && m.raw < sp.End {
			from = m
		}
	}
	r, err := newCRLFReader(ra, from.raw, sp.End)
	if err != nil {
		return nil, 0, err
	}
	if d := target - from.crlf; d > 0 {
		if _, err := io.CopyN(io.Discard, r, d); err != nil {
			return nil, 0, fileErr(err)
		}
	}
	return &exactReader{r: io.LimitReader(r, n), left: n}, n, nil
}

// exactReader turns an early end of its source into ErrFileChanged, so
// that a literal is never silently short.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, ErrFileChanged
	}
	return n, err
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, io.EOF }
