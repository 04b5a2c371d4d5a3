// Package smtpd is mailroom's SMTP receiver, built on emersion/go-smtp (the
// only importer of its server side). It stores accepted mail in the spool
// (package spool); smtpd(8) is the administrator's description.
//
// Wire contract:
//
//   - Three services share one backend: "smtp" (MX: recipients in hosted
//     domains only, unless authenticated), "submission" (RFC 6409: STARTTLS,
//     then AUTH, then MAIL) and "submissions" (RFC 8314: implicit TLS, then
//     AUTH). AUTH PLAIN and LOGIN are offered and accepted only under TLS,
//     or from loopback with plaintext_auth_on_loopback; elsewhere AUTH gets
//     538 5.7.11. Extensions: PIPELINING, 8BITMIME, SMTPUTF8, SIZE,
//     ENHANCEDSTATUSCODES, STARTTLS (with a certificate), CHUNKING, DSN,
//     LIMITS.
//   - RCPT is decided at once by internal/route: 550 5.1.1 unknown, 550
//     5.7.1 refused, 501 5.1.3 malformed, 554 5.7.1 relay without AUTH,
//     452 4.5.3 past max_recipients. An authenticated sender must be the
//     user's address or route to the user's mailbox (553 5.7.1).
//   - DATA/BDAT stream into spool.Create with a Received line prepended;
//     "250 2.0.0 Ok: queued as <id>" is written only after Writer.Commit
//     returned nil. Every other outcome aborts the spool entry: 451 4.3.0
//     for storage errors, 552 5.3.4 over max_message_size, 554 5.6.0 (and
//     disconnect) for a bare CR or LF.
//   - Only CRLF "." CRLF ends DATA; plaintext pipelined after STARTTLS is
//     discarded and a failed handshake closes the connection; a command line
//     that is an HTTP request closes the connection; max_errors error
//     replies end it with 421 4.7.0.
//
// Shape: each connection gets its own go-smtp Server, because go-smtp's
// Debug writer (one per server) is the only place that sees the dialogue
// after TLS decryption; the observer watches it to count error replies and
// to scan client lines. Connection limits apply to all services together
// (listen.Limit over the merged listeners).
package smtpd
