package deliver

import (
	"errors"
	"fmt"
	"syscall"

	"mailroom/internal/fsx"
	"mailroom/maildir"
)

// Exit statuses (sysexits.h). Postfix defers on 75 only (and 71) and
// bounces the rest; qmail counts 64, 65, 77 as hard; Exim's pipe transport
// defers on 75 and 73 (ecosystem §2.3). So everything transient is 75.
const (
	ExitOK       = 0
	ExitUsage    = 64 // EX_USAGE: bad command line
	ExitDataErr  = 65 // EX_DATAERR: the message itself is unusable, or loops
	ExitNoUser   = 67 // EX_NOUSER: no such recipient
	ExitTempFail = 75 // EX_TEMPFAIL: try again later
	ExitNoPerm   = 77 // EX_NOPERM: delivery refused by policy
)

// outcome is the result of one recipient (or of the whole run): an exit
// status and the RFC 3463 enhanced status text that goes first on stderr.
// Postfix's local(8) and pipe(8) prefer such text over the exit status and
// quote it in the bounce, so the text names the problem and never a path.
type outcome struct {
	code   int
	status string // RFC 3463 "class.subject.detail"; "" when code is 0
	text   string
}

var delivered = outcome{code: ExitOK, status: "2.0.0", text: "delivered"}

func (o outcome) failed() bool { return o.code != ExitOK }

// String is the stderr line: "5.1.1 <a@b>: user unknown".
func (o outcome) String() string { return o.status + " " + o.text }

// worse picks the outcome that decides the exit status: any temporary
// failure wins, so the MTA retries (a retry may deliver again to recipients
// that already succeeded: at-least-once); then the first permanent one.
func worse(a, b outcome) outcome {
	switch {
	case !a.failed():
		return b
	case !b.failed():
		return a
	case b.code == ExitTempFail && a.code != ExitTempFail:
		return b
	}
	return a
}

func tempFail(status, format string, args ...any) outcome {
	return outcome{code: ExitTempFail, status: status, text: fmt.Sprintf(format, args...)}
}

func permFail(code int, status, format string, args ...any) outcome {
	return outcome{code: code, status: status, text: fmt.Sprintf(format, args...)}
}

// classify maps a delivery error to its outcome. overQuota is the
// [deliver] over_quota setting.
func classify(err error, overQuota string) outcome {
	switch {
	case err == nil:
		return delivered
	case errors.Is(err, errEmpty), errors.Is(err, errNoHeaders),
		errors.Is(err, errNUL), errors.Is(err, errFromLine):
		// RFC 3463 X.6.0: other or undefined media error.
		return permFail(ExitDataErr, "5.6.0", "%v", err)
	case errors.Is(err, errTooBig), errors.Is(err, maildir.ErrTooBig):
		// X.3.4: message too big for system.
		return permFail(ExitDataErr, "5.3.4", "message too big for system")
	case errors.Is(err, maildir.ErrQuota):
		// X.2.2: mailbox full.
		if overQuota == "bounce" {
			return permFail(ExitNoPerm, "5.2.2", "mailbox full")
		}
		return tempFail("4.2.2", "mailbox full")
	case errors.Is(err, maildir.ErrUnsafePath):
		// X.7.0: refused for safety (a path leaving the mail root).
		return permFail(ExitNoPerm, "5.7.0", "mailbox path refused as unsafe")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// X.3.1: mail system full.
		return tempFail("4.3.1", "mail system full")
	case errors.Is(err, fsx.ErrLockTimeout):
		// X.2.0: mailbox status, here a lock held too long.
		return tempFail("4.2.0", "mailbox locked, try again later")
	}
	// X.3.0: other mail system problem; transient until proven otherwise.
	return tempFail("4.3.0", "temporary local problem")
}
