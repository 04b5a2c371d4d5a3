package deliver

// Delivery status notifications: RFC 3464 reports in RFC 6522
// multipart/report, for the DSN requests of RFC 3461.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"mailroom/spool"
)

// DSN actions (RFC 3464 §2.3.3).
const (
	actionFailed    = "failed"
	actionDelayed   = "delayed"
	actionDelivered = "delivered"
	actionExpanded  = "expanded"
)

// dsnFullLimit is the largest original returned whole as message/rfc822
// in a failure report (RET=FULL or no RET). A larger one, every success or
// delay report, and RET=HDRS return only the header section as
// text/rfc822-headers: a 10 MB attachment bounced back helps nobody, and
// RFC 3461 §4.3 lets the MTA return headers when it will not return all.
const dsnFullLimit = 128 << 10

// dsnHeaderLimit bounds the header section returned.
const dsnHeaderLimit = 64 << 10

// dsnRecipient is one recipient's part of a report.
type dsnRecipient struct {
	rcpt      spool.Recipient
	action    string
	status    string // RFC 3463
	diag      string // Diagnostic-Code value, "" for none
	remoteMTA string // Remote-MTA host, "" for none
	last      time.Time
	until     time.Time // delayed: Will-Retry-Until
}

// dsnReport is one report about one message.
type dsnReport struct {
	hostname string
	id       spool.ID // the message reported on
	env      *spool.Envelope
	rcpts    []dsnRecipient
	data     io.ReaderAt // the original, env.Size bytes
	eol      string      // the original's line ending, used throughout
	now      time.Time
	selfID   spool.ID // the report's own queue id, for its Message-ID
}

// returnsFull reports whether the whole original goes in the report.
func (r *dsnReport) returnsFull() bool {
	if r.env.Ret == spool.RetHdrs || r.env.Size > dsnFullLimit {
		return false
	}
	for _, x := range r.rcpts {
		if x.action == actionFailed {
			return true
		}
	}
	return false
}

// subject names the worst news in the report.
func (r *dsnReport) subject() string {
	worst := actionDelivered
	for _, x := range r.rcpts {
		switch {
		case x.action == actionFailed:
			worst = actionFailed
		case x.action == actionDelayed && worst != actionFailed:
			worst = actionDelayed
		}
	}
	switch worst {
	case actionFailed:
		return "Undelivered Mail Returned to Sender"
	case actionDelayed:
		return "Delayed Mail (still being retried)"
	}
	return "Successful Mail Delivery Report"
}

// write renders the report as a message.
func (r *dsnReport) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	eol := r.eol
	var rnd [12]byte
	rand.Read(rnd[:]) // never fails on Linux (crypto/rand aborts instead)
	boundary := "=_mailroom-" + hex.EncodeToString(rnd[:])
	line := func(format string, args ...any) { fmt.Fprintf(bw, format+"%s", append(args, eol)...) }

	line("From: Mail Delivery System <MAILER-DAEMON@%s>", r.hostname)
	line("To: %s", headerAddr(r.env.Sender))
	line("Subject: %s", r.subject())
	line("Date: %s", r.now.Format(time.RFC1123Z))
	line("Message-ID: <%s.dsn@%s>", r.selfID, r.hostname)
	// RFC 3834 §5: automatic responders must not answer this.
	line("Auto-Submitted: auto-replied")
	line("MIME-Version: 1.0")
	line("Content-Type: multipart/report; report-type=delivery-status;")
	line("\tboundary=\"%s\"", boundary)
	line("")
	line("This is a MIME-encapsulated message.")
	line("")

	// Part 1: for a person (RFC 6522 §3).
	human := r.humanText()
	line("--%s", boundary)
	line("Content-Description: Notification")
	line("Content-Type: text/plain; charset=utf-8")
	if !isASCII(human) {
		line("Content-Transfer-Encoding: 8bit")
	}
	line("")
	for _, l := range strings.Split(strings.TrimSuffix(human, "\n"), "\n") {
		line("%s", l)
	}
	line("")

	// Part 2: for a program (RFC 3464 §2).
	line("--%s", boundary)
	line("Content-Description: Delivery report")
	line("Content-Type: message/delivery-status")
	line("")
	r.writeStatusFields(line)

	// Part 3: the original, or its header section.
	if err := r.writeOriginal(bw, line, boundary); err != nil {
		return err
	}
	line("--%s--", boundary)
	return bw.Flush()
}

// writeStatusFields writes the per-message and per-recipient fields.
func (r *dsnReport) writeStatusFields(line func(string, ...any)) {
	line("Reporting-MTA: dns; %s", r.hostname)
	line("X-Mailroom-Queue-ID: %s", r.id)
	if r.env.EnvID != "" {
		line("Original-Envelope-Id: %s", utf8AddrXtext(r.env.EnvID))
	}
	line("Arrival-Date: %s", r.env.Arrived.Format(time.RFC1123Z))
	for _, x := range r.rcpts {
		line("")
		if x.rcpt.ORcpt != "" {
			line("Original-Recipient: %s", dsnORcpt(x.rcpt.ORcpt))
		}
		line("Final-Recipient: %s", dsnAddress("rfc822", x.rcpt.Addr))
		line("Action: %s", x.action)
		line("Status: %s", x.status)
		if x.remoteMTA != "" {
			line("Remote-MTA: dns; %s", dsnText(x.remoteMTA, len("Remote-MTA: dns; "), r.eol))
		}
		if x.diag != "" {
			typ, text, _ := strings.Cut(x.diag, ";")
			line("Diagnostic-Code: %s; %s", typ, dsnText(text, len("Diagnostic-Code: ")+len(typ)+2, r.eol))
		}
		if !x.last.IsZero() {
			line("Last-Attempt-Date: %s", x.last.Format(time.RFC1123Z))
		}
		if !x.until.IsZero() {
			line("Will-Retry-Until: %s", x.until.Format(time.RFC1123Z))
		}
	}
	line("")
}

// writeOriginal writes the third part.
func (r *dsnReport) writeOriginal(bw *bufio.Writer, line func(string, ...any), boundary string) error {
	line("--%s", boundary)
	if r.returnsFull() {
		line("Content-Description: Undelivered Message")
		line("Content-Type: message/rfc822")
		if r.env.Body != spool.Body7Bit {
			line("Content-Transfer-Encoding: 8bit")
		}
		line("")
		n, err := io.Copy(bw, io.NewSectionReader(r.data, 0, r.env.Size))
		if err != nil {
			return fmt.Errorf("dsn: copying the original: %w", err)
		}
		if n > 0 && !endsWithEOL(r.data, n) {
			line("")
		}
		return nil
	}
	head, err := headerSection(r.data, r.env.Size)
	if err != nil {
		return err
	}
	line("Content-Description: Message Headers")
	line("Content-Type: text/rfc822-headers")
	if !isASCII(string(head)) {
		line("Content-Transfer-Encoding: 8bit")
	}
	line("")
	bw.Write(head)
	return nil
}

// endsWithEOL reports whether the n bytes of data end with LF.
func endsWithEOL(data io.ReaderAt, n int64) bool {
	var last [1]byte
	_, err := data.ReadAt(last[:], n-1)
	return err == nil && last[0] == '\n'
}

// headerSection returns the original's header fields, up to the empty line
// that ends them (not included), at most dsnHeaderLimit bytes cut at a
// line end.
func headerSection(data io.ReaderAt, size int64) ([]byte, error) {
	n := min(size, dsnHeaderLimit)
	buf := make([]byte, n)
	if _, err := data.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("dsn: reading the original: %w", err)
	}
	for i := 0; i < len(buf); {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			break
		}
		l := buf[i : i+j+1]
		if len(bytes.TrimRight(l, "\r\n")) == 0 {
			return buf[:i], nil
		}
		i += j + 1
		if i == len(buf) {
			return buf, nil
		}
	}
	if k := bytes.LastIndexByte(buf, '\n'); k >= 0 {
		return buf[:k+1], nil
	}
	return nil, nil
}

// humanText is the first part: what happened, in words, per recipient.
func (r *dsnReport) humanText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail system at %s.\n\n", r.hostname)
	groups := []struct{ action, intro string }{
		{actionFailed, "Your message could not be delivered to the recipients below. This is\npermanent: the mail system has given up. The reasons follow; the\nmessage or its header is attached.\n"},
		{actionDelayed, "Your message has not yet been delivered to the recipients below. The\nmail system keeps trying; you need not send it again.\n"},
		{actionDelivered, "Your message was delivered to the recipients below, as you asked.\n"},
		{actionExpanded, "Your message was delivered to the recipients below and passed on to\nthe addresses they forward to, as you asked.\n"},
	}
	for _, g := range groups {
		first := true
		for _, x := range r.rcpts {
			if x.action != g.action {
				continue
			}
			if first {
				b.WriteString(g.intro + "\n")
				first = false
			}
			fmt.Fprintf(&b, "  <%s>: %s\n", sanitizeLine(x.rcpt.Addr), sanitizeLine(x.statusText()))
			if !x.until.IsZero() {
				fmt.Fprintf(&b, "    (will retry until %s)\n", x.until.Format(time.RFC1123Z))
			}
		}
		if !first {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// statusText is the status and diagnostic for a person.
func (x dsnRecipient) statusText() string {
	_, text, _ := strings.Cut(x.diag, "; ")
	if text == "" {
		return x.status
	}
	return x.status + " " + text
}

// sanitizeLine keeps a value on its line: control characters become
// spaces. (Non-ASCII UTF-8 is allowed in the text/plain part.)
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == 0xFFFD {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// headerAddr writes the sender for the To: field: an ASCII address in angle
// brackets, anything else made harmless (it is only for display; the
// envelope recipient decides delivery).
func headerAddr(addr string) string {
	return "<" + strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == 0xFFFD {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(addr, "\uFFFD")) + ">"
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
