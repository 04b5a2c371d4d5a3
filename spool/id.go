package spool

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ID names one message in the spool: its directory under queue/, its file
// under maildrop/, and the msgid= of every log line about it.
type ID string

// idAlphabet is Crockford's base32 in lower case: no i, l, o or u, and in
// ASCII order, so that the string order of ids is their numeric order.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

const (
	idTimeChars = 11 // 55 bits of microseconds since 1970: until 3111
	idRandChars = 9  // 45 random bits
	// IDLength is the length of every ID.
	IDLength = idTimeChars + idRandChars
)

// ErrBadID is wrapped by the errors of ParseID.
var ErrBadID = errors.New("spool: malformed queue id")

// idDecode maps a byte to its base32 value, or 0xff.
var idDecode = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(idAlphabet); i++ {
		t[idAlphabet[i]] = byte(i)
	}
	return t
}()

// idClock keeps this process's ids strictly increasing: a time prefix is
// never reused, even when the clock stands still or steps back.
var idClock struct {
	sync.Mutex
	last int64 // microseconds of the last id made
}

// NewID returns a new queue id for a message arriving now.
func NewID() ID {
	return newIDAt(time.Now())
}

// newIDAt makes an id whose time part is t, or just after the last id this
// process made if that is later.
func newIDAt(t time.Time) ID {
	us := t.UnixMicro()
	idClock.Lock()
	if us <= idClock.last {
		us = idClock.last + 1
	}
	idClock.last = us
	idClock.Unlock()
	var rnd [8]byte
	// crypto/rand.Read never fails on Linux (it aborts the process if the
	// kernel cannot supply randomness), so there is no error to handle.
	rand.Read(rnd[:])
	return encodeID(uint64(us), binary.BigEndian.Uint64(rnd[:]))
}

// encodeID writes the time in idTimeChars and the low 45 bits of r.
func encodeID(us, r uint64) ID {
	var b [IDLength]byte
	for i := idTimeChars - 1; i >= 0; i-- {
		b[i] = idAlphabet[us&31]
		us >>= 5
	}
	for i := IDLength - 1; i >= idTimeChars; i-- {
		b[i] = idAlphabet[r&31]
		r >>= 5
	}
	return ID(b[:])
}

// ParseID checks that s is a well-formed id and returns it.
func ParseID(s string) (ID, error) {
	if len(s) != IDLength {
		return "", fmt.Errorf("%w: %q: length %d, want %d", ErrBadID, s, len(s), IDLength)
	}
	for i := 0; i < len(s); i++ {
		if idDecode[s[i]] == 0xff {
			return "", fmt.Errorf("%w: %q: character %d", ErrBadID, s, i+1)
		}
	}
	return ID(s), nil
}

// Time returns the time encoded in a well-formed id (to the microsecond):
// when the message arrived, give or take the microseconds NewID stepped.
func (id ID) Time() time.Time {
	var us uint64
	for i := 0; i < idTimeChars && i < len(id); i++ {
		us = us<<5 | uint64(idDecode[id[i]]&31)
	}
	return time.UnixMicro(int64(us)).UTC()
}

// String returns the id itself.
func (id ID) String() string { return string(id) }
