// Package remote is the queue daemon's SMTP client: a
// deliver.RemoteTransport that hands mail for domains this host does not
// serve to their next hop. It tries once and reports per recipient; the
// daemon owns retries, expiry and DSNs. See deliver(8), REMOTE DELIVERY.
//
// Wire contract:
//
//   - Routing: the transport table (transport_file, Postfix transport_maps
//     matching: "example.com" the domain itself, ".example.com" its
//     subdomains, "*" any), then relay_host, then the recipient domain's
//     MX records in preference order, random among equals (RFC 5321 §5.1);
//     no MX means the domain's own A/AAAA records; a null MX (RFC 7505)
//     bounces with 5.1.10; a domain that does not exist with 5.1.2; any
//     other DNS trouble is temporary. "[host]" skips the MX lookup.
//     Every IPv6 and IPv4 address of each host is tried, up to 10, until
//     one answers for every recipient.
//   - Session: EHLO with the configured hostname; STARTTLS per
//     tls_security_level (none, may: opportunistic, the certificate
//     verified where possible and logged as tls=verified or unverified, a
//     failed handshake retried in plaintext; encrypt: required; verify:
//     required with a certificate valid for the server's name); AUTH PLAIN
//     or LOGIN to the relay host only, and only over TLS.
//   - Transaction: to a peer offering PIPELINING, MAIL FROM, every RCPT
//     TO and DATA in one write, the replies then read in order (RFC 2920
//     §3.1); to any other, one command at a time. The message follows
//     the 354 with CRLF line ends and leading dots doubled (RFC 5321
//     §4.5.2). MAIL FROM with SIZE, BODY=8BITMIME and SMTPUTF8 only
//     when offered (a message that needs SMTPUTF8 to a peer without it
//     bounces, 5.6.7, RFC 6531 §3.2; one with 8-bit content to a peer
//     without 8BITMIME bounces, 5.6.3, RFC 6152 §3); DSN's RET, ENVID, NOTIFY, ORCPT
//     passed on when the peer offers DSN (RFC 3461 §6.2). Each RCPT reply
//     decides its recipient (2xx accepted, 4xx temporary, 5xx permanent);
//     the reply to the end of data decides every accepted one. A 421 or a
//     lost connection before the message is sent moves the remaining
//     recipients to the next address; after it, they are deferred.
//     Status is the reply's enhanced code, else X.0.0 of its class.
//   - Connections: one cached per endpoint after each transaction, reused
//     (RSET, no new EHLO) by the next message to that host, closed after
//     5s idle or 100 messages; at most destination_concurrency sessions at
//     once per destination. Every step has a timeout (connect 30s,
//     greeting and commands 5m, each data write 3m, end of data 10m, RSET
//     20s) and a reply is bounded to 64 KiB, 256 lines of 4 KiB. Safe for
//     concurrent use.
//   - Logs: connection events (connect, tls, resolve) with msgid= and
//     relay=host[ip]:port; the daemon logs the per-recipient lines.
package remote
