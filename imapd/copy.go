package imapd

import (
	"errors"
	"os"
	"strconv"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// openTarget opens the view of the mailbox a COPY, MOVE or APPEND writes
// to; a missing one is NO [TRYCREATE] (RFC 9051 §6.4.7).
func (ss *session) openTarget(name string) (*view, error) {
	folder, err := ss.folderName(name)
	if err != nil {
		return nil, err
	}
	path, err := ss.folderPath(folder)
	if err != nil {
		return nil, err
	}
	v, err := ss.srv.views.open(path, ss.log)
	if errors.Is(err, maildir.ErrNotMaildir) || errors.Is(err, os.ErrNotExist) {
		return nil, no("TRYCREATE", "no such mailbox")
	}
	return v, err
}

// cmdCopy is COPY, MOVE (RFC 6851) and their UID forms, answering
// COPYUID (RFC 4315 §3). COPY writes new files (flags and INTERNALDATE
// kept, keywords carried by name); MOVE renames them.
func (ss *session) cmdCopy(c *wire.Command) error {
	set, name, err := wire.ParseCopy(c.Args)
	if err != nil {
		return err
	}
	refs, err := ss.resolve(set, c.UID)
	if err != nil {
		return err
	}
	move := c.Name == "MOVE"
	if move && ss.sel.readOnly {
		return no("READ-ONLY", "mailbox is read-only")
	}
	dst, err := ss.openTarget(name)
	if err != nil {
		return err
	}
	defer ss.srv.views.release(dst)
	src := ss.sel.view
	if move && dst == src {
		return no("CANNOT", "source and target mailbox are the same")
	}
	var srcUIDs, dstUIDs []uint32
	for _, r := range refs {
		var base string
		if move {
			base, err = ss.moveOne(src, dst, r.uid)
		} else {
			base, err = ss.copyOne(src, dst, r.uid)
		}
		if errors.Is(err, errExpunged) {
			continue
		}
		if err != nil {
			return err
		}
		uid, err := dst.uidOfBase(base)
		if err != nil {
			return err
		}
		srcUIDs = append(srcUIDs, r.uid)
		dstUIDs = append(dstUIDs, uid)
	}
	if len(srcUIDs) == 0 {
		if len(refs) > 0 {
			return errExpunged
		}
		return nil
	}
	code := "COPYUID " + strconv.FormatUint(uint64(dst.mbox.UIDValidity()), 10) + " " + uidList(srcUIDs) + " " + uidList(dstUIDs)
	if move {
		// RFC 6851 §4.3: COPYUID in an untagged OK before the EXPUNGEs,
		// which dispatch sends from the view's events.
		ss.untagged("OK [" + code + "] moved")
		return nil
	}
	return okCode(code, c.Name+" completed")
}

// copyOne writes a copy of uid into dst.
func (ss *session) copyOne(src, dst *view, uid uint32) (string, error) {
	info, ok := src.mbox.Lookup(uid)
	vm, ok2 := src.lookup(uid)
	if !ok || !ok2 {
		return "", errExpunged
	}
	kw, err := dst.keywordSlots(src.mbox.KeywordList().Names(vm.kw), true)
	if err != nil && !errors.Is(err, maildir.ErrTooManyKeywords) {
		return "", err
	}
	f, err := os.Open(info.Path)
	if errors.Is(err, os.ErrNotExist) {
		if err := src.sync(); err != nil {
			return "", err
		}
		if info, ok = src.mbox.Lookup(uid); !ok {
			return "", errExpunged
		}
		f, err = os.Open(info.Path)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	return writeMessage(dst.path, f, vm.flags, kw, fi.ModTime(), nil)
}

// moveOne moves uid into dst by rename (maildir.Mailbox.MoveTo) and
// tells the source's sessions it is gone.
func (ss *session) moveOne(src, dst *view, uid uint32) (string, error) {
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.index(uid) < 0 {
		return "", errExpunged
	}
	base, err := src.mbox.MoveTo(uid, dst.mbox)
	if errors.Is(err, maildir.ErrExpunged) {
		src.removeLocked(uid)
		return "", errExpunged
	}
	if err != nil {
		return "", err
	}
	src.removeLocked(uid)
	return base, nil
}
