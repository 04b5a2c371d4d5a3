package smtpd

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
)

// forbiddenCommands are HTTP request methods. A browser tricked into
// posting to an SMTP port (cross-protocol attacks, ALPACA over TLS) sends
// one as its first line; Postfix's smtpd_forbidden_commands drops such
// clients at once, and so do we, instead of answering the header lines that
// follow one by one.
var forbiddenCommands = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// Client stream modes of the observer's scanner.
const (
	scanCommand = iota // command lines
	scanData           // inside DATA, until CRLF.CRLF
	scanChunk          // inside a BDAT chunk, skip bytes left
	scanDiscard        // after STARTTLS: plaintext go-smtp throws away
)

// maxScanLine is how much of each client line the scanner keeps: enough for
// a verb and a BDAT size.
const maxScanLine = 64

// observer is go-smtp's Debug writer for one connection. go-smtp tees
// through it every chunk it reads from the client and every reply line it
// writes, after TLS decryption, in order, on the connection's goroutine.
// The two directions arrive through the same Write; the watchedConn below
// says which: a reply is written to the socket just before it reaches the
// observer, a chunk is read (or was buffered by TLS) just before.
//
// From replies it counts errors (max_errors), notices EHLO versus HELO,
// STARTTLS, and 421s; from client bytes it spots HTTP verbs in command
// position. It never changes what go-smtp does except by closing the
// connection.
type observer struct {
	cs *connState

	mode     int
	skip     int64  // scanChunk: bytes of the chunk still to come
	line     []byte // the current client line, up to maxScanLine bytes
	last     byte   // the last client byte seen
	prevCRLF bool   // the previous client line ended with CRLF
}

func (o *observer) Write(p []byte) (n int, err error) {
	defer func() {
		// The observer runs outside go-smtp's per-command recovery (in
		// the read loop too); a bug here must cost one connection only.
		if r := recover(); r != nil {
			o.cs.logPanic(r)
			o.cs.close()
		}
	}()
	if o.cs.raw.lastOp.CompareAndSwap(opWrite, opNone) {
		o.reply(p)
	} else {
		o.client(p)
	}
	return len(p), nil
}

// synced forgets the socket operations since the last event: for writes
// that were not replies (TLS handshake, our own 421).
func (o *observer) synced() { o.cs.raw.lastOp.Store(opNone) }

// reply looks at one reply line go-smtp wrote.
func (o *observer) reply(p []byte) {
	line := strings.TrimRight(string(p), "\r\n")
	if len(line) < 4 {
		return
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil {
		return
	}
	final := line[3] == ' '
	text := line[4:]
	switch {
	case code == 250 && line[3] == '-' && strings.HasPrefix(text, "Hello "):
		o.cs.esmtp.Store(true)
	case code == 250 && final && strings.HasPrefix(text, "2.0.0 Hello "):
		o.cs.esmtp.Store(false)
	case code == 220 && final && strings.HasPrefix(text, "2.0.0 Ready to start TLS"):
		o.cs.raw.startTLS.Store(true)
		o.mode = scanDiscard
	case o.mode == scanDiscard:
		// STARTTLS was refused (or the handshake is over): the client
		// goes on with commands.
		o.mode = scanCommand
	}
	if final && o.cs.closeAfter.Swap(false) {
		defer o.cs.close()
	}
	if !final || code < 400 {
		return
	}
	o.cs.replyError(code, line)
	if code == 421 {
		// RFC 5321 §3.8: 421 means the server is closing the channel.
		o.cs.close()
		return
	}
}

// client scans bytes the client sent, for forbidden commands.
func (o *observer) client(p []byte) {
	if o.mode == scanDiscard {
		// go-smtp drops the plaintext that followed STARTTLS in the
		// same read; the next reply or the post-handshake Logout ends
		// this mode.
		return
	}
	for len(p) > 0 && !o.cs.raw.isClosed() {
		if o.mode == scanChunk {
			n := min(o.skip, int64(len(p)))
			o.skip -= n
			o.last = p[n-1]
			p = p[n:]
			if o.skip == 0 {
				o.mode = scanCommand
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if o.mode == scanData {
			o.checkBare(part, i >= 0)
		}
		if room := maxScanLine - len(o.line); room > 0 {
			o.line = append(o.line, part[:min(room, len(part))]...)
		}
		if i < 0 {
			o.last = p[len(p)-1]
			return
		}
		crlf := i > 0 && p[i-1] == '\r' || i == 0 && o.last == '\r'
		o.last = '\n'
		p = p[i+1:]
		o.endLine(crlf)
	}
}

// checkBare looks for a bare CR or LF in a piece of a DATA line: part is
// what comes before the next LF (ended says there is one) or the rest of
// the read. go-smtp's DATA reader drops ".\r" at the start of a line
// followed by anything but LF (its dot state machine), so a bare CR there
// never reaches Data; the raw stream shows it, and Data refuses the
// message when this flag is set.
func (o *observer) checkBare(part []byte, ended bool) {
	bare := false
	switch {
	case o.last == '\r' && len(part) > 0:
		// The previous read ended in CR, and no LF follows it.
		bare = true
	case bytes.IndexByte(part[:max(len(part)-1, 0)], '\r') >= 0:
		bare = true // CR followed by something else than LF
	case ended && len(part) == 0 && o.last != '\r':
		bare = true // LF right after LF
	case ended && len(part) > 0 && part[len(part)-1] != '\r':
		bare = true // LF without CR
	}
	if bare {
		o.cs.bareData.Store(true)
	}
}

// endLine handles one complete client line (o.line, without its LF).
func (o *observer) endLine(crlf bool) {
	line := string(o.line)
	o.line = o.line[:0]
	if crlf {
		line = strings.TrimSuffix(line, "\r")
	}
	prev := o.prevCRLF
	o.prevCRLF = crlf
	switch o.mode {
	case scanData:
		// go-smtp ends DATA only at CRLF "." CRLF (see data.go).
		if prev && crlf && line == "." {
			o.mode = scanCommand
		}
	case scanCommand:
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		verb = strings.ToUpper(verb)
		switch {
		case forbiddenCommands[verb]:
			o.cs.forbidden(verb)
		case verb == "DATA" && strings.TrimSpace(arg) == "":
			o.mode = scanData
			o.prevCRLF = true
		case verb == "BDAT":
			// The chunk follows the command line whether the command
			// is accepted or not; go-smtp skips it either way.
			size, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
			if n, err := strconv.ParseUint(size, 10, 32); err == nil && n > 0 {
				o.mode, o.skip = scanChunk, int64(n)
			}
		case strings.HasPrefix(strings.ToUpper(line), "STARTTLS"):
			// go-smtp's parser takes any line starting so as STARTTLS.
			o.mode = scanDiscard
		}
	}
}

// afterTLS starts the client stream anew after a STARTTLS handshake (the
// session's Logout): the handshake's own socket writes were not replies.
func (o *observer) afterTLS() {
	if o.mode == scanDiscard {
		o.mode = scanCommand
	}
	o.line = o.line[:0]
	o.prevCRLF = true
	o.synced()
}

// authUserAttr is user=<account> on the accepted line when the session
// authenticated (what Postfix logs as sasl_username), so that the line
// says who sent the message without a join on conn=; for an
// unauthenticated session it is the empty Attr, which slog leaves out.
func authUserAttr(user string) slog.Attr {
	if user == "" {
		return slog.Attr{}
	}
	return slog.String("user", user)
}
