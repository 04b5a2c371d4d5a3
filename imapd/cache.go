package imapd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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
//	header: "MRC2" uidvalidity:u32
//	record: uid:u32 size:i64 mtime:i64 len:u32 data[len] crc:u32
//
// crc is CRC-32C over the record's bytes before it. Records are appended
// under flock(2), the records of one command in one write(2); a later
// record for a UID replaces an earlier one. Reading stops at the first
// damaged record, and the file is cut there, so a torn append costs the
// records after it. "MRC2" records carry message records of version 2
// (with the header block); a file of another magic ("MRC1") is started
// over.
const (
	cacheMagic     = "MRC2"
	cacheHeaderLen = 8
	cacheFixedLen  = 4 + 8 + 8 + 4
	cacheMaxRecord = 16 << 20
	// cacheMaxFile bounds the file read into memory; a larger one is
	// started over (at ~1 KB a message, it holds a million messages).
	cacheMaxFile = 1 << 30
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type cacheEntry struct {
	data  []byte // the record's data: never changed once written
	size  int64
	mtime int64 // unix nanoseconds
}

// cacheChunk is the size of the buffers records added by this process
// are kept in: growing one big buffer would copy it again and again.
const (
	cacheChunk      = 1 << 20
	cacheChunkSlack = 64 << 10
)

// structCache is the cache of one mailbox: a file of message.Structure
// records, read into memory once when the view first needs it, and
// indexed by UID. Records this process adds are appended to the same
// buffer and written to the file at flush, all in one write. It is safe
// for concurrent use. When the file cannot be used the cache is simply
// empty: FETCH then parses.
type structCache struct {
	mu    sync.Mutex
	f     *os.File
	data  []byte // the file as loaded
	index map[uint32]cacheEntry
	// Records added since the load: tail is the chunk being filled, and
	// tail[pending:] plus full (earlier chunks' unwritten ends) are not
	// in the file yet.
	tail    []byte
	pending int
	full    [][]byte
	dirty   bool // written since the last fsync
	log     *slog.Logger
}

func openStructCache(dir string, uidValidity uint32, log *slog.Logger) *structCache {
	c := &structCache{log: log}
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
		c.data, c.index = nil, nil
	}
	return c
}

// load reads the file into memory with one read and indexes it; a file
// of another UIDVALIDITY or format (or none) starts over, a damaged tail
// is cut off.
func (c *structCache) load(uidValidity uint32) error {
	fd := int(c.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	want := binary.BigEndian.AppendUint32([]byte(cacheMagic), uidValidity)
	fi, err := c.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size >= cacheHeaderLen && size <= cacheMaxFile {
		c.data = make([]byte, size)
		if _, err := c.f.ReadAt(c.data, 0); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	if len(c.data) < cacheHeaderLen || string(c.data[:cacheHeaderLen]) != string(want) {
		if err := c.f.Truncate(0); err != nil {
			return err
		}
		if _, err := c.f.Write(want); err != nil {
			return err
		}
		c.data, c.index = want, map[uint32]cacheEntry{}
		return nil
	}
	c.index = make(map[uint32]cacheEntry, len(c.data)/1024)
	off, err := c.scan(cacheHeaderLen)
	if err != nil {
		c.log.Warn("cache", "path", c.f.Name(), "offset", off, "err", err)
		c.data = c.data[:off]
		return c.f.Truncate(int64(off))
	}
	return nil
}

// scan indexes the records of data from off on; it returns where the
// valid records end and, if they end before the data does, why.
func (c *structCache) scan(off int) (int, error) {
	for off < len(c.data) {
		rest := c.data[off:]
		if len(rest) < cacheFixedLen {
			return off, errors.New("short record")
		}
		n := binary.BigEndian.Uint32(rest[20:])
		if n > cacheMaxRecord || len(rest) < cacheFixedLen+int(n)+4 {
			return off, errors.New("short or long record")
		}
		end := cacheFixedLen + int(n)
		if crc32.Checksum(rest[:end], crcTable) != binary.BigEndian.Uint32(rest[end:]) {
			return off, errors.New("bad checksum")
		}
		c.index[binary.BigEndian.Uint32(rest)] = cacheEntry{
			data:  rest[cacheFixedLen:end:end],
			size:  int64(binary.BigEndian.Uint64(rest[4:])),
			mtime: int64(binary.BigEndian.Uint64(rest[12:])),
		}
		off += end + 4
	}
	return off, nil
}

// get returns the cached structure and mtime of uid, or nil. size, when
// ≥ 0, must match the recorded file size.
func (c *structCache) get(uid uint32, size int64) (*message.Structure, int64) {
	c.mu.Lock()
	e, ok := c.index[uid]
	c.mu.Unlock()
	if !ok || (size >= 0 && size != e.size) {
		return nil, 0
	}
	// Record data is never changed (a new record is appended instead),
	// so it is read without the lock.
	s, err := message.UnmarshalShared(e.data)
	if err != nil {
		return nil, 0
	}
	return s, e.mtime
}

// put adds a record for uid; flush writes it to the file.
func (c *structCache) put(uid uint32, size, mtime int64, s *message.Structure) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return
	}
	// A chunk closes when a big record might not fit: one that does not
	// fit would move (copy) the whole chunk.
	if len(c.tail) >= cacheChunk-cacheChunkSlack {
		if c.pending < len(c.tail) {
			c.full = append(c.full, c.tail[c.pending:])
		}
		c.tail, c.pending = nil, 0
	}
	if c.tail == nil {
		c.tail = make([]byte, 0, cacheChunk)
	}
	// A record that does not fit moves the chunk (≤ cacheChunk octets):
	// entries already made keep the old array, whose octets are the same.
	start := len(c.tail)
	rec := binary.BigEndian.AppendUint32(c.tail, uid)
	rec = binary.BigEndian.AppendUint64(rec, uint64(size))
	rec = binary.BigEndian.AppendUint64(rec, uint64(mtime))
	rec = append(rec, 0, 0, 0, 0) // len, below
	rec, err := s.AppendBinary(rec)
	n := len(rec) - start - cacheFixedLen
	if err != nil || n > cacheMaxRecord {
		c.tail = rec[:start]
		return
	}
	binary.BigEndian.PutUint32(rec[start+20:], uint32(n))
	c.tail = binary.BigEndian.AppendUint32(rec, crc32.Checksum(rec[start:], crcTable))
	end := start + cacheFixedLen + n
	c.index[uid] = cacheEntry{data: c.tail[start+cacheFixedLen : end : end], size: size, mtime: mtime}
}

// flush writes the records added since the last flush in one append and
// makes them durable (end of a command): not for correctness, which the
// checksums give, but so a crash does not cost a second parse of many
// messages.
func (c *structCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return
	}
	if c.pending < len(c.tail) {
		c.full = append(c.full, c.tail[c.pending:])
		c.pending = len(c.tail)
	}
	if len(c.full) > 0 {
		if err := c.appendLocked(c.full); err != nil {
			c.log.Warn("cache", "path", c.f.Name(), "err", err)
			// Not written: kept in memory for this process only.
		} else {
			c.dirty = true
		}
		c.full = nil
	}
	if !c.dirty {
		return
	}
	c.dirty = false
	if err := c.f.Sync(); err != nil {
		c.log.Warn("cache", "path", c.f.Name(), "err", err)
	}
}

// appendLocked writes recs at the end of the file (O_APPEND) under
// flock(2), so the records of two processes never interleave.
func (c *structCache) appendLocked(recs [][]byte) error {
	fd := int(c.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return err
	}
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	for _, b := range recs {
		if _, err := c.f.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (c *structCache) close() {
	c.flush()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil {
		_ = c.f.Close()
		c.f = nil
	}
	c.data, c.index, c.tail, c.full = nil, nil, nil, nil
}
