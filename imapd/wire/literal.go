package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// literal reads a literal whose "{" (after any "~") is at r.pos:
// literal = "{" number64 ["+"] "}" CRLF *CHAR8 (RFC 9051 §9, RFC 7888 §3),
// literal8 = "~{" number64 "}" CRLF *OCTET (RFC 3516 §4.2).
func (r *Reader) literal(depth int, binary bool) (Token, error) {
	header := r.line[r.pos:]
	size, sync, _, ok := trailingLiteral(header)
	if !ok || bytes.LastIndexByte(header, '{') != 0 {
		return Token{}, syntaxErr("invalid literal header; it must end the line")
	}
	if size < 0 {
		// Overflowing count: the data of a non-synchronising literal
		// cannot be skipped.
		e := tooBig(ErrLiteralTooBig, "literal size out of range")
		e.Fatal = !sync
		return Token{}, e
	}
	r.pos = len(r.line)
	info := LiteralInfo{
		Tag: r.tag, Command: r.name, Size: size, Sync: sync, Binary: binary,
		// An APPEND message is a top-level literal after the mailbox
		// name (RFC 9051 §6.3.12, RFC 3502 for the later ones); a
		// literal inside a list (CATENATE) is an ordinary string.
		Message: r.name == "APPEND" && depth == 0 && (r.appendMsg || r.topArgs >= 1),
	}
	if err := r.admitLiteral(info); err != nil {
		return Token{}, err
	}
	tok := Token{Kind: KindLiteral, Sync: sync, Binary: binary}
	if info.Message {
		r.pending = &LiteralReader{br: r.br, size: size, left: size, binary: binary}
		return tok, nil
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r.br, data); err != nil {
		return Token{}, fmt.Errorf("wire: reading %d-octet literal: %w", size, err)
	}
	r.size += int(size)
	// The data is consumed: move to the rest of the command before any
	// error, so that skipping resumes at the right place.
	if err := r.readLine(); err != nil {
		return Token{}, err
	}
	if !binary && bytes.IndexByte(data, 0) >= 0 {
		// RFC 9051 §9: literal = ... *CHAR8, and CHAR8 excludes NUL.
		return Token{}, syntaxErr("NUL in literal; use literal8")
	}
	tok.Value = string(data)
	return tok, nil
}

// admitLiteral applies the non-synchronising rules, Limits, Check and
// Continue to a literal before any of its data is read.
func (r *Reader) admitLiteral(info LiteralInfo) error {
	if !info.Sync {
		switch r.opts.NonSync {
		case NoNonSync:
			return &Error{Class: ClassSyntax, Text: "non-synchronising literals are not supported", Err: ErrNonSyncLiteral}
		case LiteralMinus:
			// RFC 7888 §5: LITERAL- takes {n+} only up to 4096 octets;
			// a larger one is rejected with BAD [TOOBIG].
			if info.Size > LiteralMinusMax {
				return &Error{Class: ClassTooBig, Code: "TOOBIG", Text: "non-synchronising literal over 4096 octets", Err: ErrNonSyncLiteral}
			}
		}
	}
	if info.Message {
		if info.Size > r.lim.MaxMessage {
			return tooBig(ErrLiteralTooBig, "message too big")
		}
	} else {
		if info.Size > r.lim.MaxLiteral {
			return tooBig(ErrLiteralTooBig, "literal too big")
		}
		if int64(r.size)+info.Size > int64(r.lim.MaxCommand) {
			return tooBig(ErrCommandTooLong, "command too long")
		}
	}
	if r.opts.Check != nil {
		if err := r.opts.Check(info); err != nil {
			return refusal(err)
		}
	}
	if info.Sync {
		if r.opts.Continue == nil {
			return &Error{Class: ClassRefused, Text: "literals not accepted"}
		}
		if err := r.opts.Continue(info); err != nil {
			return refusal(err)
		}
	}
	return nil
}

// refusal keeps a callback's *Error as a refusal; any other error is the
// connection failing and goes up as it is.
func refusal(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return fmt.Errorf("wire: literal callback: %w", err)
	}
	c := *e
	c.Class = ClassRefused
	return &c
}

// trailingLiteral reports whether line ends in a literal header
// ["~"] "{" digits ["+"] "}" and its size; size is -1 when the count
// overflows an int64.
func trailingLiteral(line []byte) (size int64, sync, binary, ok bool) {
	n := len(line)
	if n < 3 || line[n-1] != '}' {
		return 0, false, false, false
	}
	end := n - 1
	sync = true
	if line[end-1] == '+' {
		sync = false
		end--
	}
	start := bytes.LastIndexByte(line[:end], '{')
	if start < 0 || start+1 == end {
		return 0, false, false, false
	}
	digits := string(line[start+1 : end])
	if !isDigits(digits) {
		return 0, false, false, false
	}
	binary = start > 0 && line[start-1] == '~'
	v, vok := parseUint(digits)
	if !vok || v > 1<<63-1 {
		return -1, sync, binary, true
	}
	return int64(v), sync, binary, true
}

// finishPending discards what is left of a pending APPEND message and
// reads the line that follows it.
func (r *Reader) finishPending() error {
	p := r.pending
	r.pending = nil
	if p.left > 0 {
		if _, err := io.CopyN(io.Discard, p, p.left); err != nil {
			return fmt.Errorf("wire: skipping message literal: %w", err)
		}
	}
	return r.readLine()
}

// LiteralReader streams one APPEND message literal from the connection.
// It returns io.EOF after exactly Size octets.
type LiteralReader struct {
	br     *bufio.Reader
	size   int64
	left   int64
	binary bool
	nul    bool
}

// Size is the octet count the client announced.
func (l *LiteralReader) Size() int64 { return l.size }

// Binary reports a literal8 (~{n}, RFC 3516): the data may hold NUL and
// need not be 7-bit clean.
func (l *LiteralReader) Binary() bool { return l.binary }

// SawNUL reports whether the data read so far held a NUL, which a
// non-binary literal must not (RFC 9051 §9 CHAR8); the session should
// refuse such an APPEND once the data is read.
func (l *LiteralReader) SawNUL() bool { return l.nul }

func (l *LiteralReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.br.Read(p)
	l.left -= int64(n)
	if !l.binary && bytes.IndexByte(p[:n], 0) >= 0 {
		l.nul = true
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func validUTF8(s string) bool { return utf8.ValidString(s) }
