package wire

// Limits bounds everything a client can make the Reader hold or do.
// A zero field takes its value from DefaultLimits.
type Limits struct {
	// MaxLine bounds one line of command text (between literals), CRLF
	// included.
	MaxLine int
	// MaxCommand bounds a whole command: its lines plus its buffered
	// literals (streamed APPEND messages are not counted).
	MaxCommand int
	// MaxLiteral bounds one buffered literal (a string argument).
	MaxLiteral int64
	// MaxMessage bounds one streamed APPEND message literal; it is the
	// APPENDLIMIT the server advertises (RFC 7889).
	MaxMessage int64
	// MaxDepth bounds the nesting of parenthesised lists.
	MaxDepth int
	// MaxTokens bounds the number of tokens in a command.
	MaxTokens int
	// MaxDiscard bounds the octets the Reader throws away to resynchronise
	// after an error (the rest of a long line, a refused non-synchronising
	// literal). Beyond it the error is fatal. Keep it above MaxMessage so
	// that a refused non-synchronising APPEND costs only the command.
	MaxDiscard int64
}

// DefaultLimits are generous for real clients and small for attackers.
var DefaultLimits = Limits{
	MaxLine:    64 << 10,
	MaxCommand: 1 << 20,
	MaxLiteral: 256 << 10,
	MaxMessage: 50 << 20,
	MaxDepth:   32,
	MaxTokens:  100000,
	MaxDiscard: 64 << 20,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxLine > 0 {
		d.MaxLine = l.MaxLine
	}
	if l.MaxCommand > 0 {
		d.MaxCommand = l.MaxCommand
	}
	if l.MaxLiteral > 0 {
		d.MaxLiteral = l.MaxLiteral
	}
	if l.MaxMessage > 0 {
		d.MaxMessage = l.MaxMessage
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxTokens > 0 {
		d.MaxTokens = l.MaxTokens
	}
	if l.MaxDiscard > 0 {
		d.MaxDiscard = l.MaxDiscard
	}
	return d
}

// LiteralMinusMax is the largest non-synchronising literal a LITERAL-
// server accepts (RFC 7888 §5).
const LiteralMinusMax = 4096
