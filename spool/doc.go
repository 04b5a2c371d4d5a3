// Package spool is the on-disk queue shared by smtpd and sendmail, which
// write it, and deliver's queue daemon, which reads it, records each
// recipient's state in it and removes finished messages. The format is
// described for administrators in mailroom-spool(5) and for developers in
// docs/formats.md ("The spool"); this comment is the contract.
//
// # Layout
//
//	<spool_dir>/            0711  the spool's owner (deliver's uid)
//	    tmp/                02770
//	        <id>            0640  a message being written; never read
//	    queue/              02770
//	        <id>            0640  an acknowledged message: envelope, empty
//	                              line, content; written once, never changed
//	    state/              02770
//	        <id>            0640  per-recipient state of queue/<id>;
//	                              absent = all pending
//	    trash/              02770
//	        <id>            0640  a message being removed; never read
//	    corrupt/            02770 what pickup refused, kept for the admin
//	    maildrop/<id>       01733 local submissions by unprivileged users
//
// One file per message: each message costs one inode and one file fsync,
// where a directory with envelope, data and state cost three inodes and
// three fsyncs before the 250 (and ext4's inode allocator was the largest
// single cost of a commit).
//
// The previous layout, a directory queue/<id>/ holding envelope (version
// 1, with a size line), data and state, is still read: List, Message,
// OpenData, SetState (into the directory's own state file) and Remove work
// on it, and SweepTmp removes its directories from tmp/ and trash/. Nothing
// writes it any more. A queue daemon of this version therefore drains a
// spool that an older version filled; an older queue daemon cannot read
// queue files (it logs them as unreadable and leaves them), so upgrade
// deliver no later than smtpd and sendmail.
//
// # Queue ids
//
// An ID is 20 characters of lower-case Crockford base32: 11 for the
// arrival time in microseconds since the Unix epoch (good until the year
// 3111), then 9 (45 bits) of randomness. The alphabet is in ASCII order, so
// ids sort by time as strings and as file names; no character needs quoting
// in a file name, a shell or a log line. Randomness, not pid and host,
// keeps two processes or two hosts sharing the spool apart, and a process
// never repeats a time prefix (it steps forward by a microsecond), so its
// own ids are strictly increasing. Uniqueness is finally enforced by the
// file system: the rename that commits a message never replaces an
// existing one (RENAME_NOREPLACE; where a file system lacks it, link(2),
// which never replaces, then unlink). The id is only the file name;
// nothing inside the message records it, and every log line about a
// message carries it as msgid=<id>.
//
// # Acknowledgement
//
// A writer (Spool.Create) creates tmp/<id> (O_EXCL, mode 0640 whatever the
// umask) and writes the envelope into it at once: everything in it is
// known when the message starts, and the size is not recorded (see below).
// It then streams the content after it, and at Commit: flushes and fsyncs
// the file (one fsync for envelope and content), renames tmp/<id> to
// queue/<id> with RENAME_NOREPLACE and fsyncs queue/. Only then may smtpd
// answer 250 or sendmail exit 0. A crash before the rename leaves nothing
// in queue/; after it, the whole file is there, complete, because it was
// fsync'd before it got its name: never half a message.
//
// The fsync of queue/ is group-committed (fsx.DirSyncer): the concurrent
// commits of one Spool share it. A commit returns only after an fsync of
// queue/ that started after its own rename, so the guarantee is the same
// as one fsync each; n sessions committing at once cost n file fsyncs and
// about two directory fsyncs, not 2n fsyncs in all.
//
// tmp/ is swept of files (and old-layout directories) older than a day
// (SweepTmp); deliver never reads tmp/.
//
// # The queue file
//
// queue/<id> is the envelope as Envelope.MarshalText writes it (version 2:
// "mailroom-envelope 2", no size line), ending with its empty line, then
// the content byte for byte. No envelope line is empty, so the first empty
// line ends the envelope whatever the content holds. The content's size is
// the file's length less the envelope's: a file is renamed into queue/
// only complete and fsync'd, so a size line would say nothing the length
// does not, and writing it would need the envelope written after the
// content (a reserved slot, or a copy). Message.OpenData returns a reader
// of exactly the content, offsets counted from its first byte.
//
// # Per-recipient state
//
// The state file holds one line per envelope recipient, in envelope order:
// pending, deferred (attempts, last try, next try), delivered or failed
// (permanently), and when a delay DSN was sent (warned=, format version 2,
// used only when some recipient has it). It lives beside the message, in
// state/<id>, so that the queue file is written once and never changed;
// no state file means every recipient is pending. It is replaced as a
// whole by write-new (a temporary name in state/), fsync, rename, fsync
// state/ (SetState), so after kill -9 at any point it holds either the
// old states or the new ones. The consumer records a recipient as
// delivered after the delivery is durable, so a crash re-delivers at most
// the recipients in flight: at least once, exactly once when nothing
// crashes.
//
// # Removal
//
// When every recipient is delivered or failed, Remove renames queue/<id>
// to trash/<id> (one atomic step out of sight), then unlinks state/<id>
// and the trashed file. The state goes after the rename, never before, so
// no visible message is ever without the states recorded for it. Remove
// does not fsync queue/: no process can see the message after the rename,
// and only a power loss before the file system's next commit can undo it.
// The consumer may also skip recording the final states when one pass
// finished every recipient. A power loss that undoes the rename then
// brings the message back with its old states and it is delivered again
// (at least once, never lost), which is cheaper than a state write and a
// flush per message. Such a message, one that never had a state file, the
// consumer removes with RemoveMessage: a single unlink of queue/<id>, as
// atomic a step out of sight as the rename and with nothing left to clean
// up (only the consumer writes state files, so none can have appeared).
// When the final states were recorded, a crash leaves
// either a finished message in queue/ (so Remove is simply repeated) or
// leftovers in trash/, which nothing reads and SweepTmp deletes, and
// perhaps a state file without a message, which SweepTmp deletes once it
// is some minutes old (so as not to race a SetState or Remove running
// beside the sweep), as it does the temporary files of an interrupted
// SetState.
//
// # The maildrop
//
// sendmail runs as the submitting user, with no setuid or setgid bit. It
// writes maildrop/<id> (Spool.Drop): created O_EXCL with mode 0600, the
// envelope lines, an empty line, the message; fsync; then fchmod 0644,
// which marks the file complete (Postfix marks its maildrop files the same
// way, with the execute bit); fsync again. maildrop/ is 1733, so anyone
// may create a file there, nobody but the spool's owner may list it, and
// the sticky bit keeps users from renaming or removing each other's files.
// The identity of the submitter is the file's owner, recorded by the
// kernel, never anything written inside: the envelope's uid line is only a
// cross-check that must agree. Pickup (run by the spool's owner) opens
// the name with O_NOFOLLOW|O_NONBLOCK and refuses symlinks, non-regular
// files and hard links (a link to someone else's file would carry their
// uid), copies the file into a queue file with the same id (the drop's
// envelope, checked, becomes a version 2 head; the content is copied as it
// is) and commits it as Create's writers do, taking the arrival time from
// the file's ctime (which a user cannot set), and only then unlinks the
// drop and fsyncs maildrop/. A crash between the two is detected on the next
// pass by the existing queue/<id>, so a drop is queued once.
//
// An unprivileged user cannot fsync maildrop/ (a directory must be opened
// for reading to be fsync'd, and 1733 withholds read). The drop's name is
// made durable by the file's own fsync on journalling file systems (ext4,
// xfs, btrfs commit the creating transaction with it); Postfix's postdrop
// relies on the same.
//
// # Envelope and state files
//
// Both are versioned UTF-8 text, one "key value" per line, LF endings,
// single spaces. A maildrop file's envelope is version 1 without arrived
// and size (its format did not change, so older sendmail binaries still
// submit). Values are percent-encoded (%XX, upper-case hex) for
// every byte that is not printable ASCII or part of a printable UTF-8
// character, and for '%' itself, so no value can contain a space, CR, LF
// or NUL, and none can inject a line. Parsing is strict: an unknown key,
// a repeated key, a non-canonical escape or time, or a field in the wrong
// place is an error, and a newer version is refused rather than half
// understood. See Envelope.MarshalText and the grammar in mailroom-spool(5).
//
// # Permissions and processes
//
// The spool belongs to the queue daemon's user, and smtpd's user is in its
// group; Setup makes the directories with the modes above regardless of the
// umask. The directories are setgid so every file keeps the spool's group.
// Exactly one consumer may run at a time (LockConsumer); any number of
// writers may. deliver is expected to watch queue/ and maildrop/ with
// inotify (IN_MOVED_TO, IN_ATTRIB for the chmod that completes a drop), as
// it does Maildirs; this package has no watcher.
package spool
