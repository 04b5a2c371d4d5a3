package sendmail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"mailroom/spool"
)

// -bs speaks SMTP (RFC 5321) on standard input and output, for programs
// such as Alpine that submit through "sendmail -bs" rather than a socket.
// It is a small server of its own: one local client, no TLS, no AUTH (the
// client is the uid running us, which the maildrop records), each message
// dropped into maildrop/ exactly as the command line does, 250 only after
// Commit. Lines may end in CRLF or bare LF (a local pipe); replies end in
// CRLF. The session ends at QUIT or at the end of input.

const (
	maxCommandLine = 4096 // RFC 5321 §4.5.3.1.4 says 512; be generous
	maxSMTPErrors  = 20   // then 421, as smtpd's max_errors
)

type smtpSession struct {
	r      *run
	id     identity
	sp     *spool.Spool
	in     *bufio.Reader
	out    *bufio.Writer
	errors int

	// The transaction (RFC 5321 §3.3).
	mail     bool
	sender   string
	body     spool.BodyType
	smtputf8 bool
	rcpts    []string
}

// errQuit ends the session normally; errClosed ends it because the
// client's input ended or broke.
var (
	errQuit   = errors.New("quit")
	errClosed = errors.New("input closed")
)

func (r *run) smtp() int {
	out := bufio.NewWriter(r.sys.Stdout)
	id, err := r.identity()
	var sp *spool.Spool
	if err == nil {
		sp, err = spool.Open(r.cfg.SpoolDir)
	}
	if err != nil {
		// RFC 5321 §3.1: a server that cannot serve may greet with 421.
		fmt.Fprintf(out, "421 4.3.0 %s mail system unavailable\r\n", r.cfg.Hostname)
		out.Flush()
		return r.fail(ExitTempFail, "4.3.0 %v", err)
	}
	s := &smtpSession{r: r, id: id, sp: sp, in: bufio.NewReaderSize(r.sys.Stdin, 64<<10), out: out}
	err = s.serve()
	switch {
	case errors.Is(err, errQuit), errors.Is(err, errClosed):
		return ExitOK
	default:
		return r.fail(ExitTempFail, "4.3.0 SMTP session: %v", err)
	}
}

func (s *smtpSession) serve() error {
	if err := s.reply(220, "%s ESMTP mailroom (sendmail -bs)", s.r.cfg.Hostname); err != nil {
		return err
	}
	for {
		line, err := s.readCommand()
		if err != nil {
			return err
		}
		if line == nil {
			if err := s.fault(500, "5.5.2 Error: line too long"); err != nil {
				return err
			}
			continue
		}
		if err := s.command(string(line)); err != nil {
			return err
		}
	}
}

// readCommand returns one command line without its line end; nil (and
// no error) for an over-long line, which it skips.
func (s *smtpSession) readCommand() ([]byte, error) {
	line, err := s.in.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > maxCommandLine:
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = s.in.ReadSlice('\n')
		}
		if err != nil {
			return nil, errClosed
		}
		return nil, nil
	case err == io.EOF && len(line) == 0:
		return nil, errClosed
	case err != nil && err != io.EOF:
		return nil, fmt.Errorf("%w: %v", errClosed, err)
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func (s *smtpSession) command(line string) error {
	verb, arg, _ := strings.Cut(line, " ")
	switch strings.ToUpper(verb) {
	case "EHLO", "HELO":
		return s.hello(strings.ToUpper(verb), strings.TrimSpace(arg))
	case "MAIL":
		return s.mailCmd(arg)
	case "RCPT":
		return s.rcptCmd(arg)
	case "DATA":
		return s.data(arg)
	case "RSET":
		s.reset()
		return s.reply(250, "2.0.0 Ok")
	case "NOOP":
		return s.reply(250, "2.0.0 Ok")
	case "QUIT":
		if err := s.reply(221, "2.0.0 Bye"); err != nil {
			return err
		}
		return errQuit
	case "VRFY":
		// RFC 5321 §3.5.3: 252 when we will not say.
		return s.reply(252, "2.5.2 Cannot VRFY user, but will accept message and attempt delivery")
	case "HELP":
		return s.reply(214, "2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT")
	case "EXPN", "STARTTLS", "AUTH", "BDAT", "ETRN", "TURN":
		return s.fault(502, "5.5.1 Error: command not implemented")
	}
	return s.fault(500, "5.5.2 Error: command not recognized")
}

func (s *smtpSession) hello(verb, domain string) error {
	if domain == "" {
		return s.fault(501, "5.5.4 Syntax: %s hostname", verb)
	}
	s.reset()
	host := s.r.cfg.Hostname
	if verb == "HELO" {
		return s.reply(250, "%s", host)
	}
	size := "SIZE"
	if max := s.r.cfg.Smtpd.MaxMessageSize; max > 0 {
		size += " " + strconv.FormatInt(max, 10)
	}
	return s.replyLines(250, host, "PIPELINING", size, "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES")
}

func (s *smtpSession) reset() {
	s.mail, s.sender, s.body, s.smtputf8, s.rcpts = false, "", "", false, nil
}

// mailCmd is MAIL FROM:<path> [params] (RFC 5321 §4.1.1.2).
func (s *smtpSession) mailCmd(arg string) error {
	if s.mail {
		return s.fault(503, "5.5.1 Error: nested MAIL command")
	}
	path, params, ok := cutPath(arg, "FROM:")
	if !ok {
		return s.fault(501, "5.5.4 Syntax: MAIL FROM:<address>")
	}
	sender := ""
	if path != "" {
		addrs, err := parseAddressList(path)
		if err != nil || len(addrs) != 1 {
			return s.fault(501, "5.1.7 Bad sender address syntax")
		}
		sender = addrs[0]
	}
	body := spool.Body7Bit // RFC 6152: no BODY= means 7bit
	utf8 := false
	for _, p := range params {
		key, value, _ := strings.Cut(p, "=")
		switch strings.ToUpper(key) {
		case "BODY":
			switch strings.ToUpper(value) {
			case "7BIT":
				body = spool.Body7Bit
			case "8BITMIME":
				body = spool.Body8BitMIME
			default:
				return s.fault(501, "5.5.4 Unsupported BODY type")
			}
		case "SIZE":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return s.fault(501, "5.5.4 Bad SIZE value")
			}
			if max := s.r.cfg.Smtpd.MaxMessageSize; max > 0 && n > max {
				return s.fault(552, "5.3.4 Message size exceeds fixed limit")
			}
		case "SMTPUTF8":
			utf8 = true
		default:
			return s.fault(555, "5.5.4 Unsupported option: %s", key)
		}
	}
	chosen, warning := s.r.chooseSender(s.id, sender, true)
	s.mail, s.sender, s.body, s.smtputf8 = true, chosen, body, utf8
	if warning != "" {
		return s.reply(250, "2.1.0 Ok, sending as <%s> (%s is not a trusted user)", chosen, s.id.login)
	}
	return s.reply(250, "2.1.0 Ok")
}

// rcptCmd is RCPT TO:<path> (RFC 5321 §4.1.1.3).
func (s *smtpSession) rcptCmd(arg string) error {
	if !s.mail {
		return s.fault(503, "5.5.1 Error: need MAIL command")
	}
	path, params, ok := cutPath(arg, "TO:")
	if !ok || path == "" {
		return s.fault(501, "5.5.4 Syntax: RCPT TO:<address>")
	}
	if len(params) > 0 {
		return s.fault(555, "5.5.4 Unsupported option: %s", params[0])
	}
	addrs, err := parseAddressList(path)
	if err != nil || len(addrs) != 1 {
		return s.fault(501, "5.1.3 Bad recipient address syntax")
	}
	if max := s.r.cfg.Smtpd.MaxRecipients; max > 0 && int64(len(s.rcpts)) >= max {
		// RFC 5321 §4.5.3.1.8: 452 and the client sends the rest later.
		return s.reply(452, "4.5.3 Error: too many recipients")
	}
	s.rcpts = append(s.rcpts, addrs[0])
	return s.reply(250, "2.1.5 Ok")
}

// cutPath splits "FROM:<a@b> K=V" into "a@b" and the parameters. A blank
// after the colon and a path without brackets are tolerated (old
// clients); a source route is dropped by the address parser.
func cutPath(arg, prefix string) (string, []string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", nil, false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	var path string
	if strings.HasPrefix(rest, "<") {
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return "", nil, false
		}
		path, rest = rest[1:end], rest[end+1:]
		if rest != "" && rest[0] != ' ' {
			return "", nil, false
		}
	} else {
		path, rest, _ = strings.Cut(rest, " ")
	}
	return path, strings.Fields(rest), true
}

// data is DATA (RFC 5321 §4.1.1.4): the message up to the lone ".",
// dropped like a command-line submission (without Bcc removal: the
// client chose the header), 250 only after Commit.
func (s *smtpSession) data(arg string) error {
	switch {
	case arg != "":
		return s.fault(501, "5.5.4 Syntax: DATA")
	case !s.mail:
		return s.fault(503, "5.5.1 Error: need MAIL command")
	case len(s.rcpts) == 0:
		return s.fault(503, "5.5.1 Error: need RCPT command")
	}
	if err := s.reply(354, "End data with <CR><LF>.<CR><LF>"); err != nil {
		return err
	}
	src := &dotSource{r: s.in, lineStart: true}
	defer s.reset()
	qid, err := s.dropData(src)
	var in *inputError
	if errors.As(err, &in) {
		// The client's input ended inside DATA: nothing was queued and
		// no 250 was sent, so the client knows; we stop with 75.
		return fmt.Errorf("in DATA: %w", err)
	}
	if err != nil {
		// Read the rest of the message, so its lines are not taken for
		// commands, then refuse it.
		if derr := src.drain(); derr != nil {
			return fmt.Errorf("%w: %v", errClosed, derr)
		}
		if errors.Is(err, errTooBig) || errors.Is(err, errHeaderTooBig) {
			return s.reply(552, "%v", err)
		}
		fmt.Fprintf(s.r.sys.Stderr, "%s: 4.3.0 message not queued: %v\n", s.r.prog, err)
		return s.reply(451, "4.3.0 Error: queue file write error")
	}
	return s.reply(250, "2.0.0 Ok: queued as %s", qid)
}

func (s *smtpSession) dropData(src *dotSource) (spool.ID, error) {
	msg, err := readHeader(src)
	if err != nil {
		return "", err
	}
	env := s.r.envelope(s.sender, s.r.qualifyAll(s.rcpts), 0)
	env.Body = s.body
	env.SMTPUTF8 = env.SMTPUTF8 || s.smtputf8
	return s.r.drop(s.sp, env, msg, src, s.id)
}

// reply writes one reply line and flushes.
func (s *smtpSession) reply(code int, format string, args ...any) error {
	fmt.Fprintf(s.out, "%d %s\r\n", code, fmt.Sprintf(format, args...))
	return s.out.Flush()
}

func (s *smtpSession) replyLines(code int, lines ...string) error {
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(s.out, "%d%s%s\r\n", code, sep, l)
	}
	return s.out.Flush()
}

// fault replies with an error and counts it; too many end the session.
func (s *smtpSession) fault(code int, format string, args ...any) error {
	s.errors++
	if s.errors > maxSMTPErrors {
		if err := s.reply(421, "4.7.0 Error: too many errors"); err != nil {
			return err
		}
		return errQuit
	}
	return s.reply(code, format, args...)
}

// dotSource reads DATA lines up to the lone "." (RFC 5321 §4.5.2:
// a leading dot is removed from every other line). An end of input
// before the "." is an error, not the end of the message.
type dotSource struct {
	r         *bufio.Reader
	lineStart bool
	done      bool
	buf       []byte
}

func (d *dotSource) next() ([]byte, error) {
	if d.done {
		return nil, io.EOF
	}
	piece, partial, err := readPiece(d.r)
	switch {
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	d.buf = append(d.buf[:0], piece...)
	line := d.buf
	if !partial {
		line = fixLineEnd(line)
	}
	start := d.lineStart
	d.lineStart = !partial
	if start && len(line) > 0 && line[0] == '.' {
		if string(line) == ".\n" {
			d.done = true
			return nil, io.EOF
		}
		line = line[1:]
	}
	return line, nil
}

// drain reads to the end of the message.
func (d *dotSource) drain() error {
	for {
		if _, err := d.next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}
