package deliver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// headerScanLimit bounds how much of the message is inspected before
// delivery (the header block is looked at only within it) and so the memory
// a delivery needs, whatever the message size.
const headerScanLimit = 64 << 10

// Bad-data errors (exit 65). They leave nothing behind: inspection happens
// before any file is created, and the guard aborts a stream that turns bad
// later, which makes the engine remove its tmp/ file.
var (
	errEmpty     = errors.New("empty message")
	errNoHeaders = errors.New("message has no header section")
	errNUL       = errors.New("message contains NUL bytes")
	errFromLine  = errors.New("mbox From_ line too long")
	errTooBig    = errors.New("message exceeds max_message_size")
)

// envelope is what inspection learns about a message from its first bytes.
type envelope struct {
	fromLine       bool   // a leading mbox "From " line was dropped
	fromLineSender string // its sender, "" if none or MAILER-DAEMON
	eol            string // "\r\n" when the first header line ends so, else "\n"

	// returnPathFirst: the first header field is Return-Path, as the MTA
	// writes it when it prepends its trace block (Postfix mailbox_command);
	// then deliver adds no second one.
	returnPathFirst bool
	// mtaDeliveredTo is the Delivered-To of that leading trace block
	// (Return-Path, X-Original-To, Delivered-To), lower-case: the MTA's mark
	// for this very delivery, not a loop.
	mtaDeliveredTo string
	// deliveredTo lists every Delivered-To address in the inspected header
	// block, lower-case, the MTA's own included.
	deliveredTo []string
}

// inspect drops a leading From_ line from br and checks the start of the
// message without consuming it: not empty, a header section first, no NUL
// in the first headerScanLimit bytes. br must buffer at least
// headerScanLimit bytes.
func inspect(br *bufio.Reader) (envelope, error) {
	var env envelope
	if err := dropFromLine(br, &env); err != nil {
		return env, err
	}
	head, err := br.Peek(headerScanLimit)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return env, fmt.Errorf("reading message: %w", err)
	}
	if len(head) == 0 {
		return env, errEmpty
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return env, errNUL
	}
	return env, scanHeaders(head, len(head) < headerScanLimit, &env)
}

// dropFromLine consumes an mbox "From sender date" envelope line
// (maildir(5): Maildir messages carry none) and keeps its sender.
func dropFromLine(br *bufio.Reader, env *envelope) error {
	start, err := br.Peek(5)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading message: %w", err)
	}
	if string(start) != "From " {
		return nil
	}
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return errFromLine
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("reading message: %w", err)
	}
	env.fromLine = true
	if f := strings.Fields(string(line)); len(f) >= 2 && !strings.EqualFold(f[1], "MAILER-DAEMON") {
		env.fromLineSender = f[1]
	}
	return nil
}

// scanHeaders walks the header fields within head (RFC 5322 §2.2: a field
// is a name of printable ASCII other than ':', a colon, and a body that
// continues on lines starting with white space), noting Return-Path and
// Delivered-To. A header block longer than head is scanned as far as head
// goes; whole is false when the message goes on beyond head, and then a
// field that reaches the end of head, which may be cut short or continue on
// a line not seen, is not read (a cut "Delivered-To: a@b.example" must not
// read as a@b, a loop).
func scanHeaders(head []byte, whole bool, env *envelope) error {
	lines := splitLines(head)
	if len(lines) == 0 || !isFieldStart(lines[0]) {
		return errNoHeaders
	}
	if bytes.HasSuffix(lines[0], []byte("\r\n")) {
		env.eol = "\r\n"
	} else {
		env.eol = "\n"
	}
	// The trace block is the run of Return-Path, X-Original-To and
	// Delivered-To fields at the very top, and only when Return-Path opens
	// it: that is what an MTA prepends for the delivery at hand.
	inTraceBlock := false
	for i, n := 0, 0; i < len(lines) && isFieldStart(lines[i]); n++ {
		end := i + 1
		for end < len(lines) && isContinuation(lines[end]) {
			end++
		}
		if end == len(lines) && !whole {
			break
		}
		field := lines[i:end]
		i = end
		switch name := fieldName(field[0]); {
		case n == 0 && name == "return-path":
			env.returnPathFirst, inTraceBlock = true, true
		case name == "delivered-to":
			addr := normalizeAddr(unfoldValue(field))
			env.deliveredTo = append(env.deliveredTo, addr)
			if inTraceBlock && env.mtaDeliveredTo == "" {
				env.mtaDeliveredTo = addr
			}
		case name == "x-original-to":
		default:
			inTraceBlock = false
		}
	}
	return nil
}

// isContinuation reports whether line continues the field above it
// (RFC 5322 §2.2.3 folding: it starts with white space).
func isContinuation(line []byte) bool {
	return len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
}

// fieldName is the lower-case name of the field that line starts.
func fieldName(line []byte) string {
	name, _, _ := bytes.Cut(line, []byte(":"))
	return strings.ToLower(string(bytes.TrimSpace(name)))
}

// unfoldValue is the body of a field spread over lines, each line trimmed
// and joined by one space; built once, so a field folded many times costs
// no more than its size.
func unfoldValue(lines [][]byte) string {
	_, first, _ := bytes.Cut(lines[0], []byte(":"))
	var b strings.Builder
	b.Write(bytes.TrimSpace(first))
	for _, l := range lines[1:] {
		b.WriteByte(' ')
		b.Write(bytes.TrimSpace(l))
	}
	return b.String()
}

// splitLines cuts b after each LF; the last line may lack one.
func splitLines(b []byte) [][]byte {
	var lines [][]byte
	for len(b) > 0 {
		n := bytes.IndexByte(b, '\n') + 1
		if n == 0 {
			n = len(b)
		}
		lines = append(lines, b[:n])
		b = b[n:]
	}
	return lines
}

// isFieldStart reports whether line starts a header field: one or more
// printable US-ASCII characters other than ':' (RFC 5322 §3.6.8 ftext),
// then ':'. Obsolete white space before the colon (§4.5) is tolerated.
func isFieldStart(line []byte) bool {
	name, _, found := bytes.Cut(line, []byte(":"))
	if !found {
		return false
	}
	name = bytes.TrimRight(name, " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// normalizeAddr turns a header or command-line address into the form
// loop checks compare: angle brackets and white space dropped, lower-case
// (the whole address, as Postfix compares Delivered-To case-insensitively).
func normalizeAddr(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.ToLower(strings.TrimSpace(s))
}

// guard passes a message through, failing the stream at the first NUL byte
// or once more than max bytes went by (max 0: no limit). The engine then
// sees a read error and removes its tmp/ file, so nothing is delivered.
type guard struct {
	r   io.Reader
	n   int64
	max int64
	err error // the guard's own verdict, kept apart from I/O errors
}

func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	if bytes.IndexByte(p[:n], 0) >= 0 {
		g.err = errNUL
		return 0, g.err
	}
	g.n += int64(n)
	if g.max > 0 && g.n > g.max {
		g.err = errTooBig
		return 0, g.err
	}
	return n, err
}
