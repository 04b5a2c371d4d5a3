package message

import "strings"

// AddrKind tells an ordinary address from the markers IMAP uses for RFC
// 5322 groups (RFC 9051 §7.5.2: "If the host name field is NIL, this is
// the start of group syntax ... If the mailbox name field is also NIL,
// this is the end of group syntax").
type AddrKind uint8

const (
	AddrMailbox    AddrKind = iota // an address: Mailbox and Host are set
	AddrGroupStart                 // Mailbox is the group's name, Host NIL
	AddrGroupEnd                   // all four fields NIL
)

// Address is one element of an ENVELOPE address list. Name and Route are
// NIL when empty.
type Address struct {
	Kind    AddrKind
	Name    string // display name, quotes removed, encoded words kept
	Route   string // obsolete source route "@a.net,@b.net" (RFC 5322 §4.4)
	Mailbox string
	Host    string
}

// Placeholders for what a broken address lacks, as Dovecot sends them, so
// that no ordinary address has a NIL host and reads as a group marker.
const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

type addrTokKind uint8

const (
	tokAtom    addrTokKind = iota // atext run, dots included (obs-phrase)
	tokQuoted                     // quoted-string, value unescaped
	tokComment                    // comment, value without the outer parens
	tokLiteral                    // domain-literal, brackets included
	tokSpecial                    // one of < > @ , ; :
)

type addrTok struct {
	kind addrTokKind
	val  string
	raw  string // quoted: as written, quotes included
}

const addrSpecials = "<>@,;:"

// lexAddresses splits an unfolded address header into tokens. It accepts
// every input: a stray ")" or "\" is part of an atom, an unterminated
// quote or comment ends at the end of the value.
func lexAddresses(s string) []addrTok {
	var toks []addrTok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '"':
			v, raw, n := lexQuoted(s[i:])
			toks = append(toks, addrTok{kind: tokQuoted, val: v, raw: raw})
			i += n
		case c == '(':
			v, n := lexComment(s[i:])
			toks = append(toks, addrTok{kind: tokComment, val: v})
			i += n
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s) - i - 1
			}
			toks = append(toks, addrTok{kind: tokLiteral, val: s[i : i+j+1]})
			i += j + 1
		case strings.IndexByte(addrSpecials, c) >= 0:
			toks = append(toks, addrTok{kind: tokSpecial, val: s[i : i+1]})
			i++
		default:
			j := i
			for j < len(s) && !isAddrDelim(s[j]) {
				j++
			}
			if j == i { // a lone ']'
				j++
			}
			toks = append(toks, addrTok{kind: tokAtom, val: s[i:j]})
			i = j
		}
	}
	return toks
}

func isAddrDelim(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '(' || c == '[' ||
		strings.IndexByte(addrSpecials, c) >= 0
}

// lexQuoted reads a quoted-string at the start of s.
func lexQuoted(s string) (val, raw string, n int) {
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		if c == '"' {
			return b.String(), s[:i+1], i + 1
		}
		if c == '\\' && i+1 < len(s) {
			i++
			c = s[i]
		}
		if c != '\r' && c != '\n' {
			b.WriteByte(c)
		}
		i++
	}
	return b.String(), s, len(s)
}

// lexComment reads a (possibly nested) comment at the start of s.
func lexComment(s string) (string, int) {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
			continue
		case c == '(':
			depth++
			if depth == 1 {
				continue
			}
		case c == ')':
			depth--
			if depth == 0 {
				return b.String(), i + 1
			}
		}
		b.WriteByte(c)
	}
	return b.String(), len(s)
}

// addrParser walks the tokens of one address list.
type addrParser struct {
	toks []addrTok
	i    int
	out  []Address
}

func (p *addrParser) peek() (addrTok, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return addrTok{}, false
}

func (p *addrParser) isSpecial(c string) bool {
	t, ok := p.peek()
	return ok && t.kind == tokSpecial && t.val == c
}

// ParseAddressList parses an unfolded address-list header value (RFC 5322
// §3.4 with the obsolete forms of §4.4) into IMAP's representation, group
// markers included. It never fails: whatever cannot be understood is
// skipped or becomes an address with placeholder parts.
func ParseAddressList(s string) []Address {
	p := &addrParser{toks: lexAddresses(s)}
	inGroup := false
	for p.i < len(p.toks) && len(p.out) < maxListAddress {
		phrase, comment, stop := p.phrase()
		switch {
		case stop == ":":
			p.i++
			if inGroup {
				// A group in a group is not valid; read on as addresses.
				continue
			}
			p.out = append(p.out, Address{Kind: AddrGroupStart, Mailbox: joinPhrase(phrase)})
			inGroup = true
		case stop == "<":
			p.i++
			p.angleAddr(joinPhrase(phrase), comment)
		case stop == "@":
			p.i++
			p.addrSpec(phrase, comment)
		default: // ",", ";", ">" or the end
			if len(phrase) > 0 {
				// RFC 5322 needs a domain; keep the address, mark the gap.
				p.out = append(p.out, Address{Kind: AddrMailbox, Name: comment,
					Mailbox: joinLocal(phrase), Host: missingDomain})
			}
			if stop == ";" && inGroup {
				p.out = append(p.out, Address{Kind: AddrGroupEnd})
				inGroup = false
			}
			if stop != "" {
				p.i++
			}
		}
	}
	if inGroup {
		p.out = append(p.out, Address{Kind: AddrGroupEnd})
	}
	return p.out
}

// phrase collects words and comments up to the next special token,
// which it returns without consuming ("" at the end).
func (p *addrParser) phrase() (words []addrTok, comment, stop string) {
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		switch t.kind {
		case tokSpecial:
			return words, comment, t.val
		case tokComment:
			comment = strings.TrimSpace(t.val)
		default:
			words = append(words, t)
		}
	}
	return words, comment, ""
}

// angleAddr reads "[obs-route] addr-spec >" after "<".
func (p *addrParser) angleAddr(name, comment string) {
	route := p.route()
	local, _, stop := p.phrase()
	a := Address{Kind: AddrMailbox, Name: name, Route: route, Mailbox: joinLocal(local)}
	if stop == "@" {
		p.i++
		a.Host, _ = p.domain()
	}
	if p.isSpecial(">") {
		p.i++
	}
	// Comments after the address may carry the only name there is.
	for t, ok := p.peek(); ok && t.kind == tokComment; t, ok = p.peek() {
		comment = strings.TrimSpace(t.val)
		p.i++
	}
	if a.Name == "" {
		a.Name = comment
	}
	if a.Mailbox == "" {
		a.Mailbox = missingMailbox
	}
	if a.Host == "" {
		a.Host = missingDomain
	}
	p.out = append(p.out, a)
}

// route reads obs-route = obs-domain-list ":" ("@a,@b:"), returning
// "@a,@b", or "" without consuming anything when there is none.
func (p *addrParser) route() string {
	start := p.i
	var parts []string
	for p.isSpecial("@") || p.isSpecial(",") {
		if p.isSpecial(",") {
			p.i++
			continue
		}
		p.i++
		d, _ := p.domain()
		parts = append(parts, "@"+d)
	}
	if len(parts) == 0 {
		return ""
	}
	if !p.isSpecial(":") {
		p.i = start
		return ""
	}
	p.i++
	return strings.Join(parts, ",")
}

// addrSpec finishes "local @ domain" after the "@".
func (p *addrParser) addrSpec(local []addrTok, comment string) {
	a := Address{Kind: AddrMailbox, Mailbox: joinLocal(local)}
	host, c := p.domain()
	a.Host = host
	if c != "" {
		comment = c
	}
	for t, ok := p.peek(); ok && t.kind == tokComment; t, ok = p.peek() {
		comment = strings.TrimSpace(t.val)
		p.i++
	}
	a.Name = comment
	if a.Mailbox == "" {
		a.Mailbox = missingMailbox
	}
	if a.Host == "" {
		a.Host = missingDomain
	}
	p.out = append(p.out, a)
}

// domain reads domain = dot-atom / domain-literal / obs-domain up to the
// next special token. Comments are not part of it; the last one is
// returned, as it may be the only name an address has ("bob@y.org (Bob)").
func (p *addrParser) domain() (host, comment string) {
	var b strings.Builder
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		switch t.kind {
		case tokSpecial:
			return b.String(), comment
		case tokComment:
			comment = strings.TrimSpace(t.val)
		default:
			b.WriteString(t.val)
		}
	}
	return b.String(), comment
}

// joinPhrase joins display-name words with single spaces (RFC 5322 §3.2.5
// phrase; white space between words is folding, not content).
func joinPhrase(words []addrTok) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.val)
	}
	return b.String()
}

// joinLocal joins local-part words: dot-atoms as written, quoted strings
// with their quotes, since the quotes are part of the address (RFC 5322
// §3.4.1) and a client must be able to write it back.
func joinLocal(words []addrTok) string {
	var b strings.Builder
	for _, w := range words {
		if w.kind == tokQuoted {
			b.WriteString(w.raw)
			continue
		}
		b.WriteString(w.val)
	}
	return b.String()
}
