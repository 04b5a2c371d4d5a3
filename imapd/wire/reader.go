package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// NonSyncMode says which non-synchronising literal extension the server
// advertises (RFC 7888).
type NonSyncMode uint8

const (
	// LiteralPlus accepts {n+} of any size within Limits (LITERAL+).
	LiteralPlus NonSyncMode = iota
	// LiteralMinus accepts {n+} only up to 4096 octets (LITERAL-, RFC 7888 §5).
	LiteralMinus
	// NoNonSync refuses every {n+}: the server advertised neither.
	NoNonSync
)

// LiteralInfo describes a literal whose data has not been read yet.
type LiteralInfo struct {
	Tag     string
	Command string // upper-case command name
	Size    int64
	Sync    bool // {n}: the client waits for a continuation request
	Binary  bool // ~{n} (RFC 3516)
	// Message is set for an APPEND message literal, which the Reader
	// streams instead of buffering.
	Message bool
}

// Options configure a Reader.
type Options struct {
	Limits  Limits
	NonSync NonSyncMode
	// UTF8 allows UTF-8 in quoted strings (RFC 6855 §3 UTF8=ACCEPT, RFC
	// 9051). Without it a quoted string must be 7-bit.
	UTF8 bool
	// Check, if set, sees every literal that passed Limits before its data
	// is read, and may refuse it (APPENDLIMIT of a mailbox, quota) by
	// returning an error; an *Error's Status, Code and Text are kept.
	Check func(LiteralInfo) error
	// Continue is called for every accepted synchronising literal. It must
	// send a continuation request ("+ Ready") and flush it, or return an
	// error to refuse the literal, in which case the data is never read.
	// A nil Continue refuses every synchronising literal.
	Continue func(LiteralInfo) error
}

// Command is one client command.
type Command struct {
	Tag string
	// Name is the command name in upper case; for "UID FETCH" it is
	// "FETCH" and UID is true.
	Name string
	UID  bool
	Args []Token
	// Message is the pending message literal of an APPEND: read it, then
	// call Reader.NextMessage. Nil for every other command.
	Message *LiteralReader
}

// Reader reads commands. It is not safe for concurrent use.
type Reader struct {
	br   *bufio.Reader
	opts Options
	lim  Limits

	buf  []byte // backing store of line
	line []byte // current line segment without CRLF
	pos  int

	// per-command state
	tag       string
	name      string
	size      int   // octets of the command so far (lines and buffered literals)
	tokens    int   // tokens so far
	discarded int64 // octets thrown away while resynchronising
	topArgs   int   // top-level arguments so far (to spot APPEND messages)
	appendMsg bool  // every top-level literal is a message (after the first)
	pending   *LiteralReader
}

// NewReader returns a Reader reading commands from br.
func NewReader(br *bufio.Reader, opts Options) *Reader {
	return &Reader{br: br, opts: opts, lim: opts.Limits.withDefaults()}
}

// SetUTF8 switches UTF-8 quoted strings on or off (after ENABLE
// UTF8=ACCEPT or IMAP4rev2).
func (r *Reader) SetUTF8(on bool) { r.opts.UTF8 = on }

// SetNonSync changes the non-synchronising literal mode.
func (r *Reader) SetNonSync(m NonSyncMode) { r.opts.NonSync = m }

// ReadCommand reads the next command. It returns an *Error for bad input
// (see the package doc for what Fatal means) and any other error for a
// failed connection. A pending APPEND message left unread is discarded
// together with the rest of its command.
func (r *Reader) ReadCommand() (*Command, error) {
	if r.pending != nil {
		if err := r.skipRest(); err != nil {
			return nil, err
		}
	}
	r.tag, r.name, r.size, r.tokens, r.discarded, r.topArgs, r.appendMsg = "", "", 0, 0, 0, 0, false
	if err := r.readLine(); err != nil {
		return nil, r.fail(err)
	}
	if len(r.line) == 0 {
		return nil, &Error{Class: ClassEmpty, Text: "empty command line"}
	}
	cmd, err := r.readHead()
	if err != nil {
		return nil, r.fail(err)
	}
	if err := r.readArgs(cmd); err != nil {
		return nil, r.fail(err)
	}
	return cmd, nil
}

// NextMessage finishes the pending APPEND message of cmd (discarding what
// the caller left unread) and reads on: cmd.Args becomes the arguments
// before the next message literal (MULTIAPPEND, RFC 3502) and
// cmd.Message that literal, or, at the end of the command, Args holds
// what followed the last message and Message is nil.
func (r *Reader) NextMessage(cmd *Command) error {
	if r.pending == nil || cmd.Message != r.pending {
		return errors.New("wire: NextMessage without a pending message")
	}
	if err := r.finishPending(); err != nil {
		return r.fail(err)
	}
	cmd.Args, cmd.Message = nil, nil
	r.appendMsg = true
	if err := r.readArgs(cmd); err != nil {
		return r.fail(err)
	}
	return nil
}

// ReadLine reads one raw line, CRLF removed: a SASL response during
// AUTHENTICATE (RFC 9051 §6.2.2) or "DONE" ending IDLE (RFC 2177). A line
// longer than Limits.MaxLine is skipped and reported as ClassTooBig.
func (r *Reader) ReadLine() (string, error) {
	if r.pending != nil {
		if err := r.skipRest(); err != nil {
			return "", err
		}
	}
	r.tag, r.size, r.discarded = "", 0, 0
	if err := r.readLine(); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Tag = ""
		}
		return "", err
	}
	s := string(r.line)
	r.line, r.pos = nil, 0
	return s, nil
}

// fail turns a parse error into the *Error the caller sees, after
// skipping to the end of the command so the next command can be read.
func (r *Reader) fail(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		// The connection failed: nothing more to read.
		r.pending = nil
		return err
	}
	if e.Tag == "" {
		e.Tag = r.tag
	}
	if e.Fatal {
		r.pending = nil
		return e
	}
	if serr := r.skipRest(); serr != nil {
		var se *Error
		if errors.As(serr, &se) {
			// Resynchronising failed: keep the first reason, but fatal.
			e.Fatal = true
			return e
		}
		return serr
	}
	return e
}

// readHead reads "tag SP command-name" and the UID prefix.
func (r *Reader) readHead() (*Command, error) {
	end := r.pos
	for end < len(r.line) && r.line[end] != ' ' {
		end++
	}
	tag := string(r.line[r.pos:end])
	if !validTag(tag) {
		return nil, syntaxErr("missing or invalid tag")
	}
	r.tag = tag
	r.pos = end
	if !r.eat(' ') {
		return nil, syntaxErr("missing command")
	}
	name, err := r.commandWord()
	if err != nil {
		return nil, err
	}
	cmd := &Command{Tag: tag, Name: name}
	if name == "UID" {
		if !r.eat(' ') {
			return nil, syntaxErr("missing command after UID")
		}
		if cmd.Name, err = r.commandWord(); err != nil {
			return nil, err
		}
		cmd.UID = true
	}
	r.name = cmd.Name
	return cmd, nil
}

func (r *Reader) commandWord() (string, error) {
	start := r.pos
	for r.pos < len(r.line) && isAtomChar(r.line[r.pos]) {
		r.pos++
	}
	if r.pos == start {
		return "", syntaxErr("missing command")
	}
	if r.pos < len(r.line) && r.line[r.pos] != ' ' {
		return "", syntaxErr("invalid character in command name")
	}
	return strings.ToUpper(string(r.line[start:r.pos])), nil
}

// validTag: tag = 1*<any ASTRING-CHAR except "+"> (RFC 9051 §9).
func validTag(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAStringChar(s[i]) || s[i] == '+' {
			return false
		}
	}
	return true
}

// readArgs reads "*(SP arg)" up to the end of the command or up to an
// APPEND message literal.
func (r *Reader) readArgs(cmd *Command) error {
	for r.pos < len(r.line) {
		if !r.eat(' ') {
			return syntaxErr("expected space at column %d", r.pos)
		}
		tok, err := r.token(0, false)
		if err != nil {
			return err
		}
		if r.pending != nil {
			// The token was an APPEND message literal: stop in front of
			// its data.
			cmd.Message = r.pending
			return nil
		}
		cmd.Args = append(cmd.Args, tok)
		r.topArgs++
	}
	return nil
}

func (r *Reader) eat(c byte) bool {
	if r.pos < len(r.line) && r.line[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

func (r *Reader) countToken() error {
	r.tokens++
	if r.tokens > r.lim.MaxTokens {
		return tooBig(ErrTooManyTokens, "too many tokens in command")
	}
	return nil
}

// token reads one argument at depth (0 = top level). inSection is set
// inside the brackets of a section, where ']' ends a word.
func (r *Reader) token(depth int, inSection bool) (Token, error) {
	if err := r.countToken(); err != nil {
		return Token{}, err
	}
	if r.pos >= len(r.line) {
		return Token{}, syntaxErr("missing argument")
	}
	switch c := r.line[r.pos]; {
	case c == '(':
		return r.list(depth+1, inSection)
	case c == '"':
		return r.quoted()
	case c == '{':
		return r.literal(depth, false)
	case c == '~' && r.pos+1 < len(r.line) && r.line[r.pos+1] == '{':
		r.pos++
		return r.literal(depth, true)
	}
	return r.word(depth, inSection)
}

func (r *Reader) list(depth int, inSection bool) (Token, error) {
	if depth > r.lim.MaxDepth {
		return Token{}, tooBig(ErrTooDeep, "lists nested too deep")
	}
	r.pos++ // '('
	tok := Token{Kind: KindList}
	if r.eat(')') {
		return tok, nil
	}
	for {
		el, err := r.token(depth, inSection)
		if err != nil {
			return Token{}, err
		}
		tok.List = append(tok.List, el)
		if r.eat(')') {
			return tok, nil
		}
		if !r.eat(' ') {
			return Token{}, syntaxErr("expected space or ')' in list")
		}
	}
}

func (r *Reader) quoted() (Token, error) {
	r.pos++ // '"'
	var sb strings.Builder
	eightBit := false
	for r.pos < len(r.line) {
		c := r.line[r.pos]
		r.pos++
		switch {
		case c == '"':
			s := sb.String()
			if eightBit && !validUTF8(s) {
				return Token{}, syntaxErr("quoted string is not valid UTF-8")
			}
			return Token{Kind: KindQuoted, Value: s}, nil
		case c == '\\':
			// RFC 9051 §9: only quoted-specials may be escaped.
			if r.pos >= len(r.line) || (r.line[r.pos] != '"' && r.line[r.pos] != '\\') {
				return Token{}, syntaxErr("invalid escape in quoted string")
			}
			sb.WriteByte(r.line[r.pos])
			r.pos++
		case c == 0 || c == '\r' || c == '\n':
			return Token{}, syntaxErr("NUL, CR or LF in quoted string")
		case c >= 0x80:
			// RFC 6855 §3: UTF-8 in quoted strings only after ENABLE.
			if !r.opts.UTF8 {
				return Token{}, syntaxErr("8-bit character in quoted string; use a literal")
			}
			eightBit = true
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
	}
	return Token{}, syntaxErr("unterminated quoted string")
}

// sectionWords are the fetch attributes whose "[" opens a section.
func isSectionWord(w string) bool {
	switch strings.ToUpper(w) {
	case "BODY", "BODY.PEEK", "BINARY", "BINARY.PEEK", "BINARY.SIZE":
		return true
	}
	return false
}

func (r *Reader) word(depth int, inSection bool) (Token, error) {
	start := r.pos
	for r.pos < len(r.line) {
		c := r.line[r.pos]
		if c == ' ' || c == '(' || c == ')' || c == '"' || c == '{' || (inSection && c == ']') {
			break
		}
		if c == '[' && isSectionWord(string(r.line[start:r.pos])) {
			return r.section(string(r.line[start:r.pos]), depth)
		}
		if isCTL(c) || c >= 0x80 {
			return Token{}, syntaxErr("invalid character 0x%02x", c)
		}
		r.pos++
	}
	w := string(r.line[start:r.pos])
	if w == "" {
		return Token{}, syntaxErr("unexpected %q", r.line[r.pos])
	}
	return classify(w), nil
}

// classify gives a bare word its kind.
func classify(w string) Token {
	if strings.EqualFold(w, "NIL") {
		return Token{Kind: KindNIL, Value: w}
	}
	if isDigits(w) {
		if n, ok := parseUint(w); ok {
			return Token{Kind: KindNumber, Value: w, Num: n}
		}
		return Token{Kind: KindAtom, Value: w}
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if (c < '0' || c > '9') && c != ':' && c != ',' && c != '*' && c != '$' {
			return Token{Kind: KindAtom, Value: w}
		}
	}
	return Token{Kind: KindSeqSet, Value: w}
}

// parseUint parses decimal digits into a uint64, refusing overflow.
func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// section reads "[" *(token) "]" ["<" partial ">"] after a section word.
func (r *Reader) section(prefix string, depth int) (Token, error) {
	r.pos++ // '['
	tok := Token{Kind: KindSection, Value: prefix}
	if !r.eat(']') {
		for {
			el, err := r.token(depth+1, true)
			if err != nil {
				return Token{}, err
			}
			tok.List = append(tok.List, el)
			if r.eat(']') {
				break
			}
			if !r.eat(' ') {
				return Token{}, syntaxErr("expected space or ']' in section")
			}
		}
	}
	if r.eat('<') {
		p, err := r.partial()
		if err != nil {
			return Token{}, err
		}
		tok.Partial = p
	}
	if r.pos < len(r.line) && r.line[r.pos] != ' ' && r.line[r.pos] != ')' {
		return Token{}, syntaxErr("unexpected %q after section", r.line[r.pos])
	}
	return tok, nil
}

// partial reads `number64 "." nz-number64 ">"` (RFC 9051 §9 partial);
// the "<" is already consumed.
func (r *Reader) partial() (*Partial, error) {
	end := r.pos
	for end < len(r.line) && r.line[end] != '>' {
		end++
	}
	if end == len(r.line) {
		return nil, syntaxErr("unterminated partial")
	}
	body := string(r.line[r.pos:end])
	r.pos = end + 1
	off, cnt, found := strings.Cut(body, ".")
	o, ok1 := parseUint(off)
	c, ok2 := parseUint(cnt)
	if !found || !isDigits(off) || !isDigits(cnt) || !ok1 || !ok2 || o > 1<<63-1 || c > 1<<63-1 || c == 0 {
		return nil, syntaxErr("invalid partial <%s>", body)
	}
	return &Partial{Offset: o, Count: c, HasCount: true}, nil
}

// readLine reads the next line segment into r.line, CRLF removed. A bare
// LF is taken as a line end too: it harms nothing in IMAP and some
// clients send it.
func (r *Reader) readLine() error {
	if cap(r.buf) > keepLineBuffer {
		// A long line came before: let its buffer go rather than keep
		// it for the life of the connection.
		r.buf = nil
	}
	r.buf = r.buf[:0]
	for {
		frag, err := r.br.ReadSlice('\n')
		if len(r.buf)+len(frag) > r.lim.MaxLine {
			return r.discardLongLine(frag, err)
		}
		r.buf = append(r.buf, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(r.buf) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("wire: reading command: %w", err)
	}
	line := r.buf[:len(r.buf)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	r.line, r.pos = line, 0
	return r.addSize(int64(len(r.buf)))
}

func (r *Reader) addSize(n int64) error {
	if int64(r.size)+n > int64(r.lim.MaxCommand) {
		// Keep the count where it was: the caller skips the rest.
		return tooBig(ErrCommandTooLong, "command too long")
	}
	r.size += int(n)
	return nil
}

// keepLineBuffer is the largest line buffer kept from one line to the
// next; most command lines are far shorter.
const keepLineBuffer = 4 << 10

// tailKeep is how much of a discarded line is kept: enough for a literal
// header "~{" 20 digits "+}".
const tailKeep = 32

// discardLongLine throws away the rest of a line longer than MaxLine,
// keeping its tail so skipRest can see a literal header at its end, and
// its head so the tag can still be answered.
func (r *Reader) discardLongLine(frag []byte, err error) error {
	head := append(r.buf, frag[:min(len(frag), r.lim.MaxLine-len(r.buf))]...)
	r.tag = headTag(head)
	var tail []byte
	keep := func(b []byte) {
		tail = append(tail, b...)
		if len(tail) > tailKeep {
			tail = append(tail[:0], tail[len(tail)-tailKeep:]...)
		}
	}
	keep(frag)
	r.discarded += int64(len(r.buf) + len(frag))
	for err != nil {
		if !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("wire: reading command: %w", err)
		}
		if r.discarded > r.lim.MaxDiscard {
			return &Error{Class: ClassTooBig, Code: "TOOBIG", Text: "line too long", Fatal: true, Err: ErrLineTooLong}
		}
		frag, err = r.br.ReadSlice('\n')
		keep(frag)
		r.discarded += int64(len(frag))
	}
	tail = tail[:len(tail)-1]
	if n := len(tail); n > 0 && tail[n-1] == '\r' {
		tail = tail[:n-1]
	}
	r.buf = append(r.buf[:0], tail...)
	r.line, r.pos = r.buf, len(r.buf)
	return tooBig(ErrLineTooLong, "line too long")
}

// headTag returns the tag at the start of a line, if it is a valid one.
func headTag(line []byte) string {
	s := string(line)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		s = s[:i]
	} else {
		return ""
	}
	if !validTag(s) {
		return ""
	}
	return s
}

// skipRest discards the rest of the current command: the rest of the
// current line and, while a line ends in a non-synchronising literal
// header, that literal's data and the next line. A line ending in a
// synchronising literal ends the command, for the client waits for a
// continuation request it will not get and takes the tagged response
// instead (RFC 9051 §7.5).
func (r *Reader) skipRest() error {
	for range maxSkipLines {
		if r.pending != nil {
			if err := r.finishPending(); err != nil && !skippable(err) {
				return err
			}
			continue
		}
		size, sync, _, ok := trailingLiteral(r.line)
		if !ok || sync {
			r.line, r.pos = nil, 0
			return nil
		}
		if err := r.discard(size); err != nil {
			return err
		}
		if err := r.readLine(); err != nil && !skippable(err) {
			return err
		}
	}
	return &Error{Class: ClassTooBig, Text: "too many literals to skip", Fatal: true}
}

// skippable reports an error after which skipping can go on: a line too
// long or a command too big still leaves r.line holding the line's tail,
// which tells whether more literals follow.
func skippable(err error) bool {
	var e *Error
	return errors.As(err, &e) && !e.Fatal
}

// maxSkipLines bounds the resynchronisation loop; MaxDiscard bounds it
// too, since every literal skipped counts against it.
const maxSkipLines = 1 << 20

// discard throws away n octets of literal data.
func (r *Reader) discard(n int64) error {
	r.discarded += n
	if r.discarded > r.lim.MaxDiscard {
		return &Error{Class: ClassTooBig, Code: "TOOBIG", Text: "literal too big to skip", Fatal: true, Err: ErrLiteralTooBig}
	}
	got, err := io.CopyN(io.Discard, r.br, n)
	if err != nil {
		return fmt.Errorf("wire: skipping %d-octet literal (got %d): %w", n, got, err)
	}
	return nil
}
