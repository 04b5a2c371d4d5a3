// Package maildir is mailroom's storage engine: the one place that reads and
// writes Maildirs, shared by deliver, imapd and pop3d.
//
// On-disk contract (see mailroom-maildir(5) and docs/formats.md):
//
//   - A mailbox is a Maildir: tmp/, new/, cur/ on one file system. A message
//     is written in tmp/, fsync'd, then linked or renamed into new/, and new/
//     is fsync'd before a delivery is reported done. Nothing half-written is
//     ever visible in new/ or cur/.
//   - File names are <secs>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<crlf-size>
//     with an optional :2,<flags> info part; flags D F P R S T in ASCII order,
//     then keyword slots a–z.
//   - A user's Maildir is a Maildir++ root: folders are sibling directories
//     .Name and .Parent.Child (names in modified UTF-7), each holding a
//     maildirfolder file; a folder's parents need not exist. Folders are
//     created under tmp/ and renamed into place, and deleted by renaming
//     them under tmp/ first, so no half-made folder is ever visible.
//   - subscriptions is in Dovecot 2.3's version 2 layout: "V\t2\n\n", then
//     one name per line, levels in modified UTF-7 separated by TAB.
//   - UIDs, UIDVALIDITY and keyword names live in Dovecot's dovecot-uidlist
//     (version 3) and dovecot-keywords files, written under
//     dovecot-uidlist.lock exactly as Dovecot writes them, so a Maildir moves
//     between Dovecot and mailroom with UIDs, flags and keywords intact.
//   - mailroom-listing at the root caches the last listing of a Snapshot
//     or of OpenMailbox's first sync (UIDs, file names, new/ and cur/'s
//     inode and times, the uidlist's size and CRC-32C), written under
//     dovecot-uidlist.lock and renamed into place. It is only a cache:
//     used only while both directories are exactly as recorded and were
//     stated over a second after their last change, and the uidlist's
//     content is unchanged; a torn, stale or missing one makes a Snapshot
//     or an OpenMailbox list the directories. Dovecot ignores it; deleting
//     it is always safe.
//   - mailroom-modseq at the root holds MODSEQs (RFC 7162), expunges (for
//     QRESYNC's VANISHED) and \Recent, shared by every process: a header
//     (magic "MRMQ", UIDVALIDITY, base) and an append-only log of 24-byte
//     CRC-32C records — "UID has these flags and keywords as of modseq",
//     "UID expunged at modseq", "\Recent claimed up to UID" — appended
//     under flock(2) and fdatasync'd before the lock is dropped (so before
//     SetFlagsMany or Expunge return). Whoever writes a change writes its
//     record; a Sync that finds the disk differing from the log (deliver,
//     Dovecot or a shell changed it) records the difference, once. Modseqs
//     are max(highest+1, now in µs); a missing, foreign or damaged file is
//     started over at the current time, above every modseq handed out
//     before, so clients resync instead of missing changes (VanishedSince
//     then says incomplete). A torn tail is cut. Compaction renames a new
//     file over the old; readers notice the inode. Dovecot ignores the
//     file. SetFlagsManyIf (RFC 7162 UNCHANGEDSINCE) checks each
//     message's modseq against the log under its lock and renames in the
//     same critical section; UnclaimedRecent counts \Recent without
//     claiming. Details: modseq.go, docs/formats.md §1.12.
//   - Quotas are Maildir++ maildirsize files at the root: a definition line
//     "<bytes>S,<count>C", then "<bytes> <count>" change lines appended in
//     one write each; rebuilt from the messages when stale.
//   - The mtime of a message file is its INTERNALDATE and is never changed.
//
// Change notification: a Watcher (Watch, WatchFunc) signals changes any
// process makes to new/, cur/, dovecot-uidlist or dovecot-keywords within
// a second. All Watchers of a process share one inotify instance and one
// reading goroutine, and those of one Maildir share its watches; when no
// instance can be had (fs.inotify.max_user_instances is per user), a
// Watcher polls the times of those four every second instead.
package maildir
