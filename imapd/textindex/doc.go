// Package textindex is the word index behind imapd's SEARCH BODY and
// SEARCH TEXT: for every message of a mailbox, the words of its text, so
// that a search opens only the messages that may match.
//
// # Text
//
// The text of a message is what a user sees (Extractor): the header with
// encoded words decoded, and the body text, that is the text/* and
// message/* leaf parts with base64 and quoted-printable removed and
// ISO-8859-1 and Windows-1252 converted to UTF-8 (other charsets are
// taken as stored). All of it is lowered by Fold. Searching is substring
// matching on that lowered text, and the index, the query and a
// verifying scan all use this one definition.
//
// # Words and queries
//
// A word is a run of ASCII letters and digits and non-ASCII octets. The
// index keeps, per message and field (header "h", body "b"), each word up
// to MaxWord octets; a message with a longer word is listed as overflow
// for that field. A query is cut into words the same way: a word between
// two separators of the query must be a whole word of the text, the first
// word must end one, the last must begin one, and a query of one word
// must lie inside one. The candidates are the intersection over the
// query's words of the messages with such a word, plus the overflow
// messages; a query with no word has every message as candidate. Every
// message that holds the query is a candidate, and candidates are checked
// against their text, so answers are exact.
//
// # File
//
// <maildir>/mailroom-textindex, beside new/ and cur/:
//
//	header:  "MRTI" version:u32 (1) uidvalidity:u32 crc32c:u32
//	segment: len:u32 body[len] crc32c(body):u32
//	body:    ncovered covered-uids nterms entry*
//	entry:   tlen term[tlen] npost plen postings[plen]
//
// The fixed fields are big-endian; the others are unsigned varints, UID
// lists ascending as deltas. A term is the field octet and the word, or
// 0x00 and the field octet for the overflow list; terms ascend within a
// segment. covered lists every message the segment indexed, with words
// or without. A segment is appended under flock(2), in one write, by the
// search that indexed the messages (the file is fsync'd at its end); a
// file of another version or UIDVALIDITY, or not an index at all, is
// started over; reading stops at the first damaged segment and the file
// is cut there. Compaction (many segments, or a quarter of the covered
// messages expunged) merges everything into a new file renamed over the
// old one. The index is a cache: losing any of it only means messages are
// indexed again.
//
// # Memory
//
// A Builder writes a segment whenever it holds 2 Mi postings or 256 Ki
// terms, so building the index of a mailbox of any size needs a bounded
// amount of memory; Compact merges segments term by term. Queries read
// the file through a read-only mapping.
package textindex
