// Package message computes, in one streaming pass over a message file,
// everything imapd needs to answer FETCH for that message, and keeps it in
// a compact cache record so that FETCH never parses a message again.
//
// # Who shares it
//
// It is the one MIME parser of mailroom. imapd answers FETCH and SEARCH
// from it, and maildir/textindex finds the text of a message with it,
// both in imapd and in deliver, which indexes each message it delivers.
// One parser, not one per program, because the index must see exactly
// the parts and octets FETCH shows: a second parser that split a message
// differently would lose SEARCH matches. That is why it lives under
// internal/, shared, and depends on no program package: sections and
// partials are its own Section and Partial (imapd converts its
// wire.Section and wire.Partial, which have the same fields), and how a
// Structure is written as ENVELOPE, BODY and BODYSTRUCTURE is imapd's
// (imapd/fetch_structure.go). Package messagetest holds the test corpus
// and Dovecot oracle its tests and imapd's share.
//
// # What Parse records
//
// Parse reads a message once, holding no more than a line buffer and the
// values of the header fields it needs, and returns a Structure: the MIME
// tree (RFC 2045, RFC 2046) with, for every part, the byte offsets of its
// header and body in the file, their sizes both as stored and in the CRLF
// form IMAP speaks, line counts, the Content-* fields BODYSTRUCTURE needs,
// and for the message and every message/rfc822 part the ENVELOPE fields.
//
// # Line ends
//
// Maildir files usually have LF line ends; IMAP counts and serves octets of
// the CRLF form (RFC 9051 §2.3.4 RFC822.SIZE, §6.4.5 BODY[]<partial>). The
// CRLF form of a file is the file with every LF that is not preceded by CR
// replaced by CRLF; a bare CR is kept as it is. Every size and offset that
// reaches a client is one of that form. The Structure keeps a checkpoint of
// the CRLF offset every 64 KiB, so that a partial fetch deep into a large
// message starts reading near its origin instead of at the first octet.
//
// # Choices where mail is broken or RFCs leave room
//
//   - A boundary line is recognised by its prefix "--boundary" at the start
//     of a line; an outer boundary also ends every inner part, so a missing
//     close delimiter costs nothing. A multipart without a boundary, or whose
//     boundary never appears, has one empty text/plain child (as Dovecot).
//   - RFC 2231 parameter continuations (name*0*=, name*1=) are joined into
//     one parameter, "name*" when any segment was extended, with the value
//     concatenated but not decoded: clients that understand RFC 2231 decode
//     it, as they do with Dovecot's answer, which this matches.
//   - Encoded words (RFC 2047) and 8-bit octets in headers are returned as
//     they are: ENVELOPE carries raw header text (RFC 9051 §7.5.2).
//   - An address without "@" gets host "MISSING_DOMAIN", an empty angle
//     address mailbox "MISSING_MAILBOX" too, as Dovecot does; null members
//     of an address list ("a@b, , c@d") are dropped (RFC 5322 §4.4).
//   - Limits: MaxDepth nested multiparts or messages, MaxParts parts; what
//     lies beyond is body text of the innermost part that fits, and the
//     grammar of BODYSTRUCTURE stays valid.
//
// # Header only, and the header block
//
// ParseHeader reads the header alone and returns a header-only Structure
// (HeaderOnly): ENVELOPE, the root's Content-* fields and the header's
// span, with the sizes the caller knows from the Maildir name. It is what
// a first ENVELOPE pass over a mailbox needs, at the cost of reading about
// 1 KB of a message instead of all of it. Complete (and Open, by itself,
// for a section beyond the header) turns it into a whole Structure.
//
// Both keep the message's header block (HeaderBlock), the file's own
// octets, when it is at most MaxHeaderBlock: Open then answers HEADER,
// HEADER.FIELDS and HEADER.FIELDS.NOT of the message from it without the
// file, and the answer is the same as the file's, since the octets are.
//
// # Cache record
//
// Structure.MarshalBinary writes a versioned, checksummed record (version
// 2: header-only flag and header block); UnmarshalBinary refuses anything
// damaged or of another version, so that imapd parses the message again
// instead of serving a wrong answer.
package message
