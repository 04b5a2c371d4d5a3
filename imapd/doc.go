// Package imapd is mailroom's IMAP server: a protocol engine of its own
// (IMAP4rev1, RFC 3501, and IMAP4rev2, RFC 9051) over the users' Maildirs,
// read and changed only through package maildir. The wire grammar lives in
// imapd/wire, message parsing in internal/message (shared with the text
// index, which deliver writes too); this package holds the sessions, one
// file per command or area, the mailbox views, and the writing of a parsed
// message as ENVELOPE, BODY and BODYSTRUCTURE (fetch_structure.go).
//
// Wire contract:
//
//   - The greeting is "* OK [CAPABILITY ...] mailroom ready". Capabilities
//     advertised are only those implemented: IMAP4rev1 IMAP4rev2 LITERAL+
//     SASL-IR ENABLE ID IDLE, before login STARTTLS (on "imap" until TLS)
//     and AUTH=PLAIN or LOGINDISABLED, after login NAMESPACE UIDPLUS MOVE
//     UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH
//     SEARCHRES CONDSTORE QRESYNC STATUS=SIZE UTF8=ACCEPT APPENDLIMIT=<n>
//     (CONDSTORE and QRESYNC: see "MODSEQ" below), and QUOTA
//     QUOTA=RES-STORAGE QUOTA=RES-MESSAGE (RFC 9208: one root "" per user
//     from Maildir++ maildirsize, STORAGE in KiB rounded up as Dovecot
//     does; SETQUOTA refused), MULTIAPPEND (RFC 3502: all messages or
//     none; at most 1000 and 4×APPENDLIMIT octets per command) and
//     COMPRESS=DEFLATE (RFC 4978: raw DEFLATE both ways, sync-flushed at
//     every write; no longer listed once active).
//   - Unknown or malformed commands get BAD and the session goes on;
//     Server.MaxBad BAD responses in a row end it with BYE. Before login a
//     session may be idle Server.LoginTimeout, after it Server.IdleTimeout
//     (30 minutes by default, RFC 9051 §5.4). On shutdown, sessions waiting
//     for a command get "* BYE shutting down".
//   - Passwords (LOGIN, AUTHENTICATE PLAIN) only over TLS, or from
//     loopback when plaintext_auth_on_loopback is set. Whatever a client
//     pipelined behind STARTTLS is discarded. Failed logins are answered
//     after a growing, bounded delay; too many close the connection.
//   - Connections are bounded in total and per client address
//     (max_connections, max_connections_per_client; one over the limit
//     gets "* BYE [UNAVAILABLE]" as its greeting on imap, a close on
//     imaps) and logged-in sessions per user
//     (Server.MaxConnectionsPerUser, 20): a login past it gets
//     "NO [LIMIT]" and the session stays unauthenticated. The per-user
//     count is per process, so it holds for standalone and systemd
//     Accept=no listeners, not for inetd or Accept=yes, where each
//     connection is a process of its own.
//   - System flags are always sent in canonical case (\Seen); keywords
//     appear in FLAGS and PERMANENTFLAGS before a message uses them.
//   - Mailbox names use "." as the hierarchy delimiter, modified UTF-7
//     (UTF-8 after ENABLE UTF8=ACCEPT or IMAP4rev2); INBOX is
//     case-insensitive. A name with an empty level, "/", "\", NUL or
//     another control character, wildcards or bad modified UTF-7 is
//     refused: no name reaches outside the user's Maildir.
//
// Mailbox state: one view per Maildir per process, shared by every
// session that selects it (refcounted). A view no session holds lingers
// for a minute (at most 16 views and 300,000 messages, oldest first;
// view_linger.go), so that a client logging in again gets a SELECT that
// only stats the Maildir; it is reused only while the Maildir's
// directory and cur/ are the very ones it was made of. It holds UIDs (from the engine's
// dovecot-uidlist), flags, keywords, RFC822.SIZE (the W= field) and the
// engine's MODSEQ per message (maildir.Message.ModSeq, kept in
// <maildir>/mailroom-modseq for every process). A change made by one
// session reaches the others as events; each session keeps its own
// sequence numbers and sends EXISTS, EXPUNGE (VANISHED after ENABLE
// QRESYNC) and FETCH FLAGS only where RFC 9051 §7.5.1 allows: never an
// EXPUNGE or VANISHED in answer to FETCH, STORE or SEARCH (their UID
// forms excepted). \Recent is claimed through the engine
// (maildir.Mailbox.ClaimRecent) by a read-write SELECT and, for messages
// that arrive later, by the first read-write session to report them, in
// this process or another; EXAMINE claims nothing and shows as \Recent
// what nobody has claimed (RFC 3501 §6.3.2). STATUS RECENT counts
// the messages nobody has claimed yet (maildir.Mailbox.UnclaimedRecent,
// claiming nothing) plus the asking session's own; under IMAP4rev2 it is
// BAD (RFC 9051 has no RECENT). DELETE takes the folder's messages off
// maildirsize in one "-bytes -count" line, as expunges are.
//
// Changes by other processes (deliver, pop3d, another imapd) are found
// by a sync at every command, and during IDLE through the engine's
// Watcher, within a second: one inotify instance for the whole process
// (fs.inotify.max_user_instances is per user, 128 by default), or polling
// every second when no instance can be had. An idling session holds no
// write buffer and no goroutine of its mailbox; see idle.go.
//
// MODSEQ (RFC 7162, condstore.go): SELECT and EXAMINE always send
// HIGHESTMODSEQ, since MODSEQs are persistent (so NOMODSEQ is never
// sent). A session becomes CONDSTORE-aware with ENABLE CONDSTORE or
// QRESYNC or its first CONDSTORE enabling command (§3.1: SELECT/EXAMINE
// (CONDSTORE), FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH
// MODSEQ, STATUS or LIST-STATUS HIGHESTMODSEQ); issued in the selected
// state, that command first gets "* OK [HIGHESTMODSEQ n]". From then on
// every FETCH response with FLAGS, MODSEQ or an explicit UID carries UID
// and MODSEQ (RFC 5162 erratum 1807, §3.1), as does every UID FETCH
// response after QRESYNC; STORE's FETCH responses carry UID and MODSEQ,
// and .SILENT still sends "FETCH (UID n MODSEQ (m))" for each message it
// succeeded on (§3.1.3); a STORE that changes nothing moves no MODSEQ; a
// message failing UNCHANGEDSINCE is left alone and listed in the tagged
// "OK [MODIFIED set]". The UNCHANGEDSINCE test is the engine's
// (maildir.Mailbox.SetFlagsManyIf): made under the lock of its modseq log,
// in the critical section that gives the change its MODSEQ, so MODIFIED
// is exact even against other processes. FETCH CHANGEDSINCE syncs with
// the disk first, so it sees other processes' changes. While an
// expunge is held back (FETCH, STORE, SEARCH), the command ends with
// "* OK [HIGHESTMODSEQ n]" below the expunge's MODSEQ (§3.2), so a
// client that resyncs from it still learns of the expunge. SEARCH MODSEQ answers
// "(MODSEQ n)", the highest of the matches (ESEARCH: of MIN/MAX alone
// when only they were asked, RFC 4731 §3.2); one MODSEQ per message
// serves every entry name. QRESYNC needs ENABLE QRESYNC (the SELECT
// parameter is BAD without it); SELECT (QRESYNC ...) and UID FETCH
// (CHANGEDSINCE n VANISHED) send "VANISHED (EARLIER)" from the engine's
// expunge record, or, where that no longer reaches back, every known UID
// the mailbox lacks above the last seq-match-data pair that still matches
// (§3.2.5.2), then FETCH (UID FLAGS MODSEQ) of the messages changed
// since, limited to the known UIDs when given; another UIDVALIDITY gets
// neither. With QRESYNC, "OK [CLOSED]" precedes a SELECT that replaces a
// mailbox (as for IMAP4rev2), and EXPUNGE, UID EXPUNGE and MOVE end with
// "OK [HIGHESTMODSEQ n]".
//
// Structure cache: FETCH needs a message.Structure per message (ENVELOPE,
// BODYSTRUCTURE, section offsets). It is kept in <maildir>/mailroom-cache,
// an append-only file of big-endian records:
//
//	header: "MRC2" uidvalidity:u32
//	record: uid:u32 size:i64 mtime:i64 len:u32 data[len] crc32c:u32
//
// data is message.Structure.MarshalBinary (record version 2): either a
// whole Structure or a header-only one (message.ParseHeader: ENVELOPE,
// the header's span, RFC822.SIZE from the W= of the file name), and with
// either the message's raw header block when it is at most
// message.MaxHeaderBlock (8 KiB), from which BODY[HEADER],
// BODY[HEADER.FIELDS (...)] and .NOT are served without opening the
// file. ENVELOPE, INTERNALDATE and the header sections add a header-only
// record; BODYSTRUCTURE, a part or the body adds a whole one, which
// replaces it. size and mtime (nanoseconds) are those of the message
// file; the CRC-32C covers the record's bytes before it. A view reads the
// file into memory once, when it first needs it; the records a command
// adds are appended under flock(2) in one write and fsync'd at the end
// of the command; a later record for a UID replaces an earlier one. A
// file of another UIDVALIDITY or magic ("MRC1") is started over; reading
// stops at the first damaged record and the file is cut there. When the
// records that no longer count (replaced, or of expunged UIDs) are more
// than half of a file of at least 1 MiB, the live ones are written to
// mailroom-cache.new, fsync'd and renamed over the file under the old
// file's flock; whoever then locks the replaced file reopens the name
// before appending. A crash leaves one whole file or the other. The cache
// is never the only copy of anything: a missing or damaged record only
// means the message is parsed again.
//
// Text index: SEARCH BODY and TEXT are answered through
// <maildir>/mailroom-textindex (package maildir/textindex): the words of
// each message, per field, with their UIDs; a query's words name the
// candidates and each candidate is then matched against its decoded text,
// so the answer is exactly that of a scan. Before reading it, a SEARCH
// and the background indexer fold <maildir>/mailroom-textindex.new, the
// words deliver gathered at delivery keyed by Maildir base name, into the
// index under the messages' UIDs (Index.FoldPending, names mapped through
// the engine's LookupBase), without opening any message; only mail that
// did not come through deliver is read to be indexed. With Server.TextIndexBackground
// (text_index_background, on in mailroom.conf) SELECT and EXAMINE start
// one background indexer per Maildir and process for mailboxes of at least
// 1,000 messages, one of them at work at a time, each starting 5 seconds
// after the SELECT so that the client's own sync comes first
// (textindex_bg.go): one
// goroutine adds the messages the index lacks, yielding between them, and
// stops at Shutdown or when a SEARCH arrives, which then indexes the
// rest itself. Otherwise the first SEARCH with BODY or TEXT indexes every
// message; each SEARCH indexes the messages the index lacks. A damaged or
// foreign file is rebuilt, and the index is never the only copy of
// anything.
//
// SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) keeps its result, as UIDs,
// for "$" in FETCH, STORE, COPY, MOVE, UID EXPUNGE and SEARCH; expunged
// messages leave it, SELECT and EXAMINE empty it (it lives in the
// selected state), a SEARCH with SAVE answered NO empties it, one answered
// BAD leaves it, and an empty "$" (also before any SAVE) makes those
// commands complete with OK and nothing done: NOTSAVED is only for a
// result the server refuses to save (RFC 9051 §6.4.4.1, §6.4.4.3).
package imapd
