// Package textindex is the word index behind imapd's SEARCH BODY and
// SEARCH TEXT: for every message of a mailbox, the words of its text, so
// that a search opens only the messages that may match.
//
// It is an on-disk contract between two programs: deliver gathers the
// words of each message it delivers (DeliveryIndexer, IndexDelivered)
// and appends them to a pending file; imapd folds the pending records
// into the index under the messages' UIDs (Index.FoldPending) before it
// reads the index, and indexes itself, by reading them, only the
// messages that came another way. Both use this package's Extractor, over
// the MIME structure of package internal/message (the parser imapd's FETCH
// answers from), so the words are the same whichever program gathered
// them, and are those of the parts a client is shown.
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
// search that indexed the messages (the file is fsync'd at its end) or by
// the fold of pending records (not fsync'd, see Pending); a
// file of another version or UIDVALIDITY, or not an index at all, is
// started over; reading stops at the first damaged segment and the file
// is cut there. Compaction (many segments, or a quarter of the covered
// messages expunged) merges everything into a new file renamed over the
// old one. The index is a cache: losing any of it only means messages are
// indexed again.
//
// # Pending
//
// The delivering program does not know a message's UID (UIDs are given
// by the next sync of imapd or pop3d, under dovecot-uidlist.lock), so what
// it indexes is keyed by the message's Maildir base name (its file name
// up to the first ':', which flag changes keep) in a second file,
// <maildir>/mailroom-textindex.new:
//
//	record:  "MRP1" len:u32 body[len] crc32c(body):u32
//	body:    blen base[blen] flags:u8 words(header) words(body)
//	words:   nwords (wlen word[wlen])*
//	flags:   0x01 header overflow, 0x02 body overflow
//
// len and the CRC are big-endian, the rest unsigned varints; the words
// are the distinct words of the field as Collect gathers them, in the
// order they came. A record is appended after the message is committed
// (fsync'd in new/), in one write(2) under flock(2) of the pending file,
// without fsync: the index is a cache. The file stops taking records at
// MaxPending (128 MiB, about 150,000 messages of 10 KB): the messages that
// find it full are indexed later by reading them.
//
// A reader that opens the index for a search first folds the pending
// file, holding its flock(2) throughout so that no delivery appends
// meanwhile: each record's base name is mapped to a UID through the
// caller's mailbox; a record of a UID the index covers is skipped, of a
// message the mailbox does not list is kept if new/<base> still exists
// (delivered after the caller's last sync) and dropped otherwise; the
// others are written as segments, one per builder goroutine (up to one
// per CPU); then the file is emptied and the kept records written back.
// No message is opened. The segments are not fsync'd: a crash that loses
// them while the truncation survives only leaves messages to be read
// again, and one that keeps them but not the truncation folds the same
// records again, which the covered check makes harmless. A damaged
// stretch (a record torn by a crash, garbage) is skipped up to the next
// "MRP1"; its messages are indexed by reading them.
//
// # Memory
//
// A Builder writes a segment whenever it holds 2 Mi postings or 256 Ki
// terms, so building the index of a mailbox of any size needs a bounded
// amount of memory (a fold, one Builder per goroutine); Compact merges
// segments term by term. Queries and folds read the files through
// read-only mappings, populated at once on Linux.
package textindex
