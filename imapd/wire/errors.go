package wire

import (
	"errors"
	"fmt"
)

// ErrorClass says what kind of fault an *Error reports.
type ErrorClass uint8

const (
	// ClassSyntax: the command does not follow the grammar. Answer BAD.
	ClassSyntax ErrorClass = iota + 1
	// ClassTooBig: a Limits bound was exceeded. Answer BAD [TOOBIG].
	ClassTooBig
	// ClassRefused: Options.Continue refused a literal.
	ClassRefused
	// ClassEmpty: the client sent an empty line. Sessions may ignore it.
	ClassEmpty
)

func (c ErrorClass) String() string {
	switch c {
	case ClassSyntax:
		return "syntax"
	case ClassTooBig:
		return "toobig"
	case ClassRefused:
		return "refused"
	case ClassEmpty:
		return "empty"
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// Error is a protocol error: the session answers it with a status response
// (Writer.WriteError) and, unless Fatal, goes on with the next command.
type Error struct {
	Class ErrorClass
	// Tag is the command's tag, or "" when the line had no usable tag and
	// the answer is "* BAD".
	Tag string
	// Status is "BAD" or "NO"; "" means BAD.
	Status string
	// Code is the response code without brackets ("TOOBIG", "PARSE"), or "".
	Code string
	Text string
	// Fatal: the stream position is lost; send BYE and close.
	Fatal bool
	// Err is the underlying cause, if any, for errors.Is.
	Err error
}

func (e *Error) Error() string {
	s := e.Class.String() + ": " + e.Text
	if e.Fatal {
		s += " (fatal)"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// StatusWord returns the status the session should answer with.
func (e *Error) StatusWord() string {
	if e.Status == "" {
		return "BAD"
	}
	return e.Status
}

// Sentinel causes, reachable with errors.Is through an *Error.
var (
	ErrLineTooLong    = errors.New("line too long")
	ErrCommandTooLong = errors.New("command too long")
	ErrLiteralTooBig  = errors.New("literal too big")
	ErrTooDeep        = errors.New("lists nested too deep")
	ErrTooManyTokens  = errors.New("too many tokens")
	ErrNonSyncLiteral = errors.New("non-synchronising literal not allowed")
)

func syntaxErr(format string, args ...any) *Error {
	return &Error{Class: ClassSyntax, Text: fmt.Sprintf(format, args...)}
}

func tooBig(cause error, text string) *Error {
	return &Error{Class: ClassTooBig, Code: "TOOBIG", Text: text, Err: cause}
}

// AsError returns err as an *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
