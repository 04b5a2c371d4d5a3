package message

// Envelope holds the ENVELOPE fields of a message (RFC 9051 §7.5.2): the
// string fields as the header has them, unfolded, encoded words and 8-bit
// octets untouched; the address lists parsed. A nil address list is NIL.
type Envelope struct {
	Date, Subject         NString
	From, Sender, ReplyTo []Address
	To, Cc, Bcc           []Address
	InReplyTo, MessageID  NString
}

// buildEnvelope extracts the ENVELOPE fields from a header.
func buildEnvelope(h *header) *Envelope {
	e := &Envelope{
		Date:      nstr(h.get("date")),
		Subject:   nstr(h.get("subject")),
		InReplyTo: nstr(h.get("in-reply-to")),
		MessageID: nstr(h.get("message-id")),
	}
	list := func(name string) []Address {
		v, ok := h.get(name)
		if !ok {
			return nil
		}
		return ParseAddressList(v)
	}
	e.From = list("from")
	e.Sender = list("sender")
	e.ReplyTo = list("reply-to")
	e.To = list("to")
	e.Cc = list("cc")
	e.Bcc = list("bcc")
	return e
}

// SenderList returns the env-sender member of the envelope: RFC 9051
// §7.5.2, "If the Sender or Reply-To header lines are absent in the
// [RFC5322] header, or are present but empty, the server sets the
// corresponding member of the envelope to be the same value as the from
// member". Sender keeps what the header says.
func (e *Envelope) SenderList() []Address {
	if len(e.Sender) == 0 {
		return e.From
	}
	return e.Sender
}

// ReplyToList returns the env-reply-to member of the envelope: ReplyTo,
// or From when the header has no Reply-To or an empty one (as SenderList).
func (e *Envelope) ReplyToList() []Address {
	if len(e.ReplyTo) == 0 {
		return e.From
	}
	return e.ReplyTo
}
