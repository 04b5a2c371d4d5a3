package sendmail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
)

// maxHeaderBytes bounds the header held in memory (the body is streamed).
// Postfix's header_size_limit is 100 kB per field; one MiB for the whole
// header is generous for anything a program writes.
const maxHeaderBytes = 1 << 20

var (
	// errTooBig: the message exceeds max_message_size (65, 552 5.3.4).
	errTooBig = errors.New("5.3.4 message size exceeds fixed maximum message size")
	// errHeaderTooBig: the header does not fit in maxHeaderBytes (65).
	errHeaderTooBig = errors.New("5.3.4 message header too large")
)

// inputError wraps a failure to read the message (not the caller's data
// being wrong: the pipe or the terminal broke).
type inputError struct{ err error }

func (e *inputError) Error() string { return "reading the message: " + e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// field is one header field as written, continuation lines included,
// each line ending in LF.
type field struct {
	name string // lower case, for comparisons
	raw  []byte
}

func (f field) value() string {
	_, v, _ := bytes.Cut(f.raw, []byte(":"))
	return string(v)
}

// message is a header read into memory and the line that ended it.
type message struct {
	fields []field
	// first is the line after the header: "\n" (the separator), a body
	// line when the message starts without a header or the header ends
	// without an empty line, or nil when the input ended in the header.
	first []byte
}

// readHeader reads the header fields from src. A leading mbox "From "
// line is dropped (OpenSMTPD does the same; maildir(5) files have none).
func readHeader(src lineSource) (*message, error) {
	m := &message{}
	size := 0
	for n := 0; ; n++ {
		line, err := fullLine(src, maxHeaderBytes-size)
		switch {
		case err == io.EOF:
			return m, nil
		case err != nil:
			return nil, err
		}
		size += len(line)
		if n == 0 && bytes.HasPrefix(line, []byte("From ")) {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(m.fields) > 0 {
			last := &m.fields[len(m.fields)-1]
			last.raw = append(last.raw, line...)
			continue
		}
		name, ok := fieldName(line)
		if !ok {
			m.first = line
			return m, nil
		}
		m.fields = append(m.fields, field{name: strings.ToLower(name), raw: line})
	}
}

// fullLine joins the pieces of one line, refusing more than limit bytes.
// The returned slice is the caller's.
func fullLine(src lineSource, limit int) ([]byte, error) {
	var line []byte
	for {
		piece, err := src.next()
		if err == io.EOF && len(line) > 0 {
			return line, nil
		}
		if err != nil {
			if err == io.EOF {
				return nil, err
			}
			return nil, &inputError{err}
		}
		if len(line)+len(piece) > limit {
			return nil, errHeaderTooBig
		}
		line = append(line, piece...)
		if line[len(line)-1] == '\n' {
			return line, nil
		}
	}
}

// fieldName returns the name of a header field line: printable ASCII
// without ':' (RFC 5322 §2.2), blanks allowed before the colon (§4.5).
func fieldName(line []byte) (string, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "", false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return "", false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(name), true
}

func (m *message) has(name string) bool {
	for _, f := range m.fields {
		if f.name == name {
			return true
		}
	}
	return false
}

// headerRecipients extracts -t's recipients. When the message has been
// resent (any Resent-* field), only Resent-To, Resent-Cc and Resent-Bcc
// count, as in Postfix and RFC 5322 §3.6.6; otherwise To, Cc and Bcc.
func (m *message) headerRecipients() ([]string, error) {
	resent := false
	for _, f := range m.fields {
		if strings.HasPrefix(f.name, "resent-") {
			resent = true
		}
	}
	names := []string{"to", "cc", "bcc"}
	if resent {
		names = []string{"resent-to", "resent-cc", "resent-bcc"}
	}
	var out []string
	for _, f := range m.fields {
		for _, n := range names {
			if f.name != n {
				continue
			}
			addrs, err := parseAddressList(f.value())
			if err != nil {
				return nil, fmt.Errorf("5.1.3 bad address in %s: field: %w", fieldLabel(f), err)
			}
			out = append(out, addrs...)
		}
	}
	return out, nil
}

// fieldLabel is the field name as written, for messages.
func fieldLabel(f field) string {
	name, _ := fieldName(f.raw)
	return name
}

// removeBcc drops Bcc: and Resent-Bcc:, whose whole point is not to reach
// the recipients (RFC 5322 §3.6.3).
func (m *message) removeBcc() {
	kept := m.fields[:0]
	for _, f := range m.fields {
		if f.name != "bcc" && f.name != "resent-bcc" {
			kept = append(kept, f)
		}
	}
	m.fields = kept
}

// additions are the fields Postfix's cleanup adds to local mail that lacks
// them (RFC 5322 §3.6: Date and From are required, Message-ID expected).
type additions struct {
	From      string // the From: value to use when missing
	Hostname  string // right-hand side of the Message-ID
	Now       time.Time
	MessageID string // the queue id, to make the Message-ID unique
}

func (m *message) missingFields(a additions) [][]byte {
	var out [][]byte
	if !m.has("from") {
		out = append(out, []byte("From: "+a.From+"\n"))
	}
	if !m.has("date") {
		// RFC 5322 §3.3.
		out = append(out, []byte("Date: "+a.Now.Format("Mon, 2 Jan 2006 15:04:05 -0700")+"\n"))
	}
	if !m.has("message-id") {
		// RFC 5322 §3.6.4: unique left part (time and queue id), the
		// host's name on the right, as Postfix writes it.
		out = append(out, []byte(fmt.Sprintf("Message-ID: <%s.%s@%s>\n",
			a.Now.UTC().Format("20060102150405"), a.MessageID, a.Hostname)))
	}
	return out
}

// writeMessage writes the header (fields, then added), the separator and
// the rest of src to w.
func (m *message) writeMessage(w io.Writer, added [][]byte, src lineSource) error {
	for _, f := range m.fields {
		if _, err := w.Write(f.raw); err != nil {
			return err
		}
	}
	for _, f := range added {
		if _, err := w.Write(f); err != nil {
			return err
		}
	}
	if m.first != nil {
		if m.first[0] != '\n' {
			// A body line right after the header (or no header at all):
			// the empty line RFC 5322 §2.1 requires keeps it out of the
			// header we wrote.
			if _, err := w.Write([]byte("\n")); err != nil {
				return err
			}
		}
		if _, err := w.Write(m.first); err != nil {
			return err
		}
	}
	for {
		line, err := src.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &inputError{err}
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
}

// limitWriter fails once more than max bytes are written (max 0: no
// limit).
type limitWriter struct {
	w   io.Writer
	n   int64
	max int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.max > 0 && l.n+int64(len(p)) > l.max {
		return 0, errTooBig
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// formatMailbox writes "Name <addr>" for a From: field: the name as an
// atom phrase when it is plain, quoted when it has specials, RFC 2047
// encoded when it is not ASCII.
func formatMailbox(name, addr string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		return addr
	}
	switch {
	case !isASCII(name):
		name = mime.QEncoding.Encode("utf-8", name)
	case !isPhrase(name):
		name = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
	}
	return name + " <" + addr + ">"
}

func isPhrase(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && !isAtext(s[i]) {
			return false
		}
	}
	return true
}
