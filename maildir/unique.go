package maildir

// Unique names, maildir(5) and Courier's maildir(5) extension fields:
//
//	<secs>.M<usec>P<pid>Q<n>.<host>              while the file is in tmp/
//	<secs>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<vsize>   once delivered
//
// Uniqueness rests on the name alone (no stat-and-sleep dance, which Dovecot
// rightly calls pointless): the time to the microsecond, the pid, and Q, a
// counter of names made by this process, so two deliveries in the same
// microsecond from one process (an imapd serving many sessions, a deliver
// fanning out) still differ. The host keeps names from two machines sharing
// the storage apart.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// uniqueCounter is the Q field: names made by this process, from 1.
var uniqueCounter atomic.Uint64

// UniqueBase returns a new unique base name
// "<secs>.M<usec>P<pid>Q<n>.<host>" for a message created at t. host is
// escaped with EscapeHost. Safe for concurrent use.
func UniqueBase(t time.Time, host string) string {
	n := uniqueCounter.Add(1)
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", t.Unix(), t.Nanosecond()/1000,
		os.Getpid(), n, EscapeHost(host))
}

// WithSizes appends the ",S=<size>,W=<vsize>" fields to a base name.
// size is the number of bytes on disk (Maildir++ quota uses it), vsize the
// size with every line ending counted as CRLF (IMAP RFC822.SIZE, RFC 3501
// §6.4.5), so that neither has to be computed again by opening the file.
func WithSizes(base string, size, vsize int64) string {
	return base + ",S=" + strconv.FormatInt(size, 10) + ",W=" + strconv.FormatInt(vsize, 10)
}

// EscapeHost makes a host name safe inside a unique name: maildir(5) writes
// '/' as "\057" and ':' as "\072" (octal escapes). A ',' would start an
// extension field and is written "\054" for the same reason; an empty host
// becomes "localhost".
func EscapeHost(host string) string {
	if host == "" {
		return "localhost"
	}
	if !strings.ContainsAny(host, "/:,") {
		return host
	}
	var b strings.Builder
	for i := 0; i < len(host); i++ {
		switch c := host[i]; c {
		case '/':
			b.WriteString(`\057`)
		case ':':
			b.WriteString(`\072`)
		case ',':
			b.WriteString(`\054`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// SizeCounter is an io.Writer that counts what passes through it: Size is
// the byte count, VSize the byte count with every bare LF counted as CRLF.
// A CR followed by LF is already a CRLF; a lone CR is counted as it is. The
// zero value is ready to use; it keeps the last byte seen, so a CRLF split
// across two writes is counted once.
type SizeCounter struct {
	Size, VSize int64
	lastCR      bool
}

// Write counts p; it never fails.
func (c *SizeCounter) Write(p []byte) (int, error) {
	bareLF := 0
	prevCR := c.lastCR
	for _, b := range p {
		if b == '\n' && !prevCR {
			bareLF++
		}
		prevCR = b == '\r'
	}
	if len(p) > 0 {
		c.lastCR = prevCR
	}
	c.Size += int64(len(p))
	c.VSize += int64(len(p) + bareLF)
	return len(p), nil
}
