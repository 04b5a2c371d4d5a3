package message

import "mailroom/imapd/wire"

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

// senderList and replyToList apply RFC 9051 §7.5.2: "If the Sender or
// Reply-To header lines are absent in the [RFC5322] header, or are present
// but empty, the server sets the corresponding member of the envelope to
// be the same value as the from member".
func (e *Envelope) senderList() []Address {
	if len(e.Sender) == 0 {
		return e.From
	}
	return e.Sender
}

func (e *Envelope) replyToList() []Address {
	if len(e.ReplyTo) == 0 {
		return e.From
	}
	return e.ReplyTo
}

// WriteEnvelope writes env as an IMAP envelope (RFC 9051 §9):
//
//	envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
//	           env-reply-to SP env-to SP env-cc SP env-bcc SP
//	           env-in-reply-to SP env-message-id ")"
func WriteEnvelope(w *wire.Writer, env *Envelope) {
	if env == nil {
		env = &Envelope{}
	}
	w.OpenList()
	w.NString(env.Date.S, !env.Date.Valid)
	w.SP()
	w.NString(env.Subject.S, !env.Subject.Valid)
	for _, l := range [][]Address{env.From, env.senderList(), env.replyToList(), env.To, env.Cc, env.Bcc} {
		w.SP()
		writeAddressList(w, l)
	}
	w.SP()
	w.NString(env.InReplyTo.S, !env.InReplyTo.Valid)
	w.SP()
	w.NString(env.MessageID.S, !env.MessageID.Valid)
	w.CloseList()
}

// writeAddressList writes "(" 1*address ")" / nil.
func writeAddressList(w *wire.Writer, l []Address) {
	if len(l) == 0 {
		w.NIL()
		return
	}
	w.OpenList()
	for _, a := range l {
		writeAddress(w, a)
	}
	w.CloseList()
}

// writeAddress writes address = "(" addr-name SP addr-adl SP addr-mailbox
// SP addr-host ")".
func writeAddress(w *wire.Writer, a Address) {
	w.OpenList()
	switch a.Kind {
	case AddrGroupStart:
		w.NIL()
		w.SP()
		w.NIL()
		w.SP()
		w.String(a.Mailbox)
		w.SP()
		w.NIL()
	case AddrGroupEnd:
		w.NIL()
		w.SP()
		w.NIL()
		w.SP()
		w.NIL()
		w.SP()
		w.NIL()
	default:
		w.NString(a.Name, a.Name == "")
		w.SP()
		w.NString(a.Route, a.Route == "")
		w.SP()
		w.String(a.Mailbox)
		w.SP()
		w.String(a.Host)
	}
	w.CloseList()
}
