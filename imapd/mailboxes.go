package imapd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// cmdCreate is CREATE (RFC 9051 §6.3.4). A trailing delimiter only says
// the client means to create children; parents are implied in Maildir++.
func (ss *session) cmdCreate(c *wire.Command) error {
	if len(c.Args) != 1 {
		return bad("CREATE needs a mailbox name")
	}
	name, err := wire.ParseMailbox(c.Args[0])
	if err != nil {
		return err
	}
	name = strings.TrimSuffix(name, delimiter)
	folder, err := ss.folderName(name)
	if err != nil {
		return err
	}
	if folder == "INBOX" {
		return no("ALREADYEXISTS", "INBOX always exists")
	}
	err = maildir.CreateFolder(ss.root, folder)
	switch {
	case errors.Is(err, maildir.ErrFolderExists):
		return no("ALREADYEXISTS", "mailbox already exists")
	case errors.Is(err, maildir.ErrFolderName):
		return errBadName
	}
	return err
}

// folderExists reports whether folder is a real mailbox.
func (ss *session) folderExists(folder string) (bool, error) {
	p, err := ss.folderPath(folder)
	if err != nil {
		return false, err
	}
	fi, err := os.Lstat(p + "/cur")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil && fi.IsDir(), err
}

// cmdDelete is DELETE (RFC 9051 §6.3.5): the folder and its messages;
// children stay.
func (ss *session) cmdDelete(c *wire.Command) error {
	folder, err := ss.folderArg(c)
	if err != nil {
		return err
	}
	if folder == "INBOX" {
		return no("CANNOT", "INBOX cannot be deleted")
	}
	if ok, err := ss.folderExists(folder); err != nil || !ok {
		if err != nil {
			return err
		}
		return no("NONEXISTENT", "no such mailbox")
	}
	if ss.sel != nil && ss.sel.name == ss.mailboxName(folder) {
		ss.unselect()
	}
	path, err := ss.folderPath(folder)
	if err != nil {
		return err
	}
	gone, err := quotaFolderUsage(path)
	if err != nil {
		return err
	}
	if err := maildir.DeleteFolder(ss.root, folder); err != nil {
		return err
	}
	// The folder's messages leave the quota as one "-bytes -count" line,
	// as Dovecot and Courier write it.
	ss.quotaAdd(path, -gone.bytes, -gone.count)
	return nil
}

// folderUsage is what a folder's messages count for in maildirsize.
type folderUsage struct{ bytes, count int64 }

// quotaFolderUsage is what the messages of the Maildir at path count for
// in maildirsize (maildir.FolderUsage). Nothing is counted when the user
// has no maildirsize or path is .Trash (not counted against the quota).
func quotaFolderUsage(path string) (folderUsage, error) {
	var u folderUsage
	if !maildir.QuotaCounted(path) {
		return u, nil
	}
	if _, err := os.Stat(filepath.Join(maildir.QuotaRoot(path), maildir.QuotaFileName)); err != nil {
		return u, nil // nothing tracked (or unreadable: the next check rebuilds)
	}
	bytes, count, err := maildir.FolderUsage(path)
	if err != nil {
		return u, fmt.Errorf("delete: %w", err)
	}
	return folderUsage{bytes: bytes, count: count}, nil
}

// cmdRename is RENAME (RFC 9051 §6.3.6). Renaming INBOX (which moves its
// messages) is refused for now, as RFC 9051 permits.
func (ss *session) cmdRename(c *wire.Command) error {
	if len(c.Args) != 2 {
		return bad("RENAME needs two mailbox names")
	}
	from, err := wire.ParseMailbox(c.Args[0])
	if err != nil {
		return err
	}
	to, err := wire.ParseMailbox(c.Args[1])
	if err != nil {
		return err
	}
	oldF, err := ss.folderName(from)
	if err != nil {
		return err
	}
	newF, err := ss.folderName(strings.TrimSuffix(to, delimiter))
	if err != nil {
		return err
	}
	switch {
	case oldF == "INBOX":
		return no("CANNOT", "renaming INBOX is not supported")
	case newF == "INBOX":
		return no("ALREADYEXISTS", "INBOX already exists")
	}
	err = maildir.RenameFolder(ss.root, oldF, newF)
	switch {
	case errors.Is(err, maildir.ErrFolderExists):
		return no("ALREADYEXISTS", "target mailbox already exists")
	case errors.Is(err, maildir.ErrNoFolder), errors.Is(err, os.ErrNotExist):
		return no("NONEXISTENT", "no such mailbox")
	case errors.Is(err, maildir.ErrFolderName):
		return errBadName
	}
	return err
}

// cmdSubscribe is SUBSCRIBE and UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8).
func (ss *session) cmdSubscribe(c *wire.Command) error {
	folder, err := ss.folderArg(c)
	if err != nil {
		return err
	}
	if c.Name == "UNSUBSCRIBE" {
		return maildir.Unsubscribe(ss.root, folder)
	}
	return maildir.Subscribe(ss.root, folder)
}

// cmdStatus is STATUS (RFC 9051 §6.3.11, RFC 8438 SIZE).
func (ss *session) cmdStatus(c *wire.Command) error {
	name, items, err := wire.ParseStatus(c.Args)
	if err != nil {
		return err
	}
	if err := checkStatusItems(items); err != nil {
		return err
	}
	if ss.rev2 && slices.Contains(items, "RECENT") {
		// RFC 9051 §6.3.11 and appendix E: IMAP4rev2 has no \Recent
		// and no RECENT status item.
		return bad("unknown STATUS item RECENT")
	}
	folder, err := ss.folderName(name)
	if err != nil {
		return err
	}
	return ss.writeStatus(folder, items)
}

func checkStatusItems(items []string) error {
	for _, it := range items {
		switch it {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "DELETED", "HIGHESTMODSEQ":
		default:
			return bad("unknown STATUS item %s", it)
		}
	}
	return nil
}

// writeStatus writes "* STATUS name (...)" from the shared view.
// HIGHESTMODSEQ (RFC 7162 §3.1.9) makes the session CONDSTORE-aware, in
// STATUS and in LIST's RETURN (STATUS ...) alike.
func (ss *session) writeStatus(folder string, items []string) error {
	if slices.Contains(items, "HIGHESTMODSEQ") {
		ss.enableCondStore()
	}
	path, err := ss.folderPath(folder)
	if err != nil {
		return err
	}
	v, err := ss.srv.views.open(path, ss.log)
	if errors.Is(err, maildir.ErrNotMaildir) || errors.Is(err, os.ErrNotExist) {
		return no("NONEXISTENT", "no such mailbox")
	}
	if err != nil {
		return err
	}
	defer ss.srv.views.release(v)
	v.mu.Lock()
	if err := v.syncLocked(); err != nil {
		v.mu.Unlock()
		return err
	}
	var unseen, recent, deleted, size int64
	for _, m := range v.msgs {
		if m.flags&maildir.FlagSeen == 0 {
			unseen++
		}
		if m.flags&maildir.FlagTrashed != 0 {
			deleted++
		}
		size += max(m.size, 0)
	}
	if slices.Contains(items, "RECENT") && !ss.rev2 {
		n, err := v.recentLocked(ss.sel)
		if err != nil {
			v.mu.Unlock()
			return err
		}
		recent = int64(n)
	}
	values := map[string]int64{
		"MESSAGES": int64(len(v.msgs)), "UIDNEXT": int64(v.mbox.UIDNext()),
		"UIDVALIDITY": int64(v.mbox.UIDValidity()), "UNSEEN": unseen,
		"RECENT": recent, "SIZE": size, "DELETED": deleted,
	}
	highestModSeq := v.highestModSeqLocked()
	v.mu.Unlock()
	ss.w.Untagged()
	ss.w.Raw("STATUS ")
	ss.w.AString(ss.mailboxName(folder))
	ss.w.Raw(" (")
	for i, it := range items {
		if i > 0 {
			ss.w.SP()
		}
		ss.w.Raw(it + " ")
		if it == "HIGHESTMODSEQ" {
			ss.w.Number(highestModSeq)
			continue
		}
		ss.w.Number(uint64(values[it]))
	}
	ss.w.Raw(")")
	ss.w.CRLF()
	return nil
}
