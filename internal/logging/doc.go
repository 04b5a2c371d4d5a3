// Package logging builds the *slog.Logger every mailroom program logs
// through, from mailroom.conf's log_format and log_level.
//
// Destinations:
//
//   - log_format = logfmt: slog's TextHandler on standard error (journald
//     under systemd; the MTA's log for deliver in MDA mode), one line per
//     record: time=RFC 3339 level=INFO msg=... key=value ...
//   - log_format = syslog: the local syslog daemon's datagram socket
//     (/dev/log), facility mail, tag = the program name, each record one
//     datagram "<PRI>Mmm dd hh:mm:ss tag[pid]: msg=... key=value ..." (the
//     local form of RFC 3164 that rsyslog and journald parse; no time= or
//     level= keys, which the header carries). The severity is RFC 5424's,
//     mapped from the slog level: DEBUG 7 debug, INFO 6 info, WARN 4
//     warning, ERROR 3 err (a level between two takes the lower one's
//     severity). When the socket is absent or refuses the connection, the
//     logger falls back to logfmt on standard error and says so in one
//     WARN line; a datagram that cannot be sent is written to standard
//     error instead, so no line is lost.
//
// Log line contract, shared by all programs (the keys are what scripts and
// log searches may rely on):
//
//   - msg is a fixed word naming the event ("delivery", "config",
//     "connect"), never free text with data in it; data goes in keys.
//   - One summary line per delivery, msg=delivery, with from, to (the
//     envelope recipient as given), status (sent, deferred, bounced) and
//     delay (Go duration since the program started on the message); sent
//     lines add mailbox, folder and path, failed ones dsn (RFC 3463 code),
//     reason and err. deliver also writes orig_to and folder_requested when
//     they differ from to and folder. A message's msgid= and a
//     connection's conn= are on every line about them once the spool and
//     the daemons log.
//   - Values are quoted by slog's text rules, so a line never contains a
//     raw newline and a key=value pair never splits.
//   - AUTH data is never logged: no password, hash, SASL response or AUTH
//     argument, at any level, not even on failure; a failed login logs the
//     user name, the mechanism and the client only, as one self-contained
//     line spelled alike by smtpd, pop3d and imapd: msg=auth conn=<id>
//     client=<ip>:<port> user=<name> mech=<mech> result=fail ...
//   - deliver's queue daemon writes relay= on every delivery line: the
//     server that answered, local, or none; deliver as an MDA given
//     --queue-id writes the MTA's id as msgid= on every line.
package logging
