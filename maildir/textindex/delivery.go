package textindex

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"mailroom/internal/message"
)

// Delivery-time indexing: the program that delivers a message into a
// Maildir (deliver) gathers its words once, as a SEARCH would, and
// appends them to the Maildir's pending file; the next reader of the
// index folds them in under the message's UID (FoldPending).

// maxInMemory is the largest message a DeliveryIndexer reads into memory
// whole (one read); a larger one is read through the file.
const maxInMemory = 1 << 20

// DeliveryIndexer indexes delivered messages. Its buffers are reused
// from message to message; it is not safe for concurrent use (take one
// from GetDeliveryIndexer per delivery).
type DeliveryIndexer struct {
	x   *Extractor
	d   Doc
	buf []byte
	br  *bufio.Reader
	rec []byte
}

var deliveryIndexers = sync.Pool{New: func() any {
	return &DeliveryIndexer{x: NewExtractor(), br: bufio.NewReaderSize(nil, 64<<10)}
}}

// GetDeliveryIndexer takes a DeliveryIndexer from a pool; PutDeliveryIndexer
// gives it back.
func GetDeliveryIndexer() *DeliveryIndexer { return deliveryIndexers.Get().(*DeliveryIndexer) }

// PutDeliveryIndexer returns di to the pool.
func PutDeliveryIndexer(di *DeliveryIndexer) {
	if cap(di.buf) > maxInMemory || cap(di.rec) > maxInMemory {
		di.buf, di.rec = nil, nil // keep the pool's memory bounded
	}
	deliveryIndexers.Put(di)
}

// Collect reads the message file at path (one read when it is at most
// 1 MiB), parses its structure and gathers its words, replacing what an
// earlier Collect gathered.
func (di *DeliveryIndexer) Collect(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("textindex: %w", err)
	}
	var ra io.ReaderAt = f
	var r io.Reader = io.NewSectionReader(f, 0, fi.Size())
	if fi.Size() <= maxInMemory {
		if int64(cap(di.buf)) < fi.Size() {
			di.buf = make([]byte, fi.Size())
		}
		di.buf = di.buf[:fi.Size()]
		if _, err := io.ReadFull(f, di.buf); err != nil {
			return fmt.Errorf("textindex: read %s: %w", path, err)
		}
		br := bytes.NewReader(di.buf)
		ra, r = br, br
	}
	// Parse reads through di.br itself: its buffer is as big as Parse's.
	di.br.Reset(r)
	st, err := message.Parse(di.br)
	di.br.Reset(nil)
	if err != nil {
		return fmt.Errorf("textindex: parse %s: %w", path, err)
	}
	return di.x.Collect(&di.d, 0, st, ra)
}

// Append appends the words of the last Collect to the pending file of
// the Maildir at dir as the record of base, the message's base name (its
// file name up to the first ':'). It returns ErrPendingFull when the
// pending file is at MaxPending.
func (di *DeliveryIndexer) Append(dir, base string) error {
	di.rec = appendPendingRecord(di.rec[:0], base, &di.d)
	return appendPending(dir, di.rec)
}

// IndexDelivered indexes the message just delivered at path, a file in
// the new/ or cur/ of a Maildir: Collect, then Append to that Maildir.
func IndexDelivered(path string) error {
	di := GetDeliveryIndexer()
	defer PutDeliveryIndexer(di)
	if err := di.Collect(path); err != nil {
		return err
	}
	dir, base := MaildirOf(path)
	return di.Append(dir, base)
}

// MaildirOf splits the path of a message file in <maildir>/new/ or
// <maildir>/cur/ into the Maildir and the message's base name.
func MaildirOf(path string) (dir, base string) {
	base, _, _ = strings.Cut(filepath.Base(path), ":")
	return filepath.Dir(filepath.Dir(path)), base
}
