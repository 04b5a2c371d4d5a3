package textindex

// decoder undoes a Content-Transfer-Encoding a chunk at a time: the output
// over any split of the input into chunks is the same.
type decoder interface {
	// decode appends the decoded form of src to dst.
	decode(dst, src []byte) []byte
	// finish appends what a partial sequence at the end stands for.
	finish(dst []byte) []byte
}

type identity struct{}

func (identity) decode(dst, src []byte) []byte { return append(dst, src...) }
func (identity) finish(dst []byte) []byte      { return dst }

// base64Decoder decodes leniently, as mail needs (RFC 2045 §6.8: octets
// outside the alphabet are ignored); the data ends at the first "=".
type base64Decoder struct {
	acc  uint32
	bits uint
	done bool
}

var base64Values = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

func (d *base64Decoder) decode(dst, src []byte) []byte {
	for _, c := range src {
		if d.done {
			break
		}
		if c == '=' {
			d.done = true
			break
		}
		v := base64Values[c]
		if v < 0 {
			continue
		}
		d.acc = d.acc<<6 | uint32(v)
		d.bits += 6
		if d.bits >= 8 {
			d.bits -= 8
			dst = append(dst, byte(d.acc>>d.bits))
		}
	}
	return dst
}

func (d *base64Decoder) finish(dst []byte) []byte { return dst }

// qpDecoder decodes quoted-printable (RFC 2045 §6.7) leniently: "=" and
// two hex digits is an octet, "=" before optional blanks and a line end a
// soft line break, and any other "=" stands for itself.
type qpDecoder struct {
	state qpState
	hi    byte // the first hex digit after "="
}

type qpState uint8

const (
	qpText  qpState = iota
	qpEq            // after "="
	qpHex           // after "=" and one hex digit
	qpBlank         // after "=" and blanks or CR: a soft break if a LF follows
)

func hexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func (d *qpDecoder) decode(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch d.state {
		case qpText:
			if c == '=' {
				d.state = qpEq
			} else {
				dst = append(dst, c)
			}
		case qpEq:
			switch {
			case c == '\n':
				d.state = qpText
			case c == ' ' || c == '\t' || c == '\r':
				d.state = qpBlank
			default:
				if _, ok := hexValue(c); ok {
					d.hi, d.state = c, qpHex
					continue
				}
				dst = append(dst, '=')
				d.state = qpText
				i-- // the octet is text
			}
		case qpHex:
			d.state = qpText
			if lo, ok := hexValue(c); ok {
				hi, _ := hexValue(d.hi)
				dst = append(dst, hi<<4|lo)
				continue
			}
			dst = append(dst, '=', d.hi)
			i--
		case qpBlank:
			switch c {
			case '\n':
				d.state = qpText
			case ' ', '\t', '\r':
			default:
				// Not a soft break after all: "=" stands for itself, the
				// blanks are dropped.
				dst = append(dst, '=')
				d.state = qpText
				i--
			}
		}
	}
	return dst
}

func (d *qpDecoder) finish(dst []byte) []byte {
	switch d.state {
	case qpEq, qpBlank:
		dst = append(dst, '=')
	case qpHex:
		dst = append(dst, '=', d.hi)
	}
	d.state = qpText
	return dst
}
