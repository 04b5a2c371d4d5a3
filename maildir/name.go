package maildir

import (
	"fmt"
	"strconv"
	"strings"
)

// Name is a Maildir file name split into the parts mailroom uses.
//
//	<base>[:2,<flags><keywords>[,<other>]]
//	base = <secs>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<crlf-size>
//
// The base (everything before the first ':') identifies a message for its
// whole life: flag changes rename the file but keep the base, and
// dovecot-uidlist matches records to files by base, as Dovecot does.
type Name struct {
	Base     string   // the name up to (not including) the first ':'
	HasInfo  bool     // the name carries a ":2," info part
	Flags    Flags    // standard flags from the info part
	Keywords Keywords // keyword slots a–z from the info part
	// Other holds any info characters mailroom does not model (another
	// experimental info version, unknown letters, or the text after a second
	// comma), kept verbatim so a rename never loses what another program wrote.
	Other string
}

// ParseName splits a Maildir file name. It never fails on a name another
// program could have written: unknown info text lands in Other. It returns an
// error only for names no Maildir may contain (empty, starting with '.', or
// holding '/' or NUL).
func ParseName(s string) (Name, error) {
	if s == "" || s[0] == '.' || strings.ContainsAny(s, "/\x00") {
		return Name{}, fmt.Errorf("maildir: invalid file name %q", s)
	}
	base, info, ok := strings.Cut(s, ":")
	n := Name{Base: base}
	if !ok {
		return n, nil
	}
	if !strings.HasPrefix(info, "2,") {
		// maildir(5): ":1," is experimental; keep it untouched.
		n.Other = ":" + info
		return n, nil
	}
	n.HasInfo = true
	letters, rest, more := strings.Cut(info[2:], ",")
	var other strings.Builder
	for i := 0; i < len(letters); i++ {
		c := letters[i]
		switch {
		case flagForLetter(c) != 0:
			n.Flags |= flagForLetter(c)
		case c >= 'a' && c <= 'z':
			n.Keywords = n.Keywords.With(int(c - 'a'))
		default:
			other.WriteByte(c)
		}
	}
	n.Other = other.String()
	if more {
		n.Other += "," + rest
	}
	return n, nil
}

// String formats the name: flags and keywords in ASCII order, as maildir(5)
// requires. A name without info part gets one only if flags or keywords are
// set, so a message in new/ keeps its bare name.
func (n Name) String() string {
	if !n.HasInfo && strings.HasPrefix(n.Other, ":") {
		// An info part other than ":2," (e.g. experimental ":1,"), kept
		// verbatim. With HasInfo set, a leading ':' in Other is only an
		// unknown letter of a ":2," info.
		return n.Base + n.Other
	}
	letters := n.Flags.String() + n.Keywords.String()
	if !n.HasInfo && letters == "" && n.Other == "" {
		return n.Base
	}
	// Unknown letters in Other follow ours in the same group; a tail that
	// starts with ',' is the part after a second comma.
	return n.Base + ":2," + letters + n.Other
}

// Size returns the ",S=" field of the base (the size on disk), if present.
func (n Name) Size() (int64, bool) { return baseField(n.Base, "S") }

// VSize returns the ",W=" field of the base (the size with CRLF line
// endings, IMAP's RFC822.SIZE), if present.
func (n Name) VSize() (int64, bool) { return baseField(n.Base, "W") }

// baseField finds ",<key>=<digits>" in the base.
func baseField(base, key string) (int64, bool) {
	for _, f := range strings.Split(base, ",")[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != key {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}
