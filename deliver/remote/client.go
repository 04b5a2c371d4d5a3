package remote

// The SMTP client's wire layer: replies, EHLO, STARTTLS's switch, AUTH,
// the commands of a transaction (pipelined when the peer allows,
// RFC 2920) and the message data. The transaction's policy (what each
// reply means for each recipient) is in transaction.go.

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Bounds on what the peer may send in answer to one command. RFC 5321
// §4.5.3.1.5 allows a reply line 512 octets; a generous margin is kept
// for servers that exceed it.
const (
	maxReplyLine  = 4096     // bytes in one reply line, CRLF included
	maxReplyLines = 256      // lines in one reply (an EHLO list is ~20)
	maxReplyBytes = 64 << 10 // bytes in one reply
)

// reply is one SMTP reply (RFC 5321 §4.2).
type reply struct {
	code     int
	enhanced [3]int   // RFC 2034 status code; {0,0,0} when the reply has none
	lines    []string // each line's text, without the codes
}

// hasEnhanced reports whether the reply carried an RFC 2034 code.
func (r *reply) hasEnhanced() bool { return r.enhanced[0] != 0 }

// text is the reply's text on one line, the enhanced code first when
// there is one, runs of white space made single spaces.
func (r *reply) text() string {
	t := strings.Join(strings.Fields(strings.Join(r.lines, " ")), " ")
	if r.hasEnhanced() {
		t = strings.TrimSpace(fmt.Sprintf("%d.%d.%d %s", r.enhanced[0], r.enhanced[1], r.enhanced[2], t))
	}
	return t
}

func (r *reply) String() string { return strings.TrimSpace(fmt.Sprintf("%d %s", r.code, r.text())) }

// replyError is a reply the client did not hope for.
type replyError struct {
	cmd   string // the command's verb, for messages
	reply *reply
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: %s", e.cmd, e.reply) }

// replyReader reads replies from the peer, within the bounds above.
type replyReader struct {
	br *bufio.Reader
}

func newReplyReader(r io.Reader) *replyReader {
	return &replyReader{br: bufio.NewReaderSize(r, maxReplyLine)}
}

// read reads one reply, multi-line or not (RFC 5321 §4.2.1: every line
// but the last has "-" after the code, and all carry the same code).
func (rr *replyReader) read() (*reply, error) {
	r := &reply{}
	total := 0
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return nil, fmt.Errorf("reply longer than %d lines", maxReplyLines)
		}
		raw, err := rr.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("reply line longer than %d bytes", maxReplyLine)
		}
		if err != nil {
			if err == io.EOF && (n > 0 || len(raw) > 0) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		total += len(raw)
		if total > maxReplyBytes {
			return nil, fmt.Errorf("reply longer than %d bytes", maxReplyBytes)
		}
		line := strings.TrimRight(string(raw), "\r\n")
		code, last, text, err := parseReplyLine(line)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			r.code = code
		} else if code != r.code {
			return nil, fmt.Errorf("reply line %q does not continue code %d", line, r.code)
		}
		r.lines = append(r.lines, text)
		if last {
			break
		}
	}
	r.enhanced, r.lines = splitEnhanced(r.code, r.lines)
	return r, nil
}

// parseReplyLine splits "250-text" or "250 text" (or a bare "250").
func parseReplyLine(line string) (code int, last bool, text string, err error) {
	if len(line) < 3 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
		return 0, false, "", fmt.Errorf("malformed reply line %q", line)
	}
	for i := range 3 {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("malformed reply line %q", line)
		}
	}
	code, _ = strconv.Atoi(line[:3])
	// RFC 5321 §4.2: the first digit is 2 to 5 (1yz is unused in SMTP).
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("reply code %d out of range", code)
	}
	if len(line) == 3 {
		return code, true, "", nil
	}
	return code, line[3] == ' ', line[4:], nil
}

// splitEnhanced takes the RFC 2034 status code off the reply's lines: it
// leads the first line's text, its class is the reply code's first digit
// (§4), and it is repeated on every line (§4), where it is removed too.
func splitEnhanced(code int, lines []string) ([3]int, []string) {
	first, rest, _ := strings.Cut(lines[0], " ")
	ec, ok := parseEnhanced(first)
	if !ok || ec[0] != code/100 {
		return [3]int{}, lines
	}
	out := make([]string, len(lines))
	out[0] = rest
	for i, l := range lines[1:] {
		if p, r, _ := strings.Cut(l, " "); p == first {
			l = r
		}
		out[i+1] = l
	}
	return ec, out
}

// parseEnhanced parses "class.subject.detail" (RFC 3463 §2: class 2, 4
// or 5; subject and detail 1 to 3 digits).
func parseEnhanced(s string) ([3]int, bool) {
	var ec [3]int
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return ec, false
	}
	for i, p := range parts {
		if len(p) == 0 || len(p) > 3 || i == 0 && len(p) != 1 {
			return ec, false
		}
		for j := 0; j < len(p); j++ {
			if p[j] < '0' || p[j] > '9' {
				return ec, false
			}
		}
		ec[i], _ = strconv.Atoi(p)
	}
	if ec[0] != 2 && ec[0] != 4 && ec[0] != 5 {
		return ec, false
	}
	return ec, true
}

// client is one SMTP connection at the wire level. It is not safe for
// concurrent use.
type client struct {
	conn     net.Conn // the TCP connection, or the TLS session over it
	rr       *replyReader
	bw       *bufio.Writer
	timeouts Timeouts
	wtimeout time.Duration     // the deadline put on each write
	ext      map[string]string // EHLO keywords (upper case) and their parameters
	esmtp    bool              // EHLO was answered (not HELO)
}

func newClient(conn net.Conn, to Timeouts) *client {
	c := &client{conn: conn, timeouts: to, wtimeout: to.Command}
	c.rr = newReplyReader(conn)
	c.bw = bufio.NewWriterSize(timedWriter{c}, 32<<10)
	return c
}

// timedWriter puts a deadline on every write to the connection, so that a
// peer that stops reading cannot hold a session for ever.
type timedWriter struct{ c *client }

func (w timedWriter) Write(p []byte) (int, error) {
	if err := w.c.conn.SetWriteDeadline(time.Now().Add(w.c.wtimeout)); err != nil {
		return 0, err
	}
	return w.c.conn.Write(p)
}

// readReply reads the next reply within timeout.
func (c *client) readReply(timeout time.Duration) (*reply, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	return c.rr.read()
}

// send writes command lines in one flush: one segment for a pipelined
// group (RFC 2920 §3.1).
func (c *client) send(lines ...string) error {
	c.wtimeout = c.timeouts.Command
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return fmt.Errorf("command %q contains a line break", l)
		}
		c.bw.WriteString(l)
		c.bw.WriteString("\r\n")
	}
	return c.bw.Flush()
}

// cmd sends one command and reads its reply, which must have the class
// of want (2 for 2xx, 3 for 3xx); any other is a *replyError.
func (c *client) cmd(timeout time.Duration, want int, line string) (*reply, error) {
	if err := c.send(line); err != nil {
		return nil, err
	}
	r, err := c.readReply(timeout)
	if err != nil {
		return nil, err
	}
	if r.code/100 != want {
		verb, _, _ := strings.Cut(line, " ")
		return r, &replyError{cmd: verb, reply: r}
	}
	return r, nil
}

// greet reads the greeting (RFC 5321 §4.3.1: 220, or 554 for "no
// service") and says EHLO.
func (c *client) greet(hostname string) error {
	r, err := c.readReply(c.timeouts.Greeting)
	if err != nil {
		return err
	}
	if r.code != 220 {
		return &replyError{cmd: "greeting", reply: r}
	}
	return c.hello(hostname, c.timeouts.Greeting)
}

// hello says EHLO, and HELO to a peer that does not know EHLO (RFC 5321
// §4.1.4: a 500 or 502 to EHLO), and records the extensions offered.
func (c *client) hello(hostname string, timeout time.Duration) error {
	r, err := c.cmd(timeout, 2, "EHLO "+hostname)
	var re *replyError
	if errors.As(err, &re) && (re.reply.code == 500 || re.reply.code == 502) {
		c.ext, c.esmtp = map[string]string{}, false
		_, err = c.cmd(timeout, 2, "HELO "+hostname)
		return err
	}
	if err != nil {
		return err
	}
	c.ext, c.esmtp = parseEHLO(r), true
	return nil
}

// parseEHLO reads the keywords of an EHLO reply: every line after the
// first is "KEYWORD params" (RFC 5321 §4.1.1.1). The old "AUTH=PLAIN
// LOGIN" form is read as AUTH too.
func parseEHLO(r *reply) map[string]string {
	ext := map[string]string{}
	// The enhanced code, if any, was taken off line 0 only when it
	// looked like one; EHLO keywords never do.
	for _, l := range r.lines[1:] {
		kw, params, _ := strings.Cut(strings.TrimSpace(l), " ")
		kw = strings.ToUpper(kw)
		if mech, ok := strings.CutPrefix(kw, "AUTH="); ok {
			kw, params = "AUTH", strings.TrimSpace(mech+" "+params)
		}
		if kw == "" {
			continue
		}
		// A keyword listed twice: the later line wins, but AUTH
		// mechanisms from both forms add up.
		if prev := ext[kw]; kw == "AUTH" && prev != "" {
			params = prev + " " + params
		}
		ext[kw] = params
	}
	return ext
}

// extension reports whether the peer offers kw, and its parameters.
func (c *client) extension(kw string) (bool, string) {
	p, ok := c.ext[kw]
	return ok, p
}

// supportsAuth reports whether the peer offers the SASL mechanism.
func (c *client) supportsAuth(mech string) bool {
	_, p := c.extension("AUTH")
	for _, m := range strings.Fields(p) {
		if strings.EqualFold(m, mech) {
			return true
		}
	}
	return false
}

// maxSize is the peer's SIZE limit (RFC 1870 §4), 0 for none.
func (c *client) maxSize() int64 {
	ok, p := c.extension("SIZE")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// startTLS sends STARTTLS and, on a 220, hands back the connection to
// start TLS on. RFC 3207 §6: a peer (or a man in the middle) could send
// bytes after the 220 in plaintext for the client to read as if they
// came over TLS; anything already buffered then is refused, never
// carried across the switch.
func (c *client) startTLS() (*reply, error) {
	r, err := c.cmd(c.timeouts.Command, 2, "STARTTLS")
	if err != nil {
		return r, err
	}
	if r.code != 220 {
		return r, &replyError{cmd: "STARTTLS", reply: r}
	}
	if n := c.rr.br.Buffered(); n > 0 {
		return r, fmt.Errorf("%d bytes after the reply to STARTTLS, before TLS (RFC 3207 §6)", n)
	}
	return r, nil
}

// switchTLS continues the session over tc: fresh buffers, no extensions
// until the next EHLO (RFC 3207 §4.2).
func (c *client) switchTLS(tc *tls.Conn) {
	c.conn = tc
	c.rr = newReplyReader(tc)
	c.bw.Reset(timedWriter{c})
	c.ext, c.esmtp = map[string]string{}, false
}

// authPlain authenticates with SASL PLAIN (RFC 4616), the credentials
// in the initial response (RFC 4954 §4).
func (c *client) authPlain(user, password string) error {
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	return c.authDone(c.cmd(c.timeouts.Command, 2, "AUTH PLAIN "+ir))
}

// authLogin authenticates with the LOGIN mechanism (never standardised;
// draft-murchison-sasl-login): the user name and the password, each
// asked for with a 334.
func (c *client) authLogin(user, password string) error {
	if _, err := c.cmd(c.timeouts.Command, 3, "AUTH LOGIN"); err != nil {
		return c.authDone(nil, err)
	}
	if _, err := c.cmd(c.timeouts.Command, 3, base64.StdEncoding.EncodeToString([]byte(user))); err != nil {
		return c.authDone(nil, err)
	}
	return c.authDone(c.cmd(c.timeouts.Command, 2, base64.StdEncoding.EncodeToString([]byte(password))))
}

// authDone ends an AUTH exchange: a 334 where none was wanted is
// answered with "*" (RFC 4954 §4: the client cancels), whose reply ends
// the exchange.
func (c *client) authDone(r *reply, err error) error {
	var re *replyError
	if errors.As(err, &re) && re.reply.code == 334 {
		if _, cerr := c.cmd(c.timeouts.Command, 5, "*"); cerr != nil {
			var ce *replyError
			if !errors.As(cerr, &ce) {
				return cerr // the session is lost
			}
		}
	}
	if errors.As(err, &re) {
		re.cmd = "AUTH"
	}
	return err
}

// reset sends RSET (RFC 5321 §4.1.1.5). The extensions stay known: RSET
// does not undo EHLO (§4.1.4), so no new EHLO follows.
func (c *client) reset() error {
	_, err := c.cmd(c.timeouts.Reset, 2, "RSET")
	return err
}

// quit sends QUIT and reads its reply, briefly bounded, then closes.
func (c *client) quit() error {
	c.timeouts.Command = 10 * time.Second
	_, err := c.cmd(10*time.Second, 2, "QUIT")
	if cerr := c.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeData sends the message body after a 354: line ends made CRLF (the
// spool keeps LF), a leading "." doubled (RFC 5321 §4.5.2), then the
// final "." line. A bare CR is passed on as it is.
func (c *client) writeData(body io.Reader) error {
	c.wtimeout = c.timeouts.DataBlock
	defer func() { c.wtimeout = c.timeouts.Command }()
	dw := &dotWriter{w: c.bw, lineStart: true}
	if _, err := io.Copy(dw, body); err != nil {
		return err
	}
	if err := dw.close(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// dotWriter dot-stuffs and makes every LF a CRLF.
type dotWriter struct {
	w         *bufio.Writer
	lineStart bool // the next byte begins a line
	prevCR    bool // the last byte written was CR
}

func (d *dotWriter) Write(p []byte) (int, error) {
	for i, b := range p {
		var err error
		switch {
		case b == '\n':
			if !d.prevCR {
				err = d.w.WriteByte('\r')
			}
		case b == '.' && d.lineStart:
			err = d.w.WriteByte('.')
		}
		if err == nil {
			err = d.w.WriteByte(b)
		}
		if err != nil {
			return i, err
		}
		d.lineStart, d.prevCR = b == '\n', b == '\r'
	}
	return len(p), nil
}

// close ends the last line if the message did not, and writes the end
// of data.
func (d *dotWriter) close() error {
	switch {
	case d.prevCR:
		d.w.WriteByte('\n')
	case !d.lineStart:
		d.w.WriteString("\r\n")
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}
