package message

import (
	"strings"

	"mailroom/imapd/wire"
)

// WriteBodyStructure writes the body structure of s: BODYSTRUCTURE when
// extended is true, the non-extensible BODY otherwise (RFC 9051 §7.5.2,
// §9 body).
func WriteBodyStructure(w *wire.Writer, s *Structure, extended bool) {
	writeBody(w, s.Root, extended)
}

// WritePartStructure writes the body structure of one part.
func WritePartStructure(w *wire.Writer, p *Part, extended bool) {
	writeBody(w, p, extended)
}

func writeBody(w *wire.Writer, p *Part, ext bool) {
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
		WriteEnvelope(w, p.Message.Envelope)
		w.SP()
		writeBody(w, p.Message, ext)
		w.SP()
		w.Number(uint64(p.Lines))
	case p.isText():
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
func writeMultipart(w *wire.Writer, p *Part, ext bool) {
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
func writeExtTail(w *wire.Writer, p *Part) {
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
func writeParams(w *wire.Writer, ps []Param) {
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
func textParams(p *Part) []Param {
	if !p.isText() {
		return p.Params
	}
	for _, q := range p.Params {
		if strings.EqualFold(q.Name, "charset") {
			return p.Params
		}
	}
	return append(p.Params[:len(p.Params):len(p.Params)], Param{"charset", "us-ascii"})
}
