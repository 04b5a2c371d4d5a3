// Package pop3d is mailroom's POP3 server: a protocol engine of its own
// (RFC 1939, RFC 2449 CAPA and response codes, RFC 2595 STLS, RFC 5034 SASL
// PLAIN and LOGIN) over a user's Maildir INBOX, read and changed only
// through package maildir.
//
// Wire contract:
//
//   - Every reply line ends in CRLF. Multi-line replies (LIST, UIDL, RETR,
//     TOP, CAPA) are dot-stuffed (RFC 1939 §3) and end with ".\r\n".
//     Message bodies are streamed from the file, never held in memory:
//     a bare LF is sent as CRLF, a CRLF as it is, every other byte (8-bit,
//     NUL, a lone CR, lines of any length) unchanged, so a message's LIST
//     size is its W= size (the CRLF size) and RETR sends exactly that many
//     octets before the terminating line (plus CRLF if the file's last line
//     has no line end).
//   - A command line is at most 255 octets including CRLF (RFC 2449 §4);
//     a longer one gets "-ERR line too long" and its rest is discarded;
//     repeated errors close the connection.
//   - Replies to pipelined commands (RFC 2449 §6.6) are written in order and
//     flushed when no more input is buffered.
//   - Passwords (USER/PASS, AUTH) are accepted only over TLS, or from
//     loopback when plaintext_auth_on_loopback is set. After STLS every byte
//     the client sent before the handshake is discarded (RFC 2595 §4 and the
//     STARTTLS command-injection lesson).
//
// Mailbox contract:
//
//   - One session per mailbox: a session holds an exclusive, non-blocking
//     flock(2) on <Maildir>/pop3.lock from login to the end; a second login
//     gets "-ERR [IN-USE]" (RFC 2449 §8.1.2) and changes nothing.
//   - The maildrop is a snapshot of INBOX (new/ and cur/) taken at login, in
//     UID order, with maildir.Snapshot: the same sync and UID assignment as
//     imapd's, or maildir's listing cache when nothing changed since. Sizes come from the file names' W= fields (or the uidlist);
//     a message without one is read once at login to count its CRLF size.
//   - DELE only marks. Only QUIT in the TRANSACTION state (the UPDATE state,
//     RFC 1939 §6) expunges the marked messages and marks the messages
//     retrieved with RETR \Seen, which moves them
//     from new/ to cur/, so IMAP clients (and Dovecot) see the same state.
//     A dropped connection, a timeout, a shutdown or a crash changes nothing.
//   - UIDL is the Maildir base name (the file name up to the ":2," info, as
//     qmail and Courier send it) or, with uidl_format = dovecot, Dovecot's
//     %08Xu%08Xv from dovecot-uidlist: stable across sessions and restarts.
//     A base name that RFC 1939 §7 does not allow as a unique-id (longer than
//     70 octets or with bytes outside 0x21–0x7E) is replaced by "H" and the
//     first 64 hex digits of its SHA-256, equally stable.
package pop3d
