package textindex

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"
)

// The pending part of the index (see the package doc, "Pending"): the
// words of messages indexed at delivery, keyed by their Maildir base
// name because the delivering program does not know their UIDs.
const (
	// PendingName is the pending file beside FileName.
	PendingName = FileName + ".new"
	// pendingMagic opens every record; its last octet is the version.
	pendingMagic = "MRP1"
	// MaxPending bounds the pending file: an append that would take it
	// over is refused (ErrPendingFull), and the message is indexed later
	// by reading it, as if it had not been indexed at delivery.
	MaxPending = 128 << 20
	// maxPendingRecord bounds one record's body; a longer length is
	// damage.
	maxPendingRecord = 16 << 20
	// pendingFrame is the octets around a record body: magic, length,
	// CRC.
	pendingFrame = 12
	// pendingOverflowHeader and pendingOverflowBody are the bits of a
	// record's flags octet.
	pendingOverflowHeader = 1 << 0
	pendingOverflowBody   = 1 << 1
)

// ErrPendingFull reports a pending file at MaxPending.
var ErrPendingFull = errors.New("textindex: pending file full")

// appendPendingRecord appends the framed record of the words in d under
// the base name base:
//
//	record: "MRP1" len:u32 body[len] crc32c(body):u32
//	body:   blen base[blen] flags:u8 (nwords (wlen word[wlen])*){header, body}
func appendPendingRecord(dst []byte, base string, d *Doc) []byte {
	start := len(dst)
	dst = append(dst, pendingMagic...)
	dst = append(dst, 0, 0, 0, 0)
	body := len(dst)
	dst = binary.AppendUvarint(dst, uint64(len(base)))
	dst = append(dst, base...)
	var flags byte
	if d.overflow[0] {
		flags |= pendingOverflowHeader
	}
	if d.overflow[1] {
		flags |= pendingOverflowBody
	}
	dst = append(dst, flags)
	for i := range d.words {
		ws := &d.words[i]
		dst = binary.AppendUvarint(dst, uint64(len(ws.order)))
		for _, w := range ws.order {
			dst = binary.AppendUvarint(dst, uint64(w.len))
			dst = append(dst, ws.arena[w.off:w.off+w.len]...)
		}
	}
	binary.BigEndian.PutUint32(dst[start+4:], uint32(len(dst)-body))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[body:], crcTable))
}

// nextPendingRecord checks the framed record at the start of b and
// returns its body and total length.
func nextPendingRecord(b []byte) (body []byte, n int, err error) {
	if len(b) < pendingFrame || string(b[:4]) != pendingMagic {
		return nil, 0, errDamaged
	}
	l := binary.BigEndian.Uint32(b[4:])
	if l > maxPendingRecord || uint64(len(b)) < pendingFrame+uint64(l) {
		return nil, 0, errDamaged
	}
	body = b[8 : 8+l]
	if binary.BigEndian.Uint32(b[8+l:]) != crc32.Checksum(body, crcTable) {
		return nil, 0, errDamaged
	}
	return body, int(pendingFrame + l), nil
}

// pendingFields are the fields of a record's two word lists, in order.
var pendingFields = [2]Field{Header, Body}

// pendingRecord is a record body, checked.
type pendingRecord struct {
	base     []byte
	overflow [2]bool
	words    []byte // the two word lists
}

// parsePendingBody checks a record body and returns its parts.
func parsePendingBody(body []byte) (pendingRecord, error) {
	var r pendingRecord
	dec := decoderAt{b: body}
	r.base = dec.bytes(dec.uvarint())
	flags := dec.bytes(1)
	if dec.err || len(r.base) == 0 {
		return r, errDamaged
	}
	r.overflow = [2]bool{flags[0]&pendingOverflowHeader != 0, flags[0]&pendingOverflowBody != 0}
	r.words = body[dec.off:]
	if err := r.eachWord(nil); err != nil {
		return r, err
	}
	return r, nil
}

// eachWord calls fn (if not nil) for every word of the record, with its
// field index (0 header, 1 body), and checks the lists' shape.
func (r *pendingRecord) eachWord(fn func(field int, w []byte)) error {
	dec := decoderAt{b: r.words}
	for i := range pendingFields {
		n := dec.uvarint()
		if n > uint64(len(r.words)) {
			return errDamaged
		}
		for ; n > 0 && !dec.err; n-- {
			w := dec.bytes(dec.uvarint())
			if len(w) == 0 || len(w) > MaxWord {
				return errDamaged
			}
			if fn != nil {
				fn(i, w)
			}
		}
	}
	if dec.err || dec.off != len(r.words) {
		return errDamaged
	}
	return nil
}

// doc puts the record's words into d, as Collect would have gathered
// them.
func (r *pendingRecord) doc(d *Doc) {
	for i := range d.words {
		d.words[i].reset()
	}
	d.overflow = r.overflow
	_ = r.eachWord(func(i int, w []byte) { d.words[i].add(w) })
}

// walkPending calls fn for every good record of a pending file, in
// order, with the record as framed in data. A damaged stretch (a torn
// append, garbage) is skipped up to the next record magic; skipped counts
// such stretches. fn's error stops the walk.
func walkPending(data []byte, fn func(r *pendingRecord, framed []byte) error) (skipped int, err error) {
	off := 0
	for off < len(data) {
		body, n, err := nextPendingRecord(data[off:])
		var rec pendingRecord
		if err == nil {
			rec, err = parsePendingBody(body)
		}
		if err != nil {
			skipped++
			next := bytes.Index(data[off+1:], []byte(pendingMagic))
			if next < 0 {
				break
			}
			off += 1 + next
			continue
		}
		if err := fn(&rec, data[off:off+n]); err != nil {
			return skipped, err
		}
		off += n
	}
	return skipped, nil
}

// appendPending writes one framed record at the end of the pending file
// of the Maildir at dir: one write(2) under flock(2), no fsync (the index
// is a cache; a record torn by a crash is skipped when the file is read).
func appendPending(dir string, rec []byte) error {
	f, err := os.OpenFile(filepath.Join(dir, PendingName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	defer func() { _ = f.Close() }()
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("textindex: lock: %w", err)
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	if fi.Size()+int64(len(rec)) > MaxPending {
		return ErrPendingFull
	}
	if _, err := f.Write(rec); err != nil {
		return fmt.Errorf("textindex: append pending: %w", err)
	}
	return nil
}
