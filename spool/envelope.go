package spool

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The first line of every envelope names its format version. A reader
// refuses any other version: a field it does not know might be one it must
// not ignore. Version 2 is the head of a queue file and has no size line
// (the data is the rest of the file); version 1 is the envelope file of the
// old one-directory-per-message layout, which still carries the size, and
// the head of a maildrop file, whose format did not change.
const (
	envelopeMagic1 = "mailroom-envelope 1"
	envelopeMagic2 = "mailroom-envelope 2"
)

// Origin says how a message entered the spool, and so which identity the
// envelope carries.
type Origin string

const (
	// OriginSMTP: received by smtpd; AuthUser is the SASL identity, if any.
	OriginSMTP Origin = "smtp"
	// OriginLocal: submitted on this host (sendmail); UID is the submitter.
	OriginLocal Origin = "local"
)

// BodyType is the body's declared content, from MAIL FROM's BODY=
// parameter (RFC 6152, RFC 3030 §3).
type BodyType string

const (
	Body7Bit       BodyType = "7bit"
	Body8BitMIME   BodyType = "8bitmime"
	BodyBinaryMIME BodyType = "binarymime"
)

// Ret is the DSN RET parameter (RFC 3461 §4.3); "" when not given.
type Ret string

const (
	RetFull Ret = "full"
	RetHdrs Ret = "hdrs"
)

// Notify is the DSN NOTIFY parameter of one recipient (RFC 3461 §4.1);
// zero when not given, which leaves the choice to the MTA.
type Notify uint8

const (
	NotifyNever Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// notifyNames is the canonical order of NOTIFY keywords in the file.
var notifyNames = []struct {
	bit  Notify
	name string
}{{NotifyNever, "never"}, {NotifySuccess, "success"}, {NotifyFailure, "failure"}, {NotifyDelay, "delay"}}

// Recipient is one envelope recipient with its DSN parameters.
type Recipient struct {
	Addr   string // the RCPT TO address, without angle brackets
	Notify Notify
	// ORcpt is the ORCPT parameter, xtext-decoded: "addr-type;address"
	// (RFC 3461 §4.2), e.g. "rfc822;bob@example.org"; "" when not given.
	ORcpt string
}

// Envelope is everything about a message except its content.
type Envelope struct {
	Origin   Origin
	Arrived  time.Time // set by the spool at Commit (and Pickup)
	UID      uint32    // OriginLocal: the submitter, from the kernel
	AuthUser string    // OriginSMTP: the authenticated user, "" if none

	// For the Received line (RFC 5321 §4.4): the client's address, its
	// verified reverse name, what it said in HELO/EHLO, the protocol
	// ("ESMTPSA", RFC 3848) and the TLS version and cipher.
	ClientAddr string
	ClientName string
	Helo       string
	Protocol   string
	TLS        string

	Body     BodyType
	SMTPUTF8 bool   // RFC 6531 SMTPUTF8 was given
	Ret      Ret    // DSN RET
	EnvID    string // DSN ENVID, xtext-decoded (RFC 3461 §4.4)
	Size     int64  // bytes of content; set by the spool at Commit and when read

	Sender     string // reverse-path without brackets; "" is the null sender
	Recipients []Recipient
}

// envelopeKind selects the version and which fields a file may hold: the
// head of a queue file; the envelope file of an old-layout queue directory,
// which also records the size; or the head of a maildrop file, where
// everything the spool itself establishes (arrival, size) or that only
// smtpd knows is forbidden.
type envelopeKind int

const (
	kindQueue    envelopeKind = iota // version 2, written by MarshalText
	kindQueueDir                     // version 1, only read (and by tests written)
	kindDrop                         // version 1, without arrived and size
)

// magic is the first line of a file of kind k.
func (k envelopeKind) magic() string {
	if k == kindQueue {
		return envelopeMagic2
	}
	return envelopeMagic1
}

// Validate checks what the format cannot express and what every consumer
// relies on.
func (e *Envelope) Validate() error {
	return e.validate(kindQueue)
}

func (e *Envelope) validate(kind envelopeKind) error {
	switch e.Origin {
	case OriginSMTP:
		if e.UID != 0 {
			return fmt.Errorf("spool: envelope: uid is for local submissions")
		}
	case OriginLocal:
		if e.AuthUser != "" || e.ClientAddr != "" || e.ClientName != "" || e.TLS != "" {
			return fmt.Errorf("spool: envelope: auth, client and tls are for smtp submissions")
		}
	default:
		return fmt.Errorf("spool: envelope: origin %q is neither smtp nor local", e.Origin)
	}
	if kind != kindDrop && e.Arrived.IsZero() {
		return fmt.Errorf("spool: envelope: no arrival time")
	}
	if kind == kindDrop && (!e.Arrived.IsZero() || e.Size != 0 || e.Origin != OriginLocal) {
		return fmt.Errorf("spool: envelope: a maildrop file is local and has no arrival or size")
	}
	switch e.Body {
	case Body7Bit, Body8BitMIME, BodyBinaryMIME:
	default:
		return fmt.Errorf("spool: envelope: body type %q", e.Body)
	}
	switch e.Ret {
	case "", RetFull, RetHdrs:
	default:
		return fmt.Errorf("spool: envelope: ret %q", e.Ret)
	}
	if e.Size < 0 {
		return fmt.Errorf("spool: envelope: negative size")
	}
	if len(e.Recipients) == 0 {
		return fmt.Errorf("spool: envelope: no recipients")
	}
	for i, r := range e.Recipients {
		if err := r.validate(); err != nil {
			return fmt.Errorf("spool: envelope: recipient %d: %w", i+1, err)
		}
	}
	return nil
}

func (r *Recipient) validate() error {
	if r.Addr == "" {
		return fmt.Errorf("empty address")
	}
	if r.Notify&NotifyNever != 0 && r.Notify != NotifyNever {
		// RFC 3461 §4.1: NEVER excludes the other keywords.
		return fmt.Errorf("NOTIFY=NEVER combined with other keywords")
	}
	if r.Notify >= NotifyDelay<<1 {
		return fmt.Errorf("unknown NOTIFY bits %#x", r.Notify)
	}
	if r.ORcpt != "" {
		typ, _, ok := strings.Cut(r.ORcpt, ";")
		if !ok || typ == "" {
			return fmt.Errorf("ORCPT %q is not addr-type;address", r.ORcpt)
		}
	}
	return nil
}

// MarshalText returns the head of a queue file: the magic line (version
// 2), one line per field in a fixed order, and a terminating empty line.
// Size is not written: the content is what follows the head.
func (e *Envelope) MarshalText() ([]byte, error) {
	return e.marshal(kindQueue)
}

func (e *Envelope) marshal(kind envelopeKind) ([]byte, error) {
	if err := e.validate(kind); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	line := func(key, value string) { b.WriteString(key + " " + value + "\n") }
	opt := func(key, value string) {
		if value != "" {
			line(key, encodeValue(value))
		}
	}
	b.WriteString(kind.magic() + "\n")
	line("origin", string(e.Origin))
	if kind != kindDrop {
		line("arrived", formatTime(e.Arrived))
	}
	if e.Origin == OriginLocal {
		line("uid", strconv.FormatUint(uint64(e.UID), 10))
	}
	opt("auth", e.AuthUser)
	opt("client-addr", e.ClientAddr)
	opt("client-name", e.ClientName)
	opt("helo", e.Helo)
	opt("proto", e.Protocol)
	opt("tls", e.TLS)
	line("body", string(e.Body))
	if e.SMTPUTF8 {
		line("smtputf8", "yes")
	}
	opt("ret", string(e.Ret))
	opt("envid", e.EnvID)
	if kind == kindQueueDir {
		line("size", strconv.FormatInt(e.Size, 10))
	}
	line("sender", bracket(e.Sender))
	for _, r := range e.Recipients {
		b.WriteString("rcpt " + bracket(r.Addr))
		if r.Notify != 0 {
			b.WriteString(" notify=" + formatNotify(r.Notify))
		}
		if r.ORcpt != "" {
			b.WriteString(" orcpt=" + encodeValue(r.ORcpt))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	for i, l := range strings.Split(b.String(), "\n") {
		if len(l) > maxLine {
			return nil, fmt.Errorf("spool: envelope: line %d longer than %d bytes", i+1, maxLine)
		}
	}
	return b.Bytes(), nil
}

// bracket writes an address as <encoded>; the null sender is "<>".
func bracket(addr string) string {
	if addr == "" {
		return "<>"
	}
	return "<" + encodeValue(addr) + ">"
}

// unbracket reverses bracket.
func unbracket(s string) (string, error) {
	if len(s) < 2 || s[0] != '<' || s[len(s)-1] != '>' {
		return "", fmt.Errorf("%w: address %q not in <>", ErrSyntax, s)
	}
	if s == "<>" {
		return "", nil
	}
	return decodeValue(s[1 : len(s)-1])
}

func formatNotify(n Notify) string {
	var names []string
	for _, k := range notifyNames {
		if n&k.bit != 0 {
			names = append(names, k.name)
		}
	}
	return strings.Join(names, ",")
}

// parseNotify reads keywords in canonical order, each once.
func parseNotify(s string) (Notify, error) {
	var n Notify
	next := 0
	for _, w := range strings.Split(s, ",") {
		found := false
		for next < len(notifyNames) {
			k := notifyNames[next]
			next++
			if k.name == w {
				n |= k.bit
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("%w: notify %q: unknown, repeated or out of order", ErrSyntax, s)
		}
	}
	return n, nil
}

// ParseEnvelope reads the head of a queue file as MarshalText writes it
// (version 2, Size left zero), or the envelope file of an old-layout queue
// directory (version 1, with its size); anything else is an error. The
// data must end right after the empty line.
func ParseEnvelope(data []byte) (Envelope, error) {
	env, _, err := parseEnvelopeFile(data)
	return env, err
}

// parseEnvelopeFile is ParseEnvelope, also returning which kind of file
// the data was.
func parseEnvelopeFile(data []byte) (Envelope, envelopeKind, error) {
	end := bytes.Index(data, []byte("\n\n"))
	if end < 0 || end+2 != len(data) {
		return Envelope{}, 0, fmt.Errorf("%w: envelope must end with one empty line", ErrSyntax)
	}
	kind := kindQueue
	if bytes.HasPrefix(data, []byte(envelopeMagic1+"\n")) {
		kind = kindQueueDir
	}
	env, err := parseEnvelope(data[:end+1], kind)
	return env, kind, err
}

// parseEnvelope parses the envelope's lines (up to and including the LF of
// the last field; the empty line excluded).
func parseEnvelope(data []byte, kind envelopeKind) (Envelope, error) {
	lines, err := splitLines(data)
	if err != nil {
		return Envelope{}, err
	}
	if lines[0] != kind.magic() {
		return Envelope{}, fmt.Errorf("%w: first line %q, want %q", ErrSyntax, truncate(lines[0]), kind.magic())
	}
	var p envelopeParser
	p.kind = kind
	p.seen = map[string]bool{}
	for i, l := range lines[1:] {
		if err := p.line(l); err != nil {
			return Envelope{}, fmt.Errorf("envelope line %d: %w", i+2, err)
		}
	}
	for _, k := range p.required() {
		if !p.seen[k] {
			return Envelope{}, fmt.Errorf("%w: envelope has no %s line", ErrSyntax, k)
		}
	}
	if err := p.env.validate(kind); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return p.env, nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 40 {
		return clip(s, 40) + "..."
	}
	return s
}

// envelopeParser holds the state of one parse.
type envelopeParser struct {
	kind     envelopeKind
	env      Envelope
	seen     map[string]bool
	lastKind int // index in fieldOrder of the last field, for ordering
}

// fieldOrder is the order in which MarshalText writes fields; the parser
// insists on it, so each envelope has exactly one spelling.
var fieldOrder = []string{"origin", "arrived", "uid", "auth", "client-addr", "client-name",
	"helo", "proto", "tls", "body", "smtputf8", "ret", "envid", "size", "sender", "rcpt"}

func (p *envelopeParser) required() []string {
	req := []string{"origin", "body", "sender", "rcpt"}
	if p.kind != kindDrop {
		req = append(req, "arrived")
	}
	if p.kind == kindQueueDir {
		req = append(req, "size")
	}
	if p.env.Origin == OriginLocal {
		req = append(req, "uid")
	}
	return req
}

func (p *envelopeParser) line(l string) error {
	key, value, ok := strings.Cut(l, " ")
	if !ok || value == "" {
		return fmt.Errorf("%w: %q is not \"key value\"", ErrSyntax, truncate(l))
	}
	pos := -1
	for i, k := range fieldOrder {
		if k == key {
			pos = i
		}
	}
	if pos < 0 {
		return fmt.Errorf("%w: unknown key %q", ErrSyntax, truncate(key))
	}
	if key != "rcpt" && p.seen[key] {
		return fmt.Errorf("%w: repeated key %q", ErrSyntax, key)
	}
	if pos < p.lastKind {
		return fmt.Errorf("%w: key %q out of order", ErrSyntax, key)
	}
	p.seen[key], p.lastKind = true, pos
	if key == "rcpt" {
		return p.rcpt(value)
	}
	if strings.Contains(value, " ") {
		return fmt.Errorf("%w: %s: stray space", ErrSyntax, key)
	}
	return p.field(key, value)
}

// field parses one single-valued field.
func (p *envelopeParser) field(key, value string) error {
	e := &p.env
	var err error
	switch key {
	case "origin":
		e.Origin = Origin(value)
		if e.Origin != OriginSMTP && e.Origin != OriginLocal {
			return fmt.Errorf("%w: origin %q", ErrSyntax, value)
		}
	case "arrived":
		if p.kind == kindDrop {
			return fmt.Errorf("%w: arrived is set by the spool", ErrSyntax)
		}
		e.Arrived, err = parseTime(value)
	case "uid":
		var n uint64
		n, err = parseDecimal(value, 32)
		e.UID = uint32(n)
	case "auth":
		e.AuthUser, err = decodeValue(value)
	case "client-addr":
		e.ClientAddr, err = decodeValue(value)
	case "client-name":
		e.ClientName, err = decodeValue(value)
	case "helo":
		e.Helo, err = decodeValue(value)
	case "proto":
		e.Protocol, err = decodeValue(value)
	case "tls":
		e.TLS, err = decodeValue(value)
	case "body":
		e.Body = BodyType(value)
	case "smtputf8":
		if value != "yes" {
			return fmt.Errorf("%w: smtputf8 %q, want yes", ErrSyntax, value)
		}
		e.SMTPUTF8 = true
	case "ret":
		e.Ret = Ret(value)
	case "envid":
		e.EnvID, err = decodeValue(value)
	case "size":
		if p.kind != kindQueueDir {
			return fmt.Errorf("%w: size is set by the spool (version 1 queue envelopes only)", ErrSyntax)
		}
		var n uint64
		n, err = parseDecimal(value, 63)
		e.Size = int64(n)
	case "sender":
		e.Sender, err = unbracket(value)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// rcpt parses "<addr> [notify=...] [orcpt=...]".
func (p *envelopeParser) rcpt(value string) error {
	f, err := splitFields(value)
	if err != nil {
		return err
	}
	var r Recipient
	if r.Addr, err = unbracket(f[0]); err != nil {
		return err
	}
	if r.Addr == "" {
		return fmt.Errorf("%w: empty recipient", ErrSyntax)
	}
	last := ""
	for _, param := range f[1:] {
		name, v, err := splitParam(param)
		if err != nil {
			return err
		}
		switch {
		case name == "notify" && last == "":
			r.Notify, err = parseNotify(v)
		case name == "orcpt" && last != "orcpt":
			r.ORcpt, err = decodeValue(v)
		default:
			return fmt.Errorf("%w: rcpt parameter %q unknown, repeated or out of order", ErrSyntax, truncate(name))
		}
		if err != nil {
			return err
		}
		last = name
	}
	p.env.Recipients = append(p.env.Recipients, r)
	return nil
}

// parseDecimal reads a canonical unsigned decimal of at most bits bits.
func parseDecimal(s string, bits int) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("%w: number %q", ErrSyntax, truncate(s))
	}
	return n, nil
}
