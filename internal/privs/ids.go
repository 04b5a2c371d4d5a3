package privs

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// User returns the uid and primary gid of name, a login name or a numeric
// uid (as mailroom.conf's user keys allow).
func User(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if _, convErr := strconv.Atoi(name); convErr != nil || !errors.As(err, &unknown) {
			return 0, 0, fmt.Errorf("user %q: %w", name, err)
		}
		if u, err = user.LookupId(name); err != nil {
			return 0, 0, fmt.Errorf("user %q: %w", name, err)
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", name, err)
	}
	return uid, gid, nil
}

// MailIDs returns the credentials of a daemon that works in the Maildirs
// (deliver's queue daemon, pop3d, imapd) once it has left root: the owner
// of mail_root (vmail), who owns every Maildir, and the primary group of
// groupUser, the [smtpd] user, whose group is the one mailroom's daemons
// share: it owns the spool and may read the passwd file and the TLS key
// (docs/security.md). When groupUser does not exist, mail_root's own group
// is used. Root, as uid or gid, is an error: the caller must not serve.
func MailIDs(mailRoot, groupUser string) (uid, gid int, err error) {
	uid, gid, err = Owner(mailRoot)
	if err != nil {
		return 0, 0, fmt.Errorf("mail_root: %w", err)
	}
	if _, g, err := User(groupUser); err == nil {
		gid = g
	}
	switch {
	case uid == 0:
		return 0, 0, fmt.Errorf("mail_root %s belongs to root", mailRoot)
	case gid == 0:
		return 0, 0, fmt.Errorf("the daemons' group (that of user %q, else of mail_root %s) is root", groupUser, mailRoot)
	}
	return uid, gid, nil
}

// ErrRoot is wrapped when a daemon would have to serve as root.
var ErrRoot = errors.New("refusing to serve as root")

// DropToMail makes a daemon started as root that works in the Maildirs
// (pop3d, imapd) continue with the ids of MailIDs; anyone else keeps its
// ids. Every failure wraps ErrRoot.
func DropToMail(mailRoot, groupUser string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := MailIDs(mailRoot, groupUser)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRoot, err)
	}
	if err := DropTo(uid, gid); err != nil {
		return fmt.Errorf("%w: becoming uid %d gid %d: %w", ErrRoot, uid, gid, err)
	}
	return nil
}
