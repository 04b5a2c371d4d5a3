package maildir

// A snapshot is a one-shot sync for a reader that keeps its own compact copy
// of the message list (pop3d at login): the same lock, UID assignment and
// uidlist writes as OpenMailbox, but the result is streamed to the caller
// instead of becoming a Mailbox's view, so a login on a big Maildir does not
// build (and throw away) a Message per file.

// SnapshotInfo describes the mailbox a Snapshot read.
type SnapshotInfo struct {
	UIDValidity uint32
	UIDNext     uint32
	Count       int // how many messages Message will be called with
}

// SnapshotMessage is one message of a Snapshot.
type SnapshotMessage struct {
	UID   uint32
	InNew bool // the file is in new/; otherwise in cur/
	// Name is the file name in its directory (base, then any info part
	// with the flags). It is valid only during the call (it may point
	// into a reused read buffer): copy what you keep.
	Name string
	// Size is the size on disk and VSize the size with CRLF line ends,
	// from the name's ,S= and ,W= or the uidlist's S and W fields; -1 if
	// neither says.
	Size, VSize int64
}

// SnapshotVisitor receives a Snapshot: Begin once, then Message for each
// message in ascending UID order. An error from either stops the Snapshot
// and is returned by it.
type SnapshotVisitor interface {
	Begin(SnapshotInfo) error
	Message(SnapshotMessage) error
}

// Snapshot syncs the Maildir at path exactly as OpenMailbox does (under
// dovecot-uidlist.lock, giving new files UIDs and writing the uidlist) and
// passes the messages to v without building a Mailbox. The lock is released
// before v sees the first message.
//
// When new/, cur/ and the uidlist are exactly as the last Snapshot's
// listing left them (see ListingName), their content is read from the
// listing cache instead: no directory listing and no lock.
func Snapshot(path string, v SnapshotVisitor) error {
	if err := checkMaildir(path); err != nil {
		return err
	}
	l, f, err := readListing(path)
	if err != nil {
		return err
	}
	if l != nil {
		defer f.Close()
		return emitListing(l, f, v)
	}
	d := newSyncDisk(path)
	sc, err := d.scan(syncScanOptions{done: func(sc syncScan) {
		// The cache only saves work: a Maildir where it cannot be
		// written (full disk) must still be readable, the slow way,
		// and a stale cache is never used.
		_ = d.writeListing(sc)
	}})
	if err != nil {
		return err
	}
	return d.emit(sc, v)
}

// emit passes a scan's messages to v in record (UID) order.
func (d *syncDisk) emit(sc syncScan, v SnapshotVisitor) error {
	u := d.ul.u
	count := 0
	for i, ei := range sc.recEntry {
		if sc.live(i, ei) {
			count++
		}
	}
	if err := v.Begin(SnapshotInfo{UIDValidity: u.UIDValidity, UIDNext: u.NextUID, Count: count}); err != nil {
		return err
	}
	for i, ei := range sc.recEntry {
		if !sc.live(i, ei) {
			continue
		}
		e := sc.files.entries[ei]
		size, vsize := syncSizes(u.Records[i], syncBase(e.name))
		msg := SnapshotMessage{UID: u.Records[i].UID, InNew: e.dir == syncNew, Name: e.name, Size: size, VSize: vsize}
		if err := v.Message(msg); err != nil {
			return err
		}
	}
	return nil
}
