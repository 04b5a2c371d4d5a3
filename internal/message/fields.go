package message

import (
	"bytes"
	"strings"
)

// maxFieldNameLine is how far into a header line its colon may be for
// the line to be a field of HEADER.FIELDS: the reference reader
// (headerFields) looks for the name in the first 4 KB of a line only, and
// the fast path answers the same.
const maxFieldNameLine = 4096

// FieldSet is the field-name list of one HEADER.FIELDS or
// HEADER.FIELDS.NOT section, prepared once per command so that the
// answer for each message is built without allocating.
type FieldSet struct {
	names [][]byte // lower case, as strings.ToLower makes them
	not   bool
}

// NewFieldSet prepares names (any case); not selects HEADER.FIELDS.NOT.
func NewFieldSet(names []string, not bool) *FieldSet {
	fs := &FieldSet{not: not, names: make([][]byte, 0, len(names))}
	for _, n := range names {
		fs.names = append(fs.names, []byte(strings.ToLower(n)))
	}
	return fs
}

// has reports whether name (as the header spells it: ASCII, any case) is
// one of the set's names.
func (fs *FieldSet) has(name []byte) bool {
	for _, n := range fs.names {
		if len(n) == len(name) && equalLowerASCII(n, name) {
			return true
		}
	}
	return false
}

// equalLowerASCII compares lower with name folded to ASCII lower case;
// len(lower) == len(name).
func equalLowerASCII(lower, name []byte) bool {
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// selects reports whether a header line that starts a field (not a
// continuation) is selected: a field whose name is (or, for .NOT, is not)
// in the set. A line that is not a field is never selected. The rules
// are fieldName's.
func (fs *FieldSet) selects(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 || i >= maxFieldNameLine {
		return false
	}
	name := line[:i]
	for len(name) > 0 && (name[len(name)-1] == ' ' || name[len(name)-1] == '\t') {
		name = name[:len(name)-1] // bytes.TrimRight, without its cutset set-up
	}
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return fs.has(name) != fs.not
}

// AppendHeaderFields appends to dst the answer to HEADER.FIELDS (or
// .NOT) of a raw header block, in one pass and without allocating beyond
// dst: the selected fields, continuation lines included, in CRLF form
// (a bare LF becomes CRLF, see crlfReader), up to the blank line, then
// the blank line (RFC 9051 §6.4.5). A last line without a line end gets
// one. The answer equals headerFields' on the same octets.
func AppendHeaderFields(dst, block []byte, fs *FieldSet) []byte {
	selected := false
	for len(block) > 0 {
		var line []byte
		ended := false
		if j := bytes.IndexByte(block, '\n'); j >= 0 {
			line, block, ended = block[:j+1], block[j+1:], true
		} else {
			line, block = block, nil
		}
		if ended && (len(line) == 1 || len(line) == 2 && line[0] == '\r') {
			break // the blank line ends the header
		}
		if line[0] != ' ' && line[0] != '\t' {
			selected = fs.selects(line)
		}
		if selected {
			dst = appendCRLFLine(dst, line, ended)
		}
	}
	return append(dst, '\r', '\n')
}

// appendCRLFLine appends one raw line in CRLF form; ended says whether it
// ends with LF (else it is the block's last, unterminated line, which
// gets a CRLF).
func appendCRLFLine(dst, line []byte, ended bool) []byte {
	if !ended {
		return append(append(dst, line...), '\r', '\n')
	}
	if len(line) >= 2 && line[len(line)-2] == '\r' {
		return append(dst, line...)
	}
	return append(append(dst, line[:len(line)-1]...), '\r', '\n')
}

// AppendCRLF appends the CRLF form of raw octets that start a file (no
// octet before them): every LF not preceded by CR becomes CRLF.
func AppendCRLF(dst, raw []byte) []byte {
	for len(raw) > 0 {
		j := bytes.IndexByte(raw, '\n')
		if j < 0 {
			return append(dst, raw...)
		}
		if j > 0 && raw[j-1] == '\r' {
			dst = append(dst, raw[:j+1]...)
		} else {
			dst = append(append(dst, raw[:j]...), '\r', '\n')
		}
		raw = raw[j+1:]
	}
	return dst
}

// AppendHeaderSection appends BODY[HEADER], BODY[HEADER.FIELDS (...)] or
// BODY[HEADER.FIELDS.NOT (...)] of the message itself, whole (no
// partial), built from its kept header block: fs nil means HEADER. ok is
// false when the Structure keeps no header block (the caller then uses
// Open).
func (s *Structure) AppendHeaderSection(dst []byte, fs *FieldSet) ([]byte, bool) {
	if s.header == nil || s.Root == nil || s.Root.Header.Start != 0 || s.Root.Header.End != int64(len(s.header)) {
		return dst, false
	}
	return AppendHeaderSection(dst, s.header, fs), true
}

// AppendHeaderSection is Structure.AppendHeaderSection on a header block
// taken from a cache record (RecordHeaderBlock).
func AppendHeaderSection(dst, block []byte, fs *FieldSet) []byte {
	if len(block) > maxFieldsHeader {
		block = block[:maxFieldsHeader]
	}
	if fs == nil {
		return AppendCRLF(dst, block)
	}
	return AppendHeaderFields(dst, block, fs)
}
