package sendmail

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Addresses come from two places: sendmail's operands (and -f), and with -t
// the To/Cc/Bcc fields. Both are read as an RFC 5322 §3.4 address-list, by
// this parser rather than net/mail's, for three reasons: net/mail refuses
// bare local names ("root"), which every cron job sends; it unquotes quoted
// local parts ("john doe"@x comes back as john doe@x, which is no longer an
// address an SMTP server would accept); and it refuses several obsolete
// forms (empty list elements, source routes) that old programs still write.
//
// What the parser keeps is the addr-spec only, as it would go into RCPT TO:
// display names, comments and group names are dropped; a group contributes
// its members ("undisclosed-recipients:;" contributes none); a source route
// (<@a,@b:user@c>, RFC 5322 §4.4) is dropped; a quoted local part stays
// quoted unless its content is a plain dot-atom ("joe"@x becomes joe@x).
// Control characters, invalid UTF-8 and unbalanced quotes, brackets or
// parentheses are errors. UTF-8 is allowed (RFC 6532).

type tokKind int

const (
	tokAtom    tokKind = iota // run of atext (and UTF-8)
	tokQuoted                 // "..." with the quotes, as written
	tokLiteral                // [...] domain literal, as written
	tokSpecial                // one of < > , : ; @ .
	tokSpace                  // folding white space or a comment
)

type token struct {
	kind tokKind
	text string
}

var errMalformed = errors.New("malformed address")

// tokenize splits s into tokens; comments become spaces.
func tokenize(s string) ([]token, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("%w: invalid UTF-8", errMalformed)
	}
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			// Unfolded header lines may still hold the folding CRLF.
			i++
			toks = appendSpace(toks)
		case c < 0x20 || c == 0x7f:
			return nil, fmt.Errorf("%w: control character", errMalformed)
		case c == '(':
			end, err := skipComment(s, i)
			if err != nil {
				return nil, err
			}
			i = end
			toks = appendSpace(toks)
		case c == '"':
			end, err := scanQuoted(s, i, '"')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokQuoted, s[i:end]})
			i = end
		case c == '[':
			end, err := scanQuoted(s, i, ']')
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokLiteral, s[i:end]})
			i = end
		case strings.IndexByte("<>,:;@.", c) >= 0:
			toks = append(toks, token{tokSpecial, s[i : i+1]})
			i++
		case strings.IndexByte(")]\\", c) >= 0:
			return nil, fmt.Errorf("%w: stray %q", errMalformed, c)
		default:
			j := i
			for j < len(s) && isAtext(s[j]) {
				j++
			}
			toks = append(toks, token{tokAtom, s[i:j]})
			i = j
		}
	}
	return toks, nil
}

func appendSpace(toks []token) []token {
	if len(toks) > 0 && toks[len(toks)-1].kind == tokSpace {
		return toks
	}
	return append(toks, token{tokSpace, " "})
}

// isAtext is RFC 5322 atext plus every non-ASCII byte (RFC 6532 §3.2). '"'
// '(' '[' and the specials are excluded; '\\', ')' and ']' too.
func isAtext(c byte) bool {
	if c >= 0x80 {
		return true
	}
	if c <= 0x20 || c == 0x7f {
		return false
	}
	return strings.IndexByte("()<>[]:;@\\,.\"", c) < 0
}

// skipComment returns the index after the comment opening at s[i]
// (nested, with quoted pairs: RFC 5322 §3.2.2).
func skipComment(s string, i int) (int, error) {
	depth := 0
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		case c < 0x20 && c != '\t' && c != '\r' && c != '\n', c == 0x7f:
			return 0, fmt.Errorf("%w: control character", errMalformed)
		}
	}
	return 0, fmt.Errorf("%w: unclosed comment", errMalformed)
}

// scanQuoted returns the index after the quoted string or literal opening
// at s[i] and closing with end.
func scanQuoted(s string, i int, end byte) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '\\' && end == '"':
			j++
			if j < len(s) && (s[j] < 0x20 && s[j] != '\t' || s[j] == 0x7f) {
				return 0, fmt.Errorf("%w: control character", errMalformed)
			}
		case c == end:
			return j + 1, nil
		case c < 0x20 && c != '\t' || c == 0x7f:
			return 0, fmt.Errorf("%w: control character", errMalformed)
		case c == '[' && end == ']':
			return 0, fmt.Errorf("%w: '[' in a domain literal", errMalformed)
		}
	}
	if end == '"' {
		return 0, fmt.Errorf("%w: unclosed quote", errMalformed)
	}
	return 0, fmt.Errorf("%w: unclosed domain literal", errMalformed)
}

// parseAddressList returns the addr-specs of an address-list, in order,
// without qualification: a bare local name stays bare.
func parseAddressList(s string) ([]string, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	var (
		out     []string
		cur     []token // the mailbox being read
		angle   []token // inside <...>
		inAngle bool
		hadAng  bool // this mailbox had <...>
		afterAn bool // a '>' was seen: only blanks may follow
		inGroup bool
	)
	finish := func() error {
		defer func() { cur, angle, hadAng, afterAn = nil, nil, false, false }()
		if inAngle {
			return fmt.Errorf("%w: unclosed '<'", errMalformed)
		}
		src := cur
		if hadAng {
			src = angle
		}
		a, err := addrSpec(src)
		if err != nil {
			return err
		}
		if a != "" {
			out = append(out, a)
		}
		return nil
	}
	for _, t := range toks {
		switch {
		case inAngle && t.kind == tokSpecial && t.text == ">":
			inAngle, afterAn = false, true
		case inAngle && t.kind == tokSpecial && t.text == ":":
			// The end of a source route: what came before is the route.
			angle = nil
		case inAngle && t.kind == tokSpecial && t.text == "<":
			return nil, fmt.Errorf("%w: nested '<'", errMalformed)
		case inAngle:
			angle = append(angle, t)
		case t.kind == tokSpecial && t.text == ",":
			if err := finish(); err != nil {
				return nil, err
			}
		case t.kind == tokSpecial && t.text == ";" && inGroup:
			if err := finish(); err != nil {
				return nil, err
			}
			inGroup = false
		case t.kind == tokSpecial && t.text == ":" && !inGroup && !hadAng:
			// A group: what came before is its display name.
			cur, inGroup = nil, true
		case t.kind == tokSpecial && t.text == "<" && !hadAng:
			inAngle, hadAng, cur = true, true, nil
		case afterAn && t.kind != tokSpace:
			return nil, fmt.Errorf("%w: text after '>'", errMalformed)
		case t.kind == tokSpecial && strings.Contains("<>:;", t.text):
			return nil, fmt.Errorf("%w: unexpected %q", errMalformed, t.text)
		default:
			cur = append(cur, t)
		}
	}
	// A group left open ("group: a@x" without ';') is common enough to
	// accept: its members count.
	if err := finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// addrSpec joins the tokens of one addr-spec. Blanks are allowed only next
// to '.' and '@' (obsolete CFWS, RFC 5322 §4.4); elsewhere they mean a
// display name without angle brackets, which is an error.
func addrSpec(toks []token) (string, error) {
	var words []token
	for i, t := range toks {
		if t.kind != tokSpace {
			words = append(words, t)
			continue
		}
		if len(words) == 0 || i == len(toks)-1 {
			continue
		}
		prev, next := words[len(words)-1], toks[i+1]
		if !isDotOrAt(prev) && !isDotOrAt(next) {
			return "", fmt.Errorf("%w: blank inside an address (a name needs <...> around the address)", errMalformed)
		}
	}
	if len(words) == 0 {
		return "", nil
	}
	at := -1
	for i, t := range words {
		if isDotOrAt(t) && t.text == "@" {
			at = i
		}
	}
	localToks, domainToks := words, []token(nil)
	if at >= 0 {
		localToks, domainToks = words[:at], words[at+1:]
		if len(domainToks) == 0 {
			return "", fmt.Errorf("%w: empty domain", errMalformed)
		}
	}
	local, err := localPart(localToks)
	if err != nil {
		return "", err
	}
	if at < 0 {
		return local, nil
	}
	var domain strings.Builder
	for _, t := range domainToks {
		if t.kind == tokQuoted || t.text == "@" {
			return "", fmt.Errorf("%w: bad domain", errMalformed)
		}
		domain.WriteString(t.text)
	}
	return local + "@" + domain.String(), nil
}

func isDotOrAt(t token) bool {
	return t.kind == tokSpecial && (t.text == "." || t.text == "@")
}

// localPart joins a local part; a single quoted string whose content is a
// dot-atom loses its needless quotes.
func localPart(toks []token) (string, error) {
	if len(toks) == 0 {
		return "", fmt.Errorf("%w: empty local part", errMalformed)
	}
	if len(toks) == 1 && toks[0].kind == tokQuoted {
		q := toks[0].text
		inner := q[1 : len(q)-1]
		if isDotAtom(inner) {
			return inner, nil
		}
		return q, nil
	}
	var b strings.Builder
	for _, t := range toks {
		if t.kind == tokLiteral || t.kind == tokSpecial && t.text != "." {
			return "", fmt.Errorf("%w: bad local part", errMalformed)
		}
		b.WriteString(t.text)
	}
	return b.String(), nil
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isAtext(s[i]) {
			return false
		}
	}
	return true
}

// qualify adds @origin to a bare local name.
func qualify(addr, origin string) string {
	if addr == "" || strings.Contains(addr, "@") && !strings.HasPrefix(addr, "\"") {
		return addr
	}
	if strings.HasPrefix(addr, "\"") {
		// A quoted local part may hold '@': look after the closing quote.
		if end := strings.LastIndexByte(addr, '"'); strings.Contains(addr[end:], "@") {
			return addr
		}
	}
	return addr + "@" + origin
}

// isASCII reports whether s needs no SMTPUTF8.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
