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
	if move {
		srcUIDs, dstUIDs, err = ss.moveAll(src, dst, refs)
	} else {
		srcUIDs, dstUIDs, err = ss.copyAll(src, dst, refs)
	}
	if err != nil {
		return err
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
		return ss.expungedOK(c.Name)
	}
	return okCode(code, c.Name+" completed")
}

// copyAll copies refs into dst, all or nothing (RFC 9051 §6.4.7: a failed
// COPY leaves the target as it was): every copy is staged in dst's tmp/,
// the quota checked for them together, then all are committed. Messages
// expunged meanwhile are skipped. It returns the source UIDs copied and
// their new UIDs.
func (ss *session) copyAll(src, dst *view, refs []msgRef) (srcUIDs, dstUIDs []uint32, err error) {
	batch := newStagedBatch(dst.path)
	defer func() {
		if err := batch.discard(); err != nil {
			ss.log.Warn("copy", "cleanup", err)
		}
	}()
	for _, r := range refs {
		err := ss.copyOne(src, dst, r.uid, batch)
		if errors.Is(err, errExpunged) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		srcUIDs = append(srcUIDs, r.uid)
	}
	if len(srcUIDs) == 0 {
		return nil, nil, nil
	}
	if err := ss.quotaCheck(dst.path, batch.size(), int64(len(batch.msgs))); err != nil {
		return nil, nil, err
	}
	bases, err := batch.commit()
	if err != nil {
		return nil, nil, err
	}
	ss.quotaAdd(dst.path, batch.size(), int64(len(bases)))
	dstUIDs, err = dst.uidsOfBases(bases)
	return srcUIDs, dstUIDs, err
}

// moveAll moves refs into dst one by one, each a rename, so a message is
// never in both places; after a failure part way the messages moved so
// far stay moved and leave the source with EXPUNGE. Moving between
// .Trash, which the
// Maildir++ quota does not count, and a counted folder changes the usage:
// out of .Trash is checked against the quota first (NO [OVERQUOTA]), both
// ways are recorded in maildirsize.
func (ss *session) moveAll(src, dst *view, refs []msgRef) (srcUIDs, dstUIDs []uint32, err error) {
	sign := quotaMoveSign(src.path, dst.path)
	var sizes map[uint32]int64
	if sign != 0 {
		var total int64
		sizes = make(map[uint32]int64, len(refs))
		for _, r := range refs {
			if m, ok := src.mbox.Lookup(r.uid); ok {
				if s, ok := maildir.QuotaSize(m); ok {
					sizes[r.uid] = s
					total += s
				}
			}
		}
		if sign > 0 {
			if err := ss.quotaCheck(dst.path, total, int64(len(sizes))); err != nil {
				return nil, nil, err
			}
		}
	}
	var moved, movedCount int64
	defer func() {
		if movedCount > 0 {
			quotaRecord(ss.root, int64(sign)*moved, int64(sign)*movedCount, ss.log.Error)
		}
	}()
	for _, r := range refs {
		base, err := ss.moveOne(src, dst, r.uid)
		if errors.Is(err, errExpunged) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if s, ok := sizes[r.uid]; ok {
			moved += s
			movedCount++
		}
		uid, err := dst.uidOfBase(base)
		if err != nil {
			return nil, nil, err
		}
		srcUIDs = append(srcUIDs, r.uid)
		dstUIDs = append(dstUIDs, uid)
	}
	return srcUIDs, dstUIDs, nil
}

// quotaMoveSign is +1 when a move from src to dst brings messages under
// the quota (out of .Trash), -1 when it takes them out of it, else 0.
func quotaMoveSign(src, dst string) int {
	switch a, b := maildir.QuotaCounted(src), maildir.QuotaCounted(dst); {
	case !a && b:
		return 1
	case a && !b:
		return -1
	}
	return 0
}

// copyOne stages a copy of uid for dst in batch.
func (ss *session) copyOne(src, dst *view, uid uint32, batch *stagedBatch) error {
	info, ok := src.mbox.Lookup(uid)
	vm, ok2 := src.lookup(uid)
	if !ok || !ok2 {
		return errExpunged
	}
	kw, err := dst.keywordSlots(src.mbox.KeywordList().Names(vm.kw), true)
	if err != nil && !errors.Is(err, maildir.ErrTooManyKeywords) {
		return err
	}
	f, err := os.Open(info.Path)
	if errors.Is(err, os.ErrNotExist) {
		if err := src.sync(); err != nil {
			return err
		}
		if info, ok = src.mbox.Lookup(uid); !ok {
			return errExpunged
		}
		f, err = os.Open(info.Path)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return batch.stage(f, vm.flags, kw, fi.ModTime(), nil)
}

// moveOne moves uid into dst by rename (maildir.Mailbox.MoveTo) and
// tells the source's sessions it is gone.
func (ss *session) moveOne(src, dst *view, uid uint32) (string, error) {
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.index(uid) < 0 {
		return "", errExpunged
	}
	src.expungeBelow = src.highestModSeqLocked()
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
