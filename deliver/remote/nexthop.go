package remote

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// DefaultPort is the SMTP relay port (RFC 5321 §4.5.4.2 via IANA "smtp").
const DefaultPort = 25

// Nexthop is where mail for a destination goes: a host whose MX records
// are looked up (Postfix's "host"), or, with NoMX, the host itself
// ("[host]").
type Nexthop struct {
	Host string // a domain name or an IP address, without brackets
	Port int    // 0: DefaultPort (or the transport's port for MX hosts)
	NoMX bool   // written in brackets: no MX lookup
}

// String renders n as it is written in relay_host and the transport file.
func (n Nexthop) String() string {
	h := n.Host
	if n.NoMX {
		h = "[" + h + "]"
	}
	if n.Port != 0 {
		h += ":" + strconv.Itoa(n.Port)
	}
	return h
}

// ParseNexthop parses a next hop as Postfix's relayhost and transport_maps
// nexthop are written: "host", "host:port", "[host]", "[host]:port"; an
// IPv6 address needs the brackets ("[2001:db8::1]:25"). A leading "smtp:"
// (Postfix's transport name) is accepted and dropped.
func ParseNexthop(s string) (Nexthop, error) {
	orig := s
	if rest, ok := strings.CutPrefix(s, "smtp:"); ok && rest != "" && !allDigits(rest) {
		s = rest
	}
	var n Nexthop
	hostPart, portPart := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Nexthop{}, fmt.Errorf("next hop %q: missing ]", orig)
		}
		hostPart, n.NoMX = s[1:end], true
		switch rest := s[end+1:]; {
		case rest == "":
		case strings.HasPrefix(rest, ":"):
			portPart = rest[1:]
			if portPart == "" {
				return Nexthop{}, fmt.Errorf("next hop %q: empty port", orig)
			}
		default:
			return Nexthop{}, fmt.Errorf("next hop %q: unexpected %q after ]", orig, rest)
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		hostPart, portPart = s[:i], s[i+1:]
		if portPart == "" {
			return Nexthop{}, fmt.Errorf("next hop %q: empty port", orig)
		}
	}
	if portPart != "" {
		p, err := strconv.Atoi(portPart)
		if err != nil || p < 1 || p > 65535 || !allDigits(portPart) {
			return Nexthop{}, fmt.Errorf("next hop %q: bad port %q", orig, portPart)
		}
		n.Port = p
	}
	if !n.NoMX && strings.Contains(hostPart, ":") {
		return Nexthop{}, fmt.Errorf("next hop %q: an IPv6 address must be in brackets", orig)
	}
	if !validHost(hostPart) {
		return Nexthop{}, fmt.Errorf("next hop %q: bad host name %q", orig, hostPart)
	}
	n.Host = strings.ToLower(strings.TrimSuffix(hostPart, "."))
	if ip := net.ParseIP(n.Host); ip != nil {
		// An address has no MX records: connect to it as it is.
		n.NoMX = true
	}
	return n, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validHost accepts an IP address or an LDH domain name (RFC 1123 §2.1,
// with "_" tolerated as resolvers do).
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Table is a transport table: recipient domains mapped to next hops, with
// Postfix's transport_maps matching (parent_domain_matches_subdomains not
// applying): "example.com" matches that domain only, ".example.com" every
// subdomain of it, "*" every domain. The most specific key wins.
type Table struct {
	entries map[string]Nexthop
}

// Lookup returns the next hop for a recipient domain, if the table has one:
// the exact domain first, then ".parent" keys from the nearest parent up,
// then "*".
func (t *Table) Lookup(domain string) (Nexthop, bool) {
	if t == nil {
		return Nexthop{}, false
	}
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if n, ok := t.entries[d]; ok {
		return n, true
	}
	for rest := d; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		if n, ok := t.entries["."+rest]; ok {
			return n, true
		}
	}
	n, ok := t.entries["*"]
	return n, ok
}

// Len is the number of entries.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// ErrTable is wrapped by every transport-file syntax error.
var ErrTable = errors.New("transport table")

// LoadTable reads a transport file (see ParseTable).
func LoadTable(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("transport table: %w", err)
	}
	defer f.Close()
	return ParseTable(f, path)
}

// maxTableLine bounds one line of the transport file.
const maxTableLine = 4096

// ParseTable parses transport-file lines "domain nexthop" (whitespace
// between; "#" starts a comment line; blank lines are ignored). A key is
// a domain, ".domain" or "*"; the next hop is written as in ParseNexthop.
// Errors name name:line.
func ParseTable(r io.Reader, name string) (*Table, error) {
	t := &Table{entries: map[string]Nexthop{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxTableLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: %w: want \"domain nexthop\", got %d fields", name, line, ErrTable, len(fields))
		}
		key := strings.ToLower(strings.TrimSuffix(fields[0], "."))
		if !validKey(key) {
			return nil, fmt.Errorf("%s:%d: %w: bad domain %q", name, line, ErrTable, fields[0])
		}
		n, err := ParseNexthop(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %w", name, line, ErrTable, err)
		}
		if _, dup := t.entries[key]; dup {
			return nil, fmt.Errorf("%s:%d: %w: %q listed twice", name, line, ErrTable, key)
		}
		t.entries[key] = n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w: %w", name, line+1, ErrTable, err)
	}
	return t, nil
}

func validKey(key string) bool {
	if key == "*" {
		return true
	}
	if strings.HasPrefix(key, "[") && strings.HasSuffix(key, "]") {
		return net.ParseIP(key[1:len(key)-1]) != nil // an address literal domain
	}
	key = strings.TrimPrefix(key, ".")
	return net.ParseIP(key) == nil && validHost(key)
}
