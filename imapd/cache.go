package imapd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"mailroom/imapd/message"
)

// CacheName is the per-mailbox structure cache beside new/ and cur/.
const CacheName = "mailroom-cache"

// Cache file layout (big-endian; see the package doc):
//
//	header: "MRC1" uidvalidity:u32
//	record: uid:u32 size:i64 mtime:i64 len:u32 data[len] crc:u32
//
// crc is CRC-32C over the record's bytes before it. Records are appended
// under flock(2), one write(2) each; a later record for a UID replaces an
// earlier one. Reading stops at the first damaged record, and the file is
// cut there, so a torn append costs one record.
const (
	cacheMagic     = "MRC1"
	cacheHeaderLen = 8
	cacheFixedLen  = 4 + 8 + 8 + 4
	cacheMaxRecord = 16 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type cacheEntry struct {
	off   int64 // of data
	n     uint32
	size  int64
	mtime int64 // unix nanoseconds
}

// structCache is the cache of one mailbox: a file of message.Structure
// records, indexed in memory by UID. It is safe for concurrent use. When
// the file cannot be used the cache is simply empty: FETCH then parses.
type structCache struct {
	mu    sync.Mutex
	f     *os.File
	index map[uint32]cacheEntry
	dirty bool
	log   *slog.Logger
}

func openStructCache(dir string, uidValidity uint32, log *slog.Logger) *structCache {
	c := &structCache{index: map[uint32]cacheEntry{}, log: log}
	path := filepath.Join(dir, CacheName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		log.Warn("cache", "path", path, "err", err)
		return c
	}
	c.f = f
	if err := c.load(uidValidity); err != nil {
		log.Warn("cache", "path", path, "err", err)
		_ = f.Close()
		c.f = nil
	}
	return c
}

// load reads the index; a file of another UIDVALIDITY (or none) starts
// over, a damaged tail is cut off.
func (c *structCache) load(uidValidity uint32) error {
	if err := syscall.Flock(int(c.f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer func() { _ = syscall.Flock(int(c.f.Fd()), syscall.LOCK_UN) }()
	br := bufio.NewReaderSize(io.NewSectionReader(c.f, 0, 1<<62), 64<<10)
	var hdr [cacheHeaderLen]byte
	want := append([]byte(cacheMagic), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(want[4:], uidValidity)
	if _, err := io.ReadFull(br, hdr[:]); err != nil || string(hdr[:]) != string(want) {
		if err := c.f.Truncate(0); err != nil {
			return err
		}
		_, err := c.f.Write(want)
		return err
	}
	off := int64(cacheHeaderLen)
	var fixed [cacheFixedLen]byte
	for {
		if _, err := io.ReadFull(br, fixed[:]); err != nil {
			return c.cut(off, err)
		}
		n := binary.BigEndian.Uint32(fixed[20:])
		if n > cacheMaxRecord {
			return c.cut(off, errors.New("record too long"))
		}
		data := make([]byte, int(n)+4)
		if _, err := io.ReadFull(br, data); err != nil {
			return c.cut(off, err)
		}
		crc := crc32.Update(crc32.Checksum(fixed[:], crcTable), crcTable, data[:n])
		if crc != binary.BigEndian.Uint32(data[n:]) {
			return c.cut(off, errors.New("bad checksum"))
		}
		uid := binary.BigEndian.Uint32(fixed[0:])
		c.index[uid] = cacheEntry{
			off:   off + cacheFixedLen,
			n:     n,
			size:  int64(binary.BigEndian.Uint64(fixed[4:])),
			mtime: int64(binary.BigEndian.Uint64(fixed[12:])),
		}
		off += cacheFixedLen + int64(n) + 4
	}
}

// cut drops everything from off on (io.EOF exactly at off is the normal
// end of the file).
func (c *structCache) cut(off int64, cause error) error {
	if errors.Is(cause, io.EOF) {
		return nil
	}
	c.log.Warn("cache", "path", c.f.Name(), "offset", off, "err", cause)
	return c.f.Truncate(off)
}

// get returns the cached structure and mtime of uid, or nil. size, when
// ≥ 0, must match the recorded file size.
func (c *structCache) get(uid uint32, size int64) (*message.Structure, int64) {
	c.mu.Lock()
	e, ok := c.index[uid]
	f := c.f
	c.mu.Unlock()
	if !ok || f == nil || (size >= 0 && size != e.size) {
		return nil, 0
	}
	data := make([]byte, e.n)
	if _, err := f.ReadAt(data, e.off); err != nil {
		return nil, 0
	}
	var s message.Structure
	if err := s.UnmarshalBinary(data); err != nil {
		return nil, 0
	}
	return &s, e.mtime
}

// put appends a record for uid.
func (c *structCache) put(uid uint32, size, mtime int64, s *message.Structure) {
	data, err := s.MarshalBinary()
	if err != nil || len(data) > cacheMaxRecord {
		return
	}
	rec := make([]byte, cacheFixedLen, cacheFixedLen+len(data)+4)
	binary.BigEndian.PutUint32(rec[0:], uid)
	binary.BigEndian.PutUint64(rec[4:], uint64(size))
	binary.BigEndian.PutUint64(rec[12:], uint64(mtime))
	binary.BigEndian.PutUint32(rec[20:], uint32(len(data)))
	rec = append(rec, data...)
	rec = binary.BigEndian.AppendUint32(rec, crc32.Checksum(rec, crcTable))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return
	}
	if err := c.appendLocked(uid, size, mtime, rec); err != nil {
		c.log.Warn("cache", "path", c.f.Name(), "err", err)
	}
}

func (c *structCache) appendLocked(uid uint32, size, mtime int64, rec []byte) error {
	fd := int(c.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return err
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	fi, err := c.f.Stat()
	if err != nil {
		return err
	}
	if _, err := c.f.Write(rec); err != nil {
		return err
	}
	c.index[uid] = cacheEntry{off: fi.Size() + cacheFixedLen, n: uint32(len(rec) - cacheFixedLen - 4), size: size, mtime: mtime}
	c.dirty = true
	return nil
}

// flush makes the appended records durable (end of a command): not for
// correctness, which the checksums give, but so a crash does not cost a
// second parse of many messages.
func (c *structCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil || !c.dirty {
		return
	}
	c.dirty = false
	if err := c.f.Sync(); err != nil {
		c.log.Warn("cache", "path", c.f.Name(), "err", err)
	}
}

func (c *structCache) close() {
	c.flush()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		_ = c.f.Close()
		c.f = nil
	}
}
