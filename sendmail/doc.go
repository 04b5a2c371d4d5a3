// Package sendmail is mailroom's sendmail(8), mailq(1) and newaliases(8): the
// command local programs (cron, mutt, git send-email, PHP's mail()) run to
// submit mail, chosen by the basename of argv[0].
//
// The contract with callers:
//
//   - The command line is sendmail's, parsed by hand (ParseArgs): glued and
//     separate values (-fADDR, -f ADDR), -o and -b sub-letters, a bare -q that
//     never takes the next word, "--", POSIX stop at the first operand, and
//     every flag the callers in the ecosystem research pass. Options that mean
//     nothing here (-oem, -odi, -L, -G, ...) are accepted and ignored, as
//     Postfix does. An unknown option is exit 64 with one line on stderr.
//   - Exit 0 means the message is durable in the spool's maildrop/
//     (spool.DropWriter.Commit returned nil), whether or not the queue daemon
//     runs. 64 is a usage error, 65 bad input (too big, malformed address in
//     a header), 75 anything transient (spool missing, disk full, I/O,
//     unreadable configuration), 77 a permission refused (mailq without
//     access to the queue). Every failure writes one line to stderr.
//   - The submitter is the real uid: the kernel records it as the owner of the
//     maildrop file. Only root and the users in [sendmail] trusted_users may
//     set any envelope sender with -f/-r; anyone else may use their own
//     address or an alias the aliases file gives them alone ("webmaster:
//     alice"), and any other -f is replaced by their own login@origin, with
//     a warning on stderr (the null sender, -f "", is allowed to everyone:
//     it names nobody). Nothing runs setuid.
//
// The data contract with the spool: the message is stored with LF line ends,
// as Maildir files are kept (CRLF from the caller becomes LF, as Postfix's
// sendmail_fix_line_endings = always does; a lone CR is left alone), and it
// always ends with a line end. A leading mbox "From " line is dropped. Bcc:
// and Resent-Bcc: are removed from every command-line submission (not from
// -bs, where the client chose the headers). Missing From:, Date: and
// Message-ID: are appended at the end of the header, as Postfix's cleanup does
// for local mail. No Received: line is written: the queue daemon writes it
// from the envelope, which records the uid.
package sendmail
