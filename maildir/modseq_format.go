package maildir

// The byte layout of mailroom-modseq (docs/formats.md §1.12). All integers
// are little-endian. A 48-byte header:
//
//	 0  4  magic "MRMQ"
//	 4  2  version (1)
//	 6  2  record size (24)
//	 8  4  UIDVALIDITY the records belong to
//	12  4  zero
//	16  8  base: the modseq the history starts at; VanishedSince below it
//	       is incomplete
//	24  8  floor: the highest modseq of an expunge record compaction
//	       dropped (0: none); VanishedSince below it is incomplete
//	32  8  high: the highest modseq when the file was written; the
//	       mailbox's HIGHESTMODSEQ is the maximum of high and the records'
//	40  4  CRC-32C (Castagnoli) of bytes 0–39
//	44  4  zero
//
// then records of 24 bytes, appended in modseq order:
//
//	 0  1  kind: 'C' changed (flags and keywords as of modseq), 'X'
//	       expunged, 'R' recent claimed up to UID (exclusive)
//	 1  1  flags (bit 0 D, 1 F, 2 P, 3 R, 4 S, 5 T); 0 unless 'C'
//	 2  2  zero
//	 4  4  UID (not 0)
//	 8  8  modseq; 0 for 'R'
//	16  4  keyword slots (bit 0 is 'a'); 0 unless 'C'
//	20  4  CRC-32C of bytes 0–19

import (
	"encoding/binary"
	"hash/crc32"
)

// ModSeqName is the file at a Maildir's root holding MODSEQs, expunges and
// \Recent. Dovecot ignores it.
const ModSeqName = "mailroom-modseq"

const (
	modseqMagic      = "MRMQ"
	modseqVersion    = 1
	modseqHeaderSize = 48
	modseqRecordSize = 24
)

// Record kinds.
const (
	modseqChanged  = 'C'
	modseqExpunged = 'X'
	modseqRecent   = 'R'
)

var modseqCRC = crc32.MakeTable(crc32.Castagnoli)

// modseqHeader is the file's header.
type modseqHeader struct {
	uidValidity uint32
	base, floor uint64
	high        uint64
}

// modseqRecord is one log record.
type modseqRecord struct {
	kind   byte
	flags  Flags
	uid    uint32
	modseq uint64
	kw     Keywords
}

// appendModseqHeader appends h's 48 bytes to b.
func appendModseqHeader(b []byte, h modseqHeader) []byte {
	start := len(b)
	b = append(b, modseqMagic...)
	b = binary.LittleEndian.AppendUint16(b, modseqVersion)
	b = binary.LittleEndian.AppendUint16(b, modseqRecordSize)
	b = binary.LittleEndian.AppendUint32(b, h.uidValidity)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, h.base)
	b = binary.LittleEndian.AppendUint64(b, h.floor)
	b = binary.LittleEndian.AppendUint64(b, h.high)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], modseqCRC))
	return binary.LittleEndian.AppendUint32(b, 0)
}

// parseModseqHeader decodes a header; ok is false for anything that is
// not exactly what appendModseqHeader writes.
func parseModseqHeader(b []byte) (h modseqHeader, ok bool) {
	if len(b) < modseqHeaderSize || string(b[:4]) != modseqMagic {
		return h, false
	}
	le := binary.LittleEndian
	if le.Uint16(b[4:]) != modseqVersion || le.Uint16(b[6:]) != modseqRecordSize ||
		le.Uint32(b[12:]) != 0 || le.Uint32(b[44:]) != 0 ||
		le.Uint32(b[40:]) != crc32.Checksum(b[:40], modseqCRC) {
		return h, false
	}
	h = modseqHeader{uidValidity: le.Uint32(b[8:]), base: le.Uint64(b[16:]), floor: le.Uint64(b[24:]), high: le.Uint64(b[32:])}
	if h.base > h.high || h.floor > h.high {
		return h, false
	}
	return h, true
}

// appendModseqRecord appends r's 24 bytes to b.
func appendModseqRecord(b []byte, r modseqRecord) []byte {
	start := len(b)
	b = append(b, r.kind, byte(r.flags), 0, 0)
	b = binary.LittleEndian.AppendUint32(b, r.uid)
	b = binary.LittleEndian.AppendUint64(b, r.modseq)
	b = binary.LittleEndian.AppendUint32(b, uint32(r.kw))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], modseqCRC))
}

// parseModseqRecord decodes the 24 bytes of one record; ok is false for a
// damaged or unknown one. It allocates nothing: it runs for every record
// at every open.
func parseModseqRecord(b []byte) (r modseqRecord, ok bool) {
	if len(b) < modseqRecordSize {
		return r, false
	}
	b = b[:modseqRecordSize]
	le := binary.LittleEndian
	if le.Uint32(b[20:]) != crc32.Checksum(b[:20], modseqCRC) || b[2] != 0 || b[3] != 0 {
		return r, false
	}
	r = modseqRecord{kind: b[0], flags: Flags(b[1]), uid: le.Uint32(b[4:]), modseq: le.Uint64(b[8:]), kw: Keywords(le.Uint32(b[16:]))}
	if r.uid == 0 || r.flags >= 1<<len(flagLetters) || r.kw >= 1<<MaxKeywords {
		return r, false
	}
	switch r.kind {
	case modseqChanged:
		return r, r.modseq != 0
	case modseqExpunged:
		return r, r.modseq != 0 && r.flags == 0 && r.kw == 0
	case modseqRecent:
		return r, r.modseq == 0 && r.flags == 0 && r.kw == 0
	}
	return r, false
}

// modseqScan walks the records in b (a whole number of them is not
// required) and calls fn for each valid one, stopping at the first record
// that is damaged. It returns how many bytes of b are valid records and
// whether it stopped at damage (rather than at a short fragment).
func modseqScan(b []byte, fn func(modseqRecord)) (valid int, damaged bool) {
	for len(b)-valid >= modseqRecordSize {
		r, ok := parseModseqRecord(b[valid:])
		if !ok {
			return valid, true
		}
		fn(r)
		valid += modseqRecordSize
	}
	return valid, false
}
