package imapd

import (
	"errors"
	"strconv"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// cmdAppend is APPEND (RFC 9051 §6.3.12) and MULTIAPPEND (RFC 3502), with
// APPENDUID (RFC 4315 §3) naming every new message. Each message is
// streamed from the connection into tmp/, never held in memory; flags and
// the internal date are kept. All of them become visible together, or,
// on any failure (a bad later message, quota, the disk), none does
// (stagedBatch).
func (ss *session) cmdAppend(c *wire.Command) error {
	if c.Message == nil {
		return bad("APPEND needs a message literal")
	}
	name, opts, err := wire.ParseAppend(c.Args)
	if err != nil {
		return err
	}
	dst, err := ss.openTarget(name)
	if err != nil {
		return err
	}
	defer ss.srv.views.release(dst)
	batch := newStagedBatch(dst.path)
	defer func() {
		if err := batch.discard(); err != nil {
			ss.log.Warn("append", "cleanup", err)
		}
	}()
	var total int64
	for {
		msg := c.Message
		// RFC 3502 §6: the whole command is bounded too, not only each
		// message (APPENDLIMIT, which the Reader enforces).
		total += msg.Size()
		if len(batch.msgs) >= multiAppendMaxMessages || total > ss.srv.multiAppendLimit() {
			return no("LIMIT", "too many or too large messages in one APPEND")
		}
		// The literal's size is what the message will take on disk: a
		// command over quota is refused before its data is written.
		if err := ss.quotaCheck(dst.path, batch.size()+msg.Size(), int64(len(batch.msgs))+1); err != nil {
			return err
		}
		if err := ss.appendStage(dst, batch, msg, opts); err != nil {
			return err
		}
		if err := ss.r.NextMessage(c); err != nil {
			return err
		}
		if c.Message == nil {
			if len(c.Args) != 0 {
				return bad("unexpected arguments after the last message")
			}
			break
		}
		if opts, err = wire.ParseAppendNext(c.Args); err != nil {
			return err
		}
	}
	if err := ss.quotaCheck(dst.path, batch.size(), int64(len(batch.msgs))); err != nil {
		return err
	}
	bases, err := batch.commit()
	if err != nil {
		return err
	}
	ss.quotaAdd(dst.path, batch.size(), int64(len(bases)))
	uids, err := dst.uidsOfBases(bases)
	if err != nil {
		return err
	}
	return okCode("APPENDUID "+strconv.FormatUint(uint64(dst.mbox.UIDValidity()), 10)+" "+uidList(uids), "APPEND completed")
}

// appendStage writes one APPEND message literal to dst's tmp/.
func (ss *session) appendStage(dst *view, batch *stagedBatch, msg *wire.LiteralReader, opts wire.AppendOptions) error {
	sys, kwNames, err := splitFlags(opts.Flags)
	if err != nil {
		return err
	}
	kw, err := dst.keywordSlots(kwNames, true)
	if err != nil && !errors.Is(err, maildir.ErrTooManyKeywords) {
		return err
	}
	return batch.stage(msg, sys, kw, opts.Date, func() error {
		if msg.SawNUL() && !msg.Binary() {
			// RFC 9051 §4.3: NUL only in a literal8 (RFC 3516).
			return no("", "NUL in a message literal; use literal8")
		}
		return nil
	})
}
