package message

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
)

// Bounds on what a header may make Parse keep. Fields beyond them are
// still measured; only their values are cut short.
const (
	maxFieldValue  = 256 << 10 // one kept field's raw value
	maxHeaderKept  = 1 << 20   // all kept values of one header block
	maxParams      = 100       // parameters of one Content-Type/-Disposition
	maxLanguages   = 100       // tags of one Content-Language
	maxListAddress = 10000     // addresses in one address list
)

// keptFields are the fields whose values Parse keeps: those ENVELOPE
// needs (RFC 9051 §7.5.2) and the Content-* fields of BODYSTRUCTURE.
var keptFields = map[string]bool{
	"date": true, "subject": true, "from": true, "sender": true,
	"reply-to": true, "to": true, "cc": true, "bcc": true,
	"in-reply-to": true, "message-id": true,
	"content-type": true, "content-transfer-encoding": true,
	"content-id": true, "content-description": true,
	"content-disposition": true, "content-language": true,
	"content-location": true, "content-md5": true,
}

// header holds the first occurrence of each kept field of one header
// block, by lower-case name, as raw (still folded) values.
type header struct {
	fields map[string][]byte
	kept   int
}

// add records a field's raw value unless the name was seen before; the
// first occurrence wins, as in Dovecot.
func (h *header) add(name string, value []byte) {
	if h.fields == nil {
		h.fields = map[string][]byte{}
	}
	if _, dup := h.fields[name]; dup {
		return
	}
	h.fields[name] = value
}

// get returns the unfolded value of a field with surrounding white space
// removed, and whether the field was present.
func (h *header) get(name string) (string, bool) {
	v, ok := h.fields[name]
	if !ok {
		return "", false
	}
	return unfold(v), true
}

// unfold removes the line breaks of a folded value (RFC 5322 §2.2.3) and
// trims white space at both ends. A CR or LF that is not followed by white
// space (a bare CR inside a line) becomes a space, so words stay apart,
// as Dovecot does.
func unfold(v []byte) string {
	var b strings.Builder
	b.Grow(len(v))
	for i, c := range v {
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(v) && strings.IndexByte(" \t\r\n", v[i+1]) < 0 {
			b.WriteByte(' ')
		}
	}
	return strings.Trim(b.String(), " \t")
}

// fieldName splits "Name: value" into a lower-case name and the value
// octets after the colon. obs-optional allows white space before the colon
// (RFC 5322 §4.5.1). ok is false for a line that is not a field.
func fieldName(line []byte) (name string, value []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", nil, false
	}
	n := bytes.TrimRight(line[:i], " \t")
	if len(n) == 0 {
		return "", nil, false
	}
	for _, c := range n {
		if c <= ' ' || c >= 0x7f {
			return "", nil, false
		}
	}
	return strings.ToLower(string(n)), line[i+1:], true
}

// Param is one MIME parameter, name and value as the message has them.
type Param struct {
	Name, Value string
}

// mimeLexer reads the RFC 2045 §5.1 grammar: tokens, tspecials, quoted
// strings and RFC 822 comments, which it skips.
type mimeLexer struct {
	s string
	i int
}

func isTSpecial(c byte) bool {
	return strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0
}

// skipCFWS skips white space and (nested) comments.
func (l *mimeLexer) skipCFWS() {
	for l.i < len(l.s) {
		switch c := l.s[l.i]; {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.i++
		case c == '(':
			l.skipComment()
		default:
			return
		}
	}
}

func (l *mimeLexer) skipComment() {
	depth := 0
	for l.i < len(l.s) {
		switch l.s[l.i] {
		case '\\':
			l.i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				l.i++
				return
			}
		}
		l.i++
	}
}

// token reads a token; empty when none is there.
func (l *mimeLexer) token() string {
	l.skipCFWS()
	start := l.i
	for l.i < len(l.s) {
		c := l.s[l.i]
		if c <= ' ' || c == 0x7f || isTSpecial(c) {
			break
		}
		l.i++
	}
	return l.s[start:l.i]
}

// value reads a token or a quoted string (unquoted).
func (l *mimeLexer) value() (string, bool) {
	l.skipCFWS()
	if l.i < len(l.s) && l.s[l.i] == '"' {
		return l.quoted()
	}
	t := l.token()
	return t, t != ""
}

func (l *mimeLexer) quoted() (string, bool) {
	var b strings.Builder
	l.i++ // opening quote
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == '"':
			l.i++
			return b.String(), true
		case c == '\\' && l.i+1 < len(l.s):
			l.i++
			b.WriteByte(l.s[l.i])
		case c == '\r' || c == '\n':
		default:
			b.WriteByte(c)
		}
		l.i++
	}
	// Unterminated: take what is there, as lenient readers do.
	return b.String(), true
}

// accept consumes c after optional CFWS.
func (l *mimeLexer) accept(c byte) bool {
	l.skipCFWS()
	if l.i < len(l.s) && l.s[l.i] == c {
		l.i++
		return true
	}
	return false
}

// params reads *(";" attribute "=" value). A malformed parameter ends
// the list; what was read so far is kept.
func (l *mimeLexer) params() []Param {
	var ps []Param
	for len(ps) < maxParams && l.accept(';') {
		name := l.token()
		if name == "" {
			// "; ;" or a trailing ";": skip the empty element.
			continue
		}
		if !l.accept('=') {
			break
		}
		v, ok := l.value()
		if !ok {
			break
		}
		ps = append(ps, Param{Name: name, Value: v})
	}
	return joinRFC2231(ps)
}

// parseContentType parses RFC 2045 §5.1 Content-Type. ok is false for a
// value that does not follow the grammar, which §5.2 says to treat as
// absent.
func parseContentType(v string) (typ, sub string, ps []Param, ok bool) {
	l := &mimeLexer{s: v}
	typ = l.token()
	if typ == "" || !l.accept('/') {
		return "", "", nil, false
	}
	sub = l.token()
	if sub == "" {
		return "", "", nil, false
	}
	return typ, sub, l.params(), true
}

// parseDisposition parses RFC 2183 Content-Disposition.
func parseDisposition(v string) (string, []Param) {
	l := &mimeLexer{s: v}
	d := l.token()
	if d == "" {
		return "", nil
	}
	return d, l.params()
}

// parseLanguage parses RFC 3282 Content-Language: a comma separated list
// of language tags.
func parseLanguage(v string) []string {
	l := &mimeLexer{s: v}
	var out []string
	for len(out) < maxLanguages {
		t := l.token()
		if t != "" {
			out = append(out, t)
		}
		if !l.accept(',') {
			break
		}
	}
	return out
}

// parseToken reads a single token field (Content-Transfer-Encoding).
func parseToken(v string) string {
	l := &mimeLexer{s: v}
	return l.token()
}

// joinRFC2231 joins RFC 2231 §3 continuations "name*0", "name*1*" ... into
// one parameter, "name*" when any segment is extended (charset'lang'
// encoded), with the values concatenated undecoded. Joined parameters go
// after the plain ones, as Dovecot orders them.
func joinRFC2231(ps []Param) []Param {
	type seg struct {
		n   int
		ext bool
		v   string
	}
	var order []string
	segs := map[string][]seg{}
	var out []Param
	for _, p := range ps {
		base, n, ext, ok := splitContinuation(p.Name)
		if !ok {
			out = append(out, p)
			continue
		}
		key := strings.ToLower(base)
		if _, seen := segs[key]; !seen {
			order = append(order, base)
		}
		segs[key] = append(segs[key], seg{n, ext, p.Value})
	}
	for _, base := range order {
		ss := segs[strings.ToLower(base)]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].n < ss[j].n })
		var b strings.Builder
		ext := false
		for _, s := range ss {
			b.WriteString(s.v)
			ext = ext || s.ext
		}
		name := base
		if ext {
			name += "*"
		}
		out = append(out, Param{Name: name, Value: b.String()})
	}
	return out
}

// splitContinuation recognises "name*N" and "name*N*".
func splitContinuation(name string) (base string, n int, ext, ok bool) {
	i := strings.IndexByte(name, '*')
	if i <= 0 || i == len(name)-1 {
		return "", 0, false, false
	}
	rest := name[i+1:]
	if strings.HasSuffix(rest, "*") {
		ext = true
		rest = rest[:len(rest)-1]
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || rest == "" || rest[0] == '+' {
		return "", 0, false, false
	}
	return name[:i], n, ext, true
}
