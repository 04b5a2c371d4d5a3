package message

import (
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
)

// ErrUnknownEncoding reports a Content-Transfer-Encoding BINARY cannot
// decode; imapd answers NO [UNKNOWN-CTE] (RFC 3516 §4.3).
var ErrUnknownEncoding = errors.New("message: unknown content transfer encoding")

// OpenBinary returns the decoded content of BINARY[part]<partial> (RFC 3516
// §4.2) and its size. base64 and quoted-printable parts are decoded (from
// the CRLF form, so quoted-printable line breaks come out as CRLF); 7bit,
// 8bit and binary parts, multiparts and messages are their CRLF octets.
// The size needs one decoding pass; the content is a second one.
func (s *Structure) OpenBinary(ra io.ReaderAt, path []uint32, partial *Partial) (io.Reader, int64, error) {
	size, err := s.BinarySize(ra, path)
	if err != nil {
		return nil, 0, err
	}
	skip, count := partialRange(partial)
	if skip >= size {
		return emptyReader{}, 0, nil
	}
	n := min(size-skip, count)
	r, err := s.decoded(ra, path)
	if err != nil {
		return nil, 0, err
	}
	if _, err := io.CopyN(io.Discard, r, skip); err != nil {
		return nil, 0, fileErr(err)
	}
	return &exactReader{r: io.LimitReader(r, n), left: n}, n, nil
}

// BinarySize returns the size of BINARY[part], the answer to BINARY.SIZE.
func (s *Structure) BinarySize(ra io.ReaderAt, path []uint32) (int64, error) {
	r, err := s.decoded(ra, path)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return 0, fmt.Errorf("message: decoding part %v: %w", path, err)
	}
	return n, nil
}

// decoded returns a reader of the decoded content of a part.
func (s *Structure) decoded(ra io.ReaderAt, path []uint32) (io.Reader, error) {
	sp := Span{End: s.Size, CRLFEnd: s.CRLFSize}
	enc := "7bit"
	if len(path) > 0 {
		p, err := s.Part(path)
		if err != nil {
			return nil, err
		}
		sp = p.Body
		if !p.IsMultipart() && !p.IsMessage() {
			enc = strings.ToLower(p.Encoding)
		}
	}
	r, _, err := s.openCRLF(ra, sp, 0, sp.CRLFSize())
	if err != nil {
		return nil, err
	}
	switch enc {
	case "7bit", "8bit", "binary", "":
		return r, nil
	case "base64":
		return &base64Reader{r: r}, nil
	case "quoted-printable":
		return quotedprintable.NewReader(r), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownEncoding, enc)
}

// base64Reader decodes base64 leniently, as mail needs: characters
// outside the alphabet (line breaks, stray spaces, garbage) are skipped,
// and the data ends at the first "=" padding.
type base64Reader struct {
	r    io.Reader
	in   [4096]byte
	acc  uint32
	bits int
	out  []byte
	done bool
}

func base64Value(c byte) (uint32, bool) {
	switch {
	case c >= 'A' && c <= 'Z':
		return uint32(c - 'A'), true
	case c >= 'a' && c <= 'z':
		return uint32(c-'a') + 26, true
	case c >= '0' && c <= '9':
		return uint32(c-'0') + 52, true
	case c == '+':
		return 62, true
	case c == '/':
		return 63, true
	}
	return 0, false
}

func (b *base64Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.done {
			return 0, io.EOF
		}
		n, err := b.r.Read(b.in[:])
		buf := make([]byte, 0, n)
		for _, c := range b.in[:n] {
			if c == '=' {
				b.done = true
				break
			}
			v, ok := base64Value(c)
			if !ok {
				continue
			}
			b.acc = b.acc<<6 | v
			b.bits += 6
			if b.bits >= 8 {
				b.bits -= 8
				buf = append(buf, byte(b.acc>>b.bits))
			}
		}
		b.out = buf
		if errors.Is(err, io.EOF) {
			b.done = true
		} else if err != nil {
			return 0, err
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}
