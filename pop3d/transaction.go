package pop3d

import (
	"bufio"
	"errors"
	"strconv"
	"strings"

	"mailroom/maildir"
)

// parseMsgNumber reads a message number: decimal digits only, no sign
// (RFC 1939 §3), at most 9 of them so it cannot overflow.
func parseMsgNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// argMessage resolves a message-number argument to an index in the
// snapshot, answering -ERR itself when it is not one; ok false means the
// reply is written.
func (ss *session) argMessage(arg string) (i, n int, ok bool, err error) {
	n, valid := parseMsgNumber(arg)
	if !valid {
		return 0, 0, false, ss.fail("invalid message number")
	}
	i, exists := ss.drop.message(n)
	if !exists {
		return 0, 0, false, ss.fail("no such message")
	}
	return i, n, true, nil
}

// cmdStat: RFC 1939 §5, "+OK nn mm" counting messages not marked deleted.
func (ss *session) cmdStat(arg string) error {
	if arg != "" {
		return ss.fail("STAT takes no argument")
	}
	ss.reply("+OK %d %d", ss.drop.count, ss.drop.octets)
	return nil
}

// cmdList: RFC 1939 §5, scan listings "n size".
func (ss *session) cmdList(arg string) error {
	if arg != "" {
		i, n, ok, err := ss.argMessage(arg)
		if !ok {
			return err
		}
		ss.reply("+OK %d %d", n, ss.drop.size(i))
		return nil
	}
	ss.reply("+OK %d messages (%d octets)", ss.drop.count, ss.drop.octets)
	var buf []byte
	ss.drop.each(func(i int, e dropEntry) {
		buf = strconv.AppendInt(buf[:0], int64(i+1), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, e.size, 10)
		buf = append(buf, '\r', '\n')
		ss.out().Write(buf)
	})
	ss.reply(".")
	return nil
}

// cmdUidl: RFC 1939 §7, "n unique-id".
func (ss *session) cmdUidl(arg string) error {
	if arg != "" {
		i, n, ok, err := ss.argMessage(arg)
		if !ok {
			return err
		}
		ss.reply("+OK %d %s", n, ss.drop.uidl(i))
		return nil
	}
	ss.reply("+OK unique-id listing follows")
	var buf []byte
	ss.drop.each(func(i int, e dropEntry) {
		buf = strconv.AppendInt(buf[:0], int64(i+1), 10)
		buf = append(buf, ' ')
		buf = append(buf, ss.drop.uidlOf(e)...)
		buf = append(buf, '\r', '\n')
		ss.out().Write(buf)
	})
	ss.reply(".")
	return nil
}

// cmdDele marks a message; only QUIT removes it (RFC 1939 §6).
func (ss *session) cmdDele(arg string) error {
	i, n, ok, err := ss.argMessage(arg)
	if !ok {
		return err
	}
	ss.drop.msgs[i] |= dropDeleted
	ss.drop.count--
	ss.drop.octets -= ss.drop.size(i)
	ss.reply("+OK message %d deleted", n)
	return nil
}

// cmdRset unmarks every message marked deleted (RFC 1939 §5).
func (ss *session) cmdRset(arg string) error {
	if arg != "" {
		return ss.fail("RSET takes no argument")
	}
	for i := range ss.drop.msgs {
		if m := &ss.drop.msgs[i]; *m&dropDeleted != 0 {
			*m &^= dropDeleted
			ss.drop.count++
			ss.drop.octets += ss.drop.size(i)
		}
	}
	ss.reply("+OK maildrop has %d messages (%d octets)", ss.drop.count, ss.drop.octets)
	return nil
}

func (ss *session) cmdRetr(arg string) error {
	i, _, ok, err := ss.argMessage(arg)
	if !ok {
		return err
	}
	if err := ss.sendMessage(i, "+OK "+strconv.FormatInt(ss.drop.size(i), 10)+" octets", -1); err != nil {
		return err
	}
	ss.drop.msgs[i] |= dropRetrieved
	return nil
}

// cmdTop: RFC 1939 §7, "TOP msg n": the header, the blank line and n body
// lines.
func (ss *session) cmdTop(arg string) error {
	msgArg, linesArg, ok := strings.Cut(arg, " ")
	lines, valid := parseMsgNumber(linesArg)
	if !ok || !valid {
		return ss.fail("usage: TOP message lines")
	}
	i, _, ok, err := ss.argMessage(msgArg)
	if !ok {
		return err
	}
	return ss.sendMessage(i, "+OK top of message follows", lines)
}

// sendMessage writes the status line and the message as a multi-line
// response. A message that cannot be opened gets -ERR; a failure in the
// middle of the body cannot be reported in-band any more, so it closes
// the connection (the client sees no terminating line and knows).
func (ss *session) sendMessage(i int, status string, bodyLines int) error {
	f, err := ss.drop.open(i)
	if err != nil {
		if errors.Is(err, maildir.ErrExpunged) {
			ss.reply("-ERR message was removed by another program")
			return nil
		}
		ss.log.Error("retr", "uid", ss.drop.uid(i), "err", err)
		ss.reply("-ERR [SYS/TEMP] cannot read the message")
		return nil
	}
	defer f.Close()
	ss.reply("%s", status)
	// The file buffer is pooled like the reply writer: a session that
	// read its mail and idles keeps neither.
	buf := fileReaderPool.Get().(*bufio.Reader)
	defer fileReaderPool.Put(buf)
	err = copyMessage(ss.out(), f, buf, bodyLines)
	buf.Reset(nil)
	if err != nil {
		ss.log.Error("retr", "uid", ss.drop.uid(i), "err", err)
		return err
	}
	ss.reply(".")
	return nil
}

// update runs QUIT in the TRANSACTION state: RFC 1939 §6's UPDATE.
func (ss *session) update() error {
	n, err := ss.drop.update()
	if err != nil {
		// RFC 1939 §6: the server must say when it could not remove
		// every message marked deleted; SYS/TEMP is RFC 3206 §4's code
		// for a transient failure.
		ss.log.Error("update", "user", ss.address, "deleted", n, "err", err)
		ss.reply("-ERR [SYS/TEMP] some deleted messages not removed")
		return errClose
	}
	ss.log.Info("update", "user", ss.address, "deleted", n)
	ss.reply("+OK bye, %d messages deleted", n)
	return errClose
}
