package spool

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// The first line of a state file names its format version. Version 2
// adds the warned= parameter (a delay DSN was sent for the recipient);
// MarshalText-like output uses version 1 whenever no recipient has it, so
// files stay readable by version 1 readers unless they must not be.
const (
	stateMagic  = "mailroom-state 1"
	stateMagic2 = "mailroom-state 2"
)

// Status is where one recipient's delivery stands.
type Status string

const (
	// StatusPending: not tried yet (or tried by a consumer that crashed
	// before recording the outcome).
	StatusPending Status = "pending"
	// StatusDeferred: failed temporarily; try again at Next.
	StatusDeferred Status = "deferred"
	// StatusDelivered: done; never tried again.
	StatusDelivered Status = "delivered"
	// StatusFailed: failed permanently (and bounced if the sender
	// asked); never tried again.
	StatusFailed Status = "failed"
)

// Final reports whether nothing more will be done for the recipient.
func (s Status) Final() bool { return s == StatusDelivered || s == StatusFailed }

// RcptState is the state of one envelope recipient.
type RcptState struct {
	Status   Status
	Attempts int       // delivery attempts so far
	Last     time.Time // the last attempt; zero if none
	Next     time.Time // StatusDeferred: not before this time
	// Warned is when a delay DSN (RFC 3464 Action: delayed) was committed
	// for the recipient, so that it is sent once; zero if never. Only
	// version 2 files carry it.
	Warned time.Time
	Reason string // the last reply or error; kept to maxReason bytes
}

// maxReason bounds a stored reason: a peer's multi-line reply can be long,
// and a state file must stay within maxLine per line even when escaped.
const maxReason = 1000

// clip shortens s to at most n bytes, at a UTF-8 character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (r *RcptState) validate() error {
	switch r.Status {
	case StatusPending, StatusDelivered, StatusFailed:
		if !r.Next.IsZero() {
			return fmt.Errorf("%s recipient with a next try", r.Status)
		}
	case StatusDeferred:
		if r.Next.IsZero() {
			return fmt.Errorf("deferred recipient without a next try")
		}
	default:
		return fmt.Errorf("status %q", r.Status)
	}
	if r.Attempts < 0 {
		return fmt.Errorf("negative attempts")
	}
	return nil
}

// marshalStates writes a state file for len(states) recipients.
func marshalStates(states []RcptState) ([]byte, error) {
	var b bytes.Buffer
	magic := stateMagic
	for _, s := range states {
		if !s.Warned.IsZero() {
			magic = stateMagic2
		}
	}
	b.WriteString(magic + "\n")
	for i, s := range states {
		if err := s.validate(); err != nil {
			return nil, fmt.Errorf("spool: state of recipient %d: %w", i+1, err)
		}
		line := fmt.Sprintf("rcpt %d %s attempts=%d", i, s.Status, s.Attempts)
		if !s.Last.IsZero() {
			line += " last=" + formatTime(s.Last)
		}
		if !s.Next.IsZero() {
			line += " next=" + formatTime(s.Next)
		}
		if !s.Warned.IsZero() {
			line += " warned=" + formatTime(s.Warned)
		}
		if s.Reason != "" {
			line += " reason=" + encodeValue(clip(s.Reason, maxReason))
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes(), nil
}

// parseStates reads a state file that must describe exactly n recipients.
func parseStates(data []byte, n int) ([]RcptState, error) {
	lines, err := splitLines(data)
	if err != nil {
		return nil, err
	}
	version := 0
	switch lines[0] {
	case stateMagic:
		version = 1
	case stateMagic2:
		version = 2
	default:
		return nil, fmt.Errorf("%w: first line %q, want %q or %q", ErrSyntax, truncate(lines[0]), stateMagic, stateMagic2)
	}
	if len(lines)-1 != n {
		return nil, fmt.Errorf("%w: state has %d recipients, envelope %d", ErrSyntax, len(lines)-1, n)
	}
	states := make([]RcptState, n)
	warned := false
	for i, l := range lines[1:] {
		if err := parseStateLine(l, i, &states[i]); err != nil {
			return nil, fmt.Errorf("state line %d: %w", i+2, err)
		}
		warned = warned || !states[i].Warned.IsZero()
	}
	// One spelling per content: version 2 exactly when something needs it.
	if warned != (version == 2) {
		return nil, fmt.Errorf("%w: version 2 exactly when some line has warned=", ErrSyntax)
	}
	return states, nil
}

// parseStateLine reads "rcpt <i> <status> attempts=<n> [last=] [next=] [reason=]".
func parseStateLine(l string, i int, s *RcptState) error {
	f, err := splitFields(l)
	if err != nil {
		return err
	}
	if len(f) < 4 || f[0] != "rcpt" || f[1] != strconv.Itoa(i) {
		return fmt.Errorf("%w: want \"rcpt %d <status> attempts=N\"", ErrSyntax, i)
	}
	s.Status = Status(f[2])
	name, v, err := splitParam(f[3])
	if err != nil || name != "attempts" {
		return fmt.Errorf("%w: want attempts=N", ErrSyntax)
	}
	n, err := parseDecimal(v, 31)
	if err != nil {
		return err
	}
	s.Attempts = int(n)
	order := []string{"last", "next", "warned", "reason"}
	for _, param := range f[4:] {
		name, v, err := splitParam(param)
		if err != nil {
			return err
		}
		for len(order) > 0 && order[0] != name {
			order = order[1:]
		}
		if len(order) == 0 {
			return fmt.Errorf("%w: parameter %q unknown, repeated or out of order", ErrSyntax, truncate(name))
		}
		order = order[1:]
		switch name {
		case "last":
			s.Last, err = parseTime(v)
		case "next":
			s.Next, err = parseTime(v)
		case "warned":
			s.Warned, err = parseTime(v)
		case "reason":
			s.Reason, err = decodeValue(v)
		}
		if err != nil {
			return err
		}
	}
	if err := s.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return nil
}

// pendingStates is the state of a message with no state file.
func pendingStates(n int) []RcptState {
	states := make([]RcptState, n)
	for i := range states {
		states[i].Status = StatusPending
	}
	return states
}
