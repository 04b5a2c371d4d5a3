// Package deliver is mailroom's delivery agent. This part is its MDA mode:
// one message on standard input, delivered into the Maildirs its
// recipients route to, run by an MTA (Postfix mailbox_command or pipe(8),
// qmail, Exim), procmail or cron.
//
// Contract with the caller (deliver(8)):
//
//   - Recipients are the operands, every -d USER and -r ADDRESS, else
//     $RECIPIENT. The sender is -f, else $SENDER, else the mbox From_ line,
//     else the null sender; "MAILER-DAEMON" is the null sender. A sender
//     with a control character, which would break the Return-Path line
//     into forged header fields, is refused (5.1.7, exit 65).
//   - Each recipient is routed by internal/route (aliases, sub-address,
//     catch-all). A recipient is refused whole, before anything is written,
//     if any of its targets is unknown, refused, remote, a pipe or a file.
//   - A leading "From " line is dropped (maildir(5)). Return-Path: <sender>
//     is prepended unless the first header field already is a Return-Path
//     (the MTA's trace block, as Postfix's mailbox_command writes it), and
//     Delivered-To: <recipient> unless that trace block already has one.
//   - One file per recipient: the file of a recipient carries its own
//     Delivered-To and is written once and hard-linked into every mailbox
//     the recipient expands to.
//   - Loop: a Delivered-To already naming the recipient (case-insensitive;
//     the MTA's own trace-block field excepted) refuses it, 5.4.6, exit 65.
//   - -m FOLDER (or a route folder) that does not exist falls back to INBOX.
//   - Exit status (sysexits): 0 delivered; 64 usage; 65 bad data (empty,
//     no header section, NUL bytes, over max_message_size, loop, a sender
//     with a control character); 67 user
//     unknown; 77 refused (policy, unsafe path, over quota with
//     over_quota = bounce); 75 for anything transient (disk full, I/O,
//     lock timeout, unreadable configuration, over quota). With several
//     recipients the worst wins, any transient failure first, so the MTA
//     retries: recipients already delivered may get the message again
//     (at-least-once, never at-most-once).
//   - On failure the first line of standard error is the RFC 3463 status
//     and reason ("4.2.2 mailbox full"), which Postfix prefers to the exit
//     status and quotes in bounces. Summary lines (internal/logging's
//     contract: one per recipient mailbox, from, to, mailbox, folder,
//     status, path, delay) go where log_format says. With logfmt they are
//     held back and follow the status line on success, or with -v, so
//     they never reach a bounce; with syslog every line, failures too,
//     goes to the syslog daemon and standard error carries the status
//     only (if the daemon is missing, the lines fall back to the held-back
//     logfmt stream, after one warning line).
//   - Nothing is left behind by a failed delivery: the message is
//     inspected (first 64 KiB) before any file is made, the rest is checked
//     as it streams, and the engine removes its tmp/ file on any error.
//     Memory use is bounded whatever the message size.
package deliver
