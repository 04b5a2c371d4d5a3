package imapd

import (
	"errors"
	"fmt"

	"mailroom/imapd/wire"
)

// command is one entry of the command table.
type command struct {
	states state // the states it is valid in
	uid    bool  // may carry the UID prefix
	// expungeOK: EXPUNGE responses may be sent at the end of the command.
	// RFC 9051 §7.5.1 and RFC 3501 §7.4.1 forbid them during FETCH, STORE
	// and SEARCH (the non-UID forms), as the client's sequence numbers
	// would shift under it.
	expungeOK bool
	handler   func(ss *session, c *wire.Command) error
}

// commands maps command names (upper case) to their handlers. A handler
// writes its untagged responses; its result decides the tagged one (see
// dispatch).
var commands map[string]command

func init() {
	commands = map[string]command{
		"CAPABILITY":   {states: anyState, expungeOK: true, handler: (*session).cmdCapability},
		"NOOP":         {states: anyState, expungeOK: true, handler: (*session).cmdNoop},
		"LOGOUT":       {states: anyState, handler: (*session).cmdLogout},
		"ID":           {states: anyState, expungeOK: true, handler: (*session).cmdID},
		"STARTTLS":     {states: stateNotAuth, handler: (*session).cmdStartTLS},
		"LOGIN":        {states: stateNotAuth, handler: (*session).cmdLogin},
		"AUTHENTICATE": {states: stateNotAuth, handler: (*session).cmdAuthenticate},
		"ENABLE":       {states: authState, expungeOK: true, handler: (*session).cmdEnable},
		"NAMESPACE":    {states: authState, expungeOK: true, handler: (*session).cmdNamespace},
		"SELECT":       {states: authState, handler: (*session).cmdSelect},
		"EXAMINE":      {states: authState, handler: (*session).cmdSelect},
		"CREATE":       {states: authState, expungeOK: true, handler: (*session).cmdCreate},
		"DELETE":       {states: authState, expungeOK: true, handler: (*session).cmdDelete},
		"RENAME":       {states: authState, expungeOK: true, handler: (*session).cmdRename},
		"SUBSCRIBE":    {states: authState, expungeOK: true, handler: (*session).cmdSubscribe},
		"UNSUBSCRIBE":  {states: authState, expungeOK: true, handler: (*session).cmdSubscribe},
		"LIST":         {states: authState, expungeOK: true, handler: (*session).cmdList},
		"LSUB":         {states: authState, expungeOK: true, handler: (*session).cmdList},
		"STATUS":       {states: authState, expungeOK: true, handler: (*session).cmdStatus},
		"APPEND":       {states: authState, expungeOK: true, handler: (*session).cmdAppend},
		"IDLE":         {states: authState, expungeOK: true, handler: (*session).cmdIdle},
		"CHECK":        {states: stateSelected, expungeOK: true, handler: (*session).cmdNoop},
		"CLOSE":        {states: stateSelected, handler: (*session).cmdClose},
		"UNSELECT":     {states: stateSelected, handler: (*session).cmdClose},
		"EXPUNGE":      {states: stateSelected, uid: true, expungeOK: true, handler: (*session).cmdExpunge},
		"SEARCH":       {states: stateSelected, uid: true, handler: (*session).cmdSearch},
		"FETCH":        {states: stateSelected, uid: true, handler: (*session).cmdFetch},
		"STORE":        {states: stateSelected, uid: true, handler: (*session).cmdStore},
		"COPY":         {states: stateSelected, uid: true, expungeOK: true, handler: (*session).cmdCopy},
		"MOVE":         {states: stateSelected, uid: true, expungeOK: true, handler: (*session).cmdCopy},
		// IMAPEXT: COMPRESS (RFC 4978), QUOTA (RFC 9208).
		"COMPRESS":     {states: authState, handler: (*session).cmdCompress},
		"GETQUOTAROOT": {states: authState, expungeOK: true, handler: (*session).cmdGetQuotaRoot},
		"GETQUOTA":     {states: authState, expungeOK: true, handler: (*session).cmdGetQuota},
		"SETQUOTA":     {states: authState, expungeOK: true, handler: (*session).cmdSetQuota},
	}
}

// errNoTagged: the handler wrote its tagged response itself.
var errNoTagged = errors.New("tagged response written")

// statusError is a handler's tagged answer other than a plain OK.
type statusError struct {
	status string // OK, NO or BAD
	code   string
	text   string
}

func (e *statusError) Error() string { return e.status + " " + e.text }

func no(code, format string, args ...any) error {
	return &statusError{status: "NO", code: code, text: fmt.Sprintf(format, args...)}
}

func bad(format string, args ...any) error {
	return &statusError{status: "BAD", text: fmt.Sprintf(format, args...)}
}

func okCode(code, text string) error { return &statusError{status: "OK", code: code, text: text} }

// dispatch runs one command and writes its tagged response. It returns an
// error only when the session must end.
func (ss *session) dispatch(c *wire.Command) error {
	cmd, known := commands[c.Name]
	var err error
	switch {
	case !known:
		err = bad("unknown command")
	case c.UID && !cmd.uid:
		err = bad("UID %s is not a command", c.Name)
	case cmd.states&ss.state == 0:
		err = bad("%s not allowed now", c.Name)
	default:
		// RFC 5182: "$" in a sequence set is resolved first.
		var done bool
		if done, err = ss.resolveSavedArg(c); !done && err == nil {
			err = cmd.handler(ss, c)
		}
	}
	if errors.Is(err, errClose) {
		return err
	}
	if errors.Is(err, errNoTagged) {
		return nil
	}
	// A protocol error of a typed parser is a BAD.
	if e, ok := wire.AsError(err); ok {
		err = &statusError{status: e.StatusWord(), code: e.Code, text: e.Text}
	}
	var se *statusError
	switch {
	case err == nil:
		se = &statusError{status: "OK", text: c.Name + " completed"}
	case errors.As(err, &se):
	default:
		// The connection or the disk failed: the client hears NO, the
		// log says why; a write error ends the session on the next flush.
		ss.log.Error("command", "command", c.Name, "err", err)
		se = &statusError{status: "NO", code: "SERVERBUG", text: "internal error"}
	}
	if ss.state == stateSelected && known {
		ss.sendUpdates(cmd.expungeOK || c.UID)
	}
	if se.status == "BAD" {
		if ss.countBad() {
			ss.w.Status(c.Tag, "BAD", se.code, se.text)
			ss.w.Status("", "BYE", "", "too many errors, closing connection")
			return errClose
		}
	} else {
		ss.bad = 0
	}
	ss.w.Status(c.Tag, se.status, se.code, se.text)
	if c.Message != nil {
		// IMAPEXT: an APPEND answered before its message was read. What
		// is buffered is the rest of this command, which the Reader
		// skips, so flushIfIdle would hold the answer back while the
		// client waits for it: send it now.
		if err := ss.w.Flush(); err != nil {
			return fmt.Errorf("%w: %w", errClose, err)
		}
	}
	return nil
}
