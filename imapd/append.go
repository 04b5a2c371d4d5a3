package imapd

import (
	"errors"
	"strconv"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// cmdAppend is APPEND (RFC 9051 §6.3.12) with APPENDUID (RFC 4315 §3).
// The message is streamed from the connection into tmp/, never held in
// memory; flags and the internal date are kept.
func (ss *session) cmdAppend(c *wire.Command) error {
	if c.Message == nil {
		return bad("APPEND needs a message literal")
	}
	name, opts, err := wire.ParseAppend(c.Args)
	if err != nil {
		return err
	}
	sys, kwNames, err := splitFlags(opts.Flags)
	if err != nil {
		return err
	}
	dst, err := ss.openTarget(name)
	if err != nil {
		return err
	}
	defer ss.srv.views.release(dst)
	kw, err := dst.keywordSlots(kwNames, true)
	if err != nil && !errors.Is(err, maildir.ErrTooManyKeywords) {
		return err
	}
	msg := c.Message
	base, err := writeMessage(dst.path, msg, sys, kw, opts.Date, func() error {
		if msg.SawNUL() && !msg.Binary() {
			// RFC 9051 §4.3: NUL only in a literal8 (RFC 3516).
			return no("", "NUL in a message literal; use literal8")
		}
		return nil
	})
	var se *statusError
	if errors.As(err, &se) {
		return err
	}
	if err != nil {
		if _, ok := wire.AsError(err); ok {
			return err
		}
		return err
	}
	if err := ss.r.NextMessage(c); err != nil {
		return err
	}
	if c.Message != nil || len(c.Args) != 0 {
		return bad("MULTIAPPEND is not supported")
	}
	uid, err := dst.uidOfBase(base)
	if err != nil {
		return err
	}
	return okCode("APPENDUID "+strconv.FormatUint(uint64(dst.mbox.UIDValidity()), 10)+" "+strconv.FormatUint(uint64(uid), 10), "APPEND completed")
}
