package maildir

import "strings"

// Flags is the set of standard Maildir flags carried in the ":2," info part
// of a file name. In the name they are written as upper-case letters in
// ASCII order (maildir(5)): D F P R S T.
type Flags uint8

// The standard flags, with the IMAP system flag each one stands for.
const (
	FlagDraft   Flags = 1 << iota // D: \Draft
	FlagFlagged                   // F: \Flagged
	FlagPassed                    // P: forwarded, resent or bounced (no IMAP flag)
	FlagReplied                   // R: \Answered
	FlagSeen                      // S: \Seen
	FlagTrashed                   // T: \Deleted
)

// flagLetters is indexed by bit position; it is in ASCII order, which is the
// order the letters must appear in a file name.
const flagLetters = "DFPRST"

// String returns the flag letters in ASCII order, e.g. "FRS".
func (f Flags) String() string {
	var b strings.Builder
	for i := 0; i < len(flagLetters); i++ {
		if f&(1<<i) != 0 {
			b.WriteByte(flagLetters[i])
		}
	}
	return b.String()
}

// flagForLetter returns the flag for an upper-case letter, or 0.
func flagForLetter(c byte) Flags {
	if i := strings.IndexByte(flagLetters, c); i >= 0 {
		return 1 << i
	}
	return 0
}

// Keywords is a set of keyword slots a–z (bit 0 is 'a'). Which keyword a slot
// names is recorded in the Maildir's dovecot-keywords file: slot n is line
// "n name" there.
type Keywords uint32

// MaxKeywords is the number of keyword slots a file name can carry.
const MaxKeywords = 26

// Has reports whether slot n is set.
func (k Keywords) Has(n int) bool { return n >= 0 && n < MaxKeywords && k&(1<<n) != 0 }

// With returns k with slot n set; a slot outside 0–25 leaves k unchanged.
func (k Keywords) With(n int) Keywords {
	if n < 0 || n >= MaxKeywords {
		return k
	}
	return k | 1<<n
}

// Without returns k with slot n cleared; a slot outside 0–25 leaves k
// unchanged.
func (k Keywords) Without(n int) Keywords {
	if n < 0 || n >= MaxKeywords {
		return k
	}
	return k &^ (1 << n)
}

// String returns the slot letters in ASCII order, e.g. "ac".
func (k Keywords) String() string {
	var b strings.Builder
	for i := 0; i < MaxKeywords; i++ {
		if k&(1<<i) != 0 {
			b.WriteByte(byte('a' + i))
		}
	}
	return b.String()
}
