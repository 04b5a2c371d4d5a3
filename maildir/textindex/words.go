package textindex

import "bytes"

// MaxWord is the longest word the index keeps. A message with a longer
// word (a blob of base64 or hex in a text part) is marked "overflow" for
// that field and is a candidate for every query on it, so no match is
// ever lost. URLs and signatures are cut into words at their punctuation.
const MaxWord = 256

// isWordByte reports an octet of a word: ASCII letters and digits, and
// every octet of a non-ASCII UTF-8 sequence (or of invalid text). Words
// are cut on folded text, so the same rule holds for the index and for a
// query.
func isWordByte(c byte) bool { return wordBytes[c] }

var wordBytes = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x80 || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || ('A' <= c && c <= 'Z')
	}
	return t
}()

// wordSplitter cuts a stream of folded text into words, a word cut by a
// chunk boundary being joined again.
type wordSplitter struct {
	word     []byte
	overflow bool // a word longer than MaxWord was seen
	long     bool // the current word is already too long
	add      func(word []byte)
}

func (s *wordSplitter) write(b []byte) {
	for len(b) > 0 {
		if !isWordByte(b[0]) {
			s.end()
			i := 1
			for i < len(b) && !isWordByte(b[i]) {
				i++
			}
			b = b[i:]
			continue
		}
		i := 1
		for i < len(b) && isWordByte(b[i]) {
			i++
		}
		switch {
		case s.long:
		case len(s.word)+i > MaxWord:
			s.long, s.word = true, s.word[:0]
		default:
			s.word = append(s.word, b[:i]...)
		}
		b = b[i:]
	}
}

// end finishes the current word (at a separator or at the end of text).
func (s *wordSplitter) end() {
	if s.long {
		s.overflow = true
	} else if len(s.word) > 0 {
		s.add(s.word)
	}
	s.word, s.long = s.word[:0], false
}

// runKind is how a word of a query relates to the words of a text that
// holds the query as a substring.
type runKind uint8

const (
	runContains runKind = iota // the query is one word: inside a text word
	runSuffix                  // the query's first word: a text word ends with it
	runPrefix                  // the query's last word: a text word starts with it
	runExact                   // a word inside the query: a whole text word
)

type queryRun struct {
	word []byte
	kind runKind
}

// planQuery cuts a folded query into its words. If the query occurs in a
// text, every word of it lies in a text word as its kind says: a word with
// a separator on both sides in the query has one in the text too. No
// words (a query of separators only, or empty) means every message is a
// candidate.
func planQuery(q []byte) []queryRun {
	var runs []queryRun
	for i := 0; i < len(q); {
		if !isWordByte(q[i]) {
			i++
			continue
		}
		j := i
		for j < len(q) && isWordByte(q[j]) {
			j++
		}
		left, right := i > 0, j < len(q) // a separator on that side
		kind := runContains
		switch {
		case left && right:
			kind = runExact
		case right:
			kind = runSuffix
		case left:
			kind = runPrefix
		}
		runs = append(runs, queryRun{word: q[i:j], kind: kind})
		i = j
	}
	return runs
}

// matches reports whether a text word can hold the run.
func (r queryRun) matches(term []byte) bool {
	switch r.kind {
	case runExact:
		return bytes.Equal(term, r.word)
	case runSuffix:
		return bytes.HasSuffix(term, r.word)
	case runPrefix:
		return bytes.HasPrefix(term, r.word)
	}
	return bytes.Contains(term, r.word)
}

// Matcher finds a folded needle in a stream of folded text, keeping
// len(needle)-1 octets between chunks, so its memory is bounded.
type Matcher struct {
	needle []byte
	tail   []byte
	found  bool
}

// NewMatcher returns a Matcher of the needle, which must be folded.
func NewMatcher(needle []byte) *Matcher {
	return &Matcher{needle: needle, tail: make([]byte, 0, 2*len(needle)), found: len(needle) == 0}
}

// Reset makes the Matcher ready for another text.
func (m *Matcher) Reset() {
	m.tail, m.found = m.tail[:0], len(m.needle) == 0
}

// Found reports whether the needle was seen.
func (m *Matcher) Found() bool { return m.found }

// Write feeds text; it never fails.
func (m *Matcher) Write(b []byte) error {
	if m.found {
		return nil
	}
	k := len(m.needle) - 1
	if len(m.tail) > 0 {
		// A match across the boundary starts in tail.
		head := b[:min(len(b), k)]
		m.tail = append(m.tail, head...)
		if bytes.Contains(m.tail, m.needle) {
			m.found = true
			return nil
		}
		m.tail = m.tail[:len(m.tail)-len(head)]
	}
	if bytes.Contains(b, m.needle) {
		m.found = true
		return nil
	}
	// Keep the last k octets of tail+b.
	if len(b) >= k {
		m.tail = append(m.tail[:0], b[len(b)-k:]...)
	} else {
		m.tail = append(m.tail, b...)
		if len(m.tail) > k {
			m.tail = m.tail[:copy(m.tail, m.tail[len(m.tail)-k:])]
		}
	}
	return nil
}
