package imapd

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"mailroom/imapd/wire"
	"mailroom/internal/account"
	"mailroom/maildir"
)

// QUOTA (RFC 9208) over Maildir++ maildirsize. A user has one quota root,
// named "" (RFC 9208 §3.2 allows any name; Maildir++ has one maildirsize
// per user, at the root of the Maildir, covering every folder but .Trash).
// Its resources are STORAGE, in KiB (RFC 9208 §5.1, rounded up as
// Dovecot does), and MESSAGE (§5.2). The limit is the user's quota rule in
// the account table (userdb_quota_rule, set by "mailroom user"), else the
// configured default ([deliver] quota, quota_messages: Server.DefaultQuota),
// else the definition line of maildirsize: the order deliver follows. SETQUOTA is refused: QUOTASET is not advertised.

// quotaRootName is the name of every user's single quota root.
const quotaRootName = ""

// quotaUsers is the part of the account table (*account.DB) that knows
// per-user quota rules; a Users without it leaves maildirsize to decide.
type quotaUsers interface {
	Lookup(address string) (*account.User, bool)
}

// extCapabilities are the capabilities of QUOTA, MULTIAPPEND and
// COMPRESS, offered after login.
func (ss *session) extCapabilities() []string {
	caps := []string{"QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "MULTIAPPEND"}
	if !ss.compressing() {
		caps = append(caps, "COMPRESS=DEFLATE")
	}
	return caps
}

// quotaLimit returns the logged-in user's quota; zero means none.
func (ss *session) quotaLimit() (maildir.Quota, error) {
	if ss.srv.Users != nil {
		if qu, ok := ss.srv.Users().(quotaUsers); ok {
			if u, ok := qu.Lookup(ss.user); ok {
				if q, ok := u.Quota(); ok {
					return maildir.Quota{Bytes: q.Bytes, Messages: q.Messages}, nil
				}
			}
		}
	}
	if !ss.srv.DefaultQuota.Unlimited() {
		return ss.srv.DefaultQuota, nil
	}
	q, _, err := maildir.ReadQuotaDefinition(ss.root)
	return q, err
}

// quotaCheck answers NO [OVERQUOTA] (RFC 9208 §4.3) if count more
// messages of size bytes in all, stored in the Maildir at path, would take
// the user over quota. Messages stored in .Trash do not count.
func (ss *session) quotaCheck(path string, size, count int64) error {
	if !maildir.QuotaCounted(path) || count == 0 {
		return nil
	}
	q, err := ss.quotaLimit()
	if err != nil {
		return err
	}
	err = maildir.CheckQuota(ss.root, q, size, count)
	if errors.Is(err, maildir.ErrQuota) {
		ss.log.Info("quota", "refused_bytes", size, "refused_messages", count, "err", err)
		return no("OVERQUOTA", "quota exceeded")
	}
	return err
}

// quotaAdd records messages stored in (count > 0) or taken out of
// (count < 0) the Maildir at path in maildirsize. The messages are
// already there or gone, so a failure is logged, not reported: the file
// is then removed, and the next check counts the Maildir anew.
func (ss *session) quotaAdd(path string, size, count int64) {
	if !maildir.QuotaCounted(path) || count == 0 {
		return
	}
	quotaRecord(ss.root, size, count, ss.log.Error)
}

func quotaRecord(root string, size, count int64, logError func(string, ...any)) {
	err := maildir.AddQuotaUsage(root, size, count)
	if err == nil {
		return
	}
	logError("quota", "root", root, "err", err)
	if rerr := os.Remove(filepath.Join(root, maildir.QuotaFileName)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		logError("quota", "root", root, "err", rerr)
	}
}

// quotaExpunge notes what uids count for before an expunge of v; the
// function it returns, run after the expunge with v.mu still held, takes
// those really gone off maildirsize ("-bytes -count"). Nothing is done
// when the user has no maildirsize (nothing is tracked) or v is .Trash.
func (v *view) quotaExpunge(uids []uint32) func() {
	root := maildir.QuotaRoot(v.path)
	if len(uids) == 0 || !maildir.QuotaCounted(v.path) {
		return func() {}
	}
	if _, err := os.Stat(filepath.Join(root, maildir.QuotaFileName)); err != nil {
		return func() {}
	}
	sizes := make(map[uint32]int64, len(uids))
	for _, uid := range uids {
		if m, ok := v.mbox.Lookup(uid); ok {
			if s, ok := maildir.QuotaSize(m); ok {
				sizes[uid] = s
			}
		}
	}
	return func() {
		var size, count int64
		for uid, s := range sizes {
			if _, still := v.mbox.Lookup(uid); !still {
				size += s
				count++
			}
		}
		if count > 0 {
			quotaRecord(root, -size, -count, v.log.Error)
		}
	}
}

// quotaUsage returns the user's usage against q, bringing maildirsize in
// line with q first (Maildir++ rebuilds a file whose definition differs).
func (ss *session) quotaUsage(q maildir.Quota) (size, count int64, err error) {
	if err := maildir.CheckQuota(ss.root, q, 0, 0); err != nil && !errors.Is(err, maildir.ErrQuota) {
		return 0, 0, err
	}
	return maildir.ReadQuotaUsage(ss.root)
}

// kib converts octets to KiB for STORAGE, rounded up as Dovecot does
// (so both report the same figures from one maildirsize).
func kib(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return n/1024 + min(n%1024, 1)
}

// writeQuota sends "* QUOTA "" (STORAGE used limit MESSAGE used limit)"
// with only the resources that have a limit (RFC 9208 §7.1).
func (ss *session) writeQuota(q maildir.Quota) error {
	size, count, err := ss.quotaUsage(q)
	if err != nil {
		return err
	}
	var res []string
	if q.Bytes > 0 {
		res = append(res, "STORAGE "+strconv.FormatInt(kib(size), 10)+" "+strconv.FormatInt(kib(q.Bytes), 10))
	}
	if q.Messages > 0 {
		res = append(res, "MESSAGE "+strconv.FormatInt(max(count, 0), 10)+" "+strconv.FormatInt(q.Messages, 10))
	}
	ss.w.Untagged()
	ss.w.Raw("QUOTA ")
	ss.w.AString(quotaRootName)
	ss.w.Raw(" (" + strings.Join(res, " ") + ")")
	ss.w.CRLF()
	return nil
}

// cmdGetQuotaRoot is GETQUOTAROOT (RFC 9208 §4.3.2): every mailbox of the
// user is under the root "", which exists only while a limit is set (a
// QUOTA response must list at least one resource).
func (ss *session) cmdGetQuotaRoot(c *wire.Command) error {
	folder, err := ss.folderArg(c)
	if err != nil {
		return err
	}
	if folder != "INBOX" {
		ok, err := ss.folderExists(folder)
		if err != nil {
			return err
		}
		if !ok {
			return no("NONEXISTENT", "no such mailbox")
		}
	}
	q, err := ss.quotaLimit()
	if err != nil {
		return err
	}
	ss.w.Untagged()
	ss.w.Raw("QUOTAROOT ")
	ss.w.AString(ss.mailboxName(folder))
	if q.Unlimited() {
		ss.w.CRLF()
		return nil
	}
	ss.w.SP()
	ss.w.AString(quotaRootName)
	ss.w.CRLF()
	return ss.writeQuota(q)
}

// cmdGetQuota is GETQUOTA (RFC 9208 §4.2).
func (ss *session) cmdGetQuota(c *wire.Command) error {
	args, err := wire.ParseAStrings(c.Args, 1)
	if err != nil {
		return err
	}
	q, err := ss.quotaLimit()
	if err != nil {
		return err
	}
	if args[0] != quotaRootName || q.Unlimited() {
		return no("NONEXISTENT", "no such quota root")
	}
	return ss.writeQuota(q)
}

// cmdSetQuota is SETQUOTA (RFC 9208 §4.1): quotas are the
// administrator's ("mailroom user --quota", mailroom.conf), never the
// client's.
func (ss *session) cmdSetQuota(c *wire.Command) error {
	if len(c.Args) != 2 || c.Args[1].Kind != wire.KindList {
		return bad("SETQUOTA needs a quota root and a resource list")
	}
	if _, ok := c.Args[0].AString(); !ok {
		return bad("SETQUOTA needs a quota root")
	}
	return no("NOPERM", "quotas are set by the administrator")
}
