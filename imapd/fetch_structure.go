package imapd

import (
	"strings"

	"mailroom/imapd/wire"
	"mailroom/internal/message"
)

// This file renders what internal/message parsed as the IMAP items
// ENVELOPE, BODY and BODYSTRUCTURE (RFC 9051 §7.5.2, grammar in §9). The
// parser is shared with the text index; how its result is spelled on the
// wire is imapd's alone.

// writeBodyStructure writes the body structure of s: BODYSTRUCTURE when
// extended is true, the non-extensible BODY otherwise (RFC 9051 §7.5.2,
// §9 body).
func writeBodyStructure(w *wire.Writer, s *message.Structure, extended bool) {
	writeBody(w, s.Root, extended)
}

func writeBody(w *wire.Writer, p *message.Part, ext bool) {
	if p.IsMultipart() && len(p.Parts) > 0 {
		writeMultipart(w, p, ext)
		return
	}
	w.OpenList()
	// body-type-1part: media type, then body-fields.
	w.String(p.Type)
	w.SP()
	w.String(p.Subtype)
	w.SP()
	writeParams(w, textParams(p))
	w.SP()
	w.NString(p.ID.S, !p.ID.Valid)
	w.SP()
	w.NString(p.Description.S, !p.Description.Valid)
	w.SP()
	w.String(p.Encoding)
	w.SP()
	w.Number(uint64(p.Body.CRLFSize()))
	switch {
	case p.IsMessage():
		// body-type-msg: envelope SP body SP body-fld-lines
		w.SP()
		writeEnvelope(w, p.Message.Envelope)
		w.SP()
		writeBody(w, p.Message, ext)
		w.SP()
		w.Number(uint64(p.Lines))
	case p.IsText():
		w.SP()
		w.Number(uint64(p.Lines))
	}
	if ext {
		// body-ext-1part: body-fld-md5 [SP body-fld-dsp [SP body-fld-lang
		// [SP body-fld-loc *(SP body-extension)]]]
		w.SP()
		w.NString(p.MD5.S, !p.MD5.Valid)
		writeExtTail(w, p)
	}
	w.CloseList()
}

// writeMultipart writes body-type-mpart = 1*body SP media-subtype
// [SP body-ext-mpart]; body-ext-mpart starts with the parameters.
func writeMultipart(w *wire.Writer, p *message.Part, ext bool) {
	w.OpenList()
	for _, c := range p.Parts {
		writeBody(w, c, ext)
	}
	w.SP()
	w.String(p.Subtype)
	if ext {
		w.SP()
		writeParams(w, p.Params)
		writeExtTail(w, p)
	}
	w.CloseList()
}

// writeExtTail writes SP body-fld-dsp SP body-fld-lang SP body-fld-loc.
func writeExtTail(w *wire.Writer, p *message.Part) {
	w.SP()
	if p.Disposition == "" {
		w.NIL()
	} else {
		w.OpenList()
		w.String(p.Disposition)
		w.SP()
		writeParams(w, p.DispParams)
		w.CloseList()
	}
	w.SP()
	if len(p.Language) == 0 {
		w.NIL()
	} else {
		w.OpenList()
		for i, l := range p.Language {
			if i > 0 {
				w.SP()
			}
			w.String(l)
		}
		w.CloseList()
	}
	w.SP()
	w.NString(p.Location.S, !p.Location.Valid)
}

// writeParams writes body-fld-param = "(" string SP string *(SP string SP
// string) ")" / nil.
func writeParams(w *wire.Writer, ps []message.Param) {
	if len(ps) == 0 {
		w.NIL()
		return
	}
	w.OpenList()
	for i, p := range ps {
		if i > 0 {
			w.SP()
		}
		w.String(p.Name)
		w.SP()
		w.String(p.Value)
	}
	w.CloseList()
}

// textParams returns the parameters of a part, for a text part with the
// RFC 2045 §5.2 default charset added when the message names none, so a
// client never has to guess it.
func textParams(p *message.Part) []message.Param {
	if !p.IsText() {
		return p.Params
	}
	for _, q := range p.Params {
		if strings.EqualFold(q.Name, "charset") {
			return p.Params
		}
	}
	return append(p.Params[:len(p.Params):len(p.Params)], message.Param{Name: "charset", Value: "us-ascii"})
}

// writeEnvelope writes env as an IMAP envelope (RFC 9051 §9); a nil env
// is one with every field NIL:
//
//	envelope = "(" env-date SP env-subject SP env-from SP env-sender SP
//	           env-reply-to SP env-to SP env-cc SP env-bcc SP
//	           env-in-reply-to SP env-message-id ")"
func writeEnvelope(w *wire.Writer, env *message.Envelope) {
	if env == nil {
		env = &message.Envelope{}
	}
	w.OpenList()
	w.NString(env.Date.S, !env.Date.Valid)
	w.SP()
	w.NString(env.Subject.S, !env.Subject.Valid)
	for _, l := range [][]message.Address{env.From, env.SenderList(), env.ReplyToList(), env.To, env.Cc, env.Bcc} {
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
func writeAddressList(w *wire.Writer, l []message.Address) {
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
// SP addr-host ")"; a group is its start and end markers (RFC 9051 §7.5.2).
func writeAddress(w *wire.Writer, a message.Address) {
	w.OpenList()
	switch a.Kind {
	case message.AddrGroupStart:
		w.NIL()
		w.SP()
		w.NIL()
		w.SP()
		w.String(a.Mailbox)
		w.SP()
		w.NIL()
	case message.AddrGroupEnd:
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
