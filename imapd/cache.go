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

	"mailroom/internal/fsx"
	"mailroom/internal/message"
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
// record for a UID replaces an earlier one.
//
// Compaction: when the records that no longer count (replaced, or of
// expunged UIDs) are more than half the file, and the file is at least
// cacheCompactMin octets, the live records are written to
// mailroom-cache.new, fsync'd, and renamed over the file, all under the
// old file's flock; a crash leaves the old file or the new one, both
// whole. A process that finds, once it holds the lock, that the name no
// longer leads to its descriptor's file reopens the name before
// appending, so no record goes to a replaced file. Reading stops at the first
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

// cacheCompactMin is the smallest file compaction rewrites: below it the
// dead records cost less than the rewrite. A variable for the tests.
var cacheCompactMin int64 = 1 << 20

// cacheNewName is the file a compaction writes before renaming it over
// CacheName; only the holder of the old file's flock writes it.
const cacheNewName = CacheName + ".new"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type cacheEntry struct {
	data  []byte // the record's data: never changed once written
	size  int64
	mtime int64 // unix nanoseconds
	// block is where headerBlock found the header block: 0 not looked
	// for yet, -1 none, else its length + 1 (it ends where the record's
	// checksum starts). Later FETCHes then skip RecordHeaderBlock's walk.
	block int32
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

	path     string
	uidValid uint32
	// fileSize is the file's size as this cache knows it: loaded, plus
	// what it appended; -1 once another process appended (compaction
	// then waits for a fresh load, which sees their records).
	fileSize int64
	// dead counts the octets of records replaced by a later one for the
	// same UID; the records of expunged UIDs are counted at compaction.
	dead           int64
	expungeChecked bool // compactIfWasteful looked for expunged UIDs
	compacts       int  // compactions done, for the tests
}

// recordLen is the length in the file of a record with n octets of data.
func recordLen(n int) int64 { return int64(cacheFixedLen + n + 4) }

func openStructCache(dir string, uidValidity uint32, log *slog.Logger) *structCache {
	path := filepath.Join(dir, CacheName)
	c := &structCache{log: log, path: path, uidValid: uidValidity, fileSize: -1}
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
		c.fileSize = int64(len(want))
		return nil
	}
	c.index = make(map[uint32]cacheEntry, len(c.data)/1024)
	off, err := c.scan(cacheHeaderLen)
	c.fileSize = int64(off)
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
		uid := binary.BigEndian.Uint32(rest)
		if old, ok := c.index[uid]; ok {
			c.dead += recordLen(len(old.data))
		}
		c.index[uid] = cacheEntry{
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

// headerBlock returns the header block kept in uid's record, shared with
// the cache (never changed), without decoding the rest of the record:
// what BODY[HEADER.FIELDS (...)] over a mailbox needs. size, when ≥ 0,
// must match the recorded file size. ok is false without such a record.
func (c *structCache) headerBlock(uid uint32, size int64) ([]byte, bool) {
	c.mu.Lock()
	e, ok := c.index[uid]
	c.mu.Unlock()
	if !ok || (size >= 0 && size != e.size) {
		return nil, false
	}
	switch {
	case e.block < 0:
		return nil, false
	case e.block > 0:
		end := len(e.data) - 4
		return e.data[end-int(e.block-1) : end : end], true
	}
	b, ok := message.RecordHeaderBlock(e.data)
	e.block = -1
	if ok {
		e.block = int32(len(b)) + 1
	}
	c.mu.Lock()
	if cur, still := c.index[uid]; still && len(cur.data) > 0 && &cur.data[0] == &e.data[0] {
		c.index[uid] = e
	}
	c.mu.Unlock()
	return b, ok
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
	if old, ok := c.index[uid]; ok {
		c.dead += recordLen(len(old.data))
	}
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
// flock(2), so the records of two processes never interleave. The file
// is the one the name leads to: if another process compacted it since,
// the new one is opened first.
func (c *structCache) appendLocked(recs [][]byte) error {
	if err := c.lockCurrent(); err != nil {
		return err
	}
	fd := int(c.f.Fd())
	defer func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }()
	var n int64
	for _, b := range recs {
		if _, err := c.f.Write(b); err != nil {
			c.fileSize = -1
			return err
		}
		n += int64(len(b))
	}
	if c.fileSize >= 0 {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil || st.Size != c.fileSize+n {
			c.fileSize = -1 // another process appended too
		} else {
			c.fileSize = st.Size
		}
	}
	return nil
}

// lockCurrent takes the flock of the file CacheName names, reopening the
// name when a compaction elsewhere replaced the file this cache had open
// (and checking that the new one is of the same UIDVALIDITY and format).
// A bounded number of tries: each one follows a rename by another process.
func (c *structCache) lockCurrent() error {
	for try := 0; try < 8; try++ {
		fd := int(c.f.Fd())
		if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		same, err := c.nameIsOpenFile()
		if err != nil || same {
			if err != nil {
				_ = syscall.Flock(fd, syscall.LOCK_UN)
			}
			return err
		}
		_ = syscall.Flock(fd, syscall.LOCK_UN)
		f, err := os.OpenFile(c.path, os.O_RDWR|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		var head [cacheHeaderLen]byte
		want := binary.BigEndian.AppendUint32([]byte(cacheMagic), c.uidValid)
		if _, err := f.ReadAt(head[:], 0); err != nil || string(head[:]) != string(want) {
			_ = f.Close()
			return errors.New("cache file replaced by one of another mailbox state")
		}
		_ = c.f.Close()
		c.f, c.fileSize = f, -1
	}
	return errors.New("cache file keeps being replaced")
}

// nameIsOpenFile reports whether CacheName still leads to the open file.
func (c *structCache) nameIsOpenFile() (bool, error) {
	var byName, byFD syscall.Stat_t
	if err := syscall.Stat(c.path, &byName); err != nil {
		return false, fmt.Errorf("stat: %w", err)
	}
	if err := syscall.Fstat(int(c.f.Fd()), &byFD); err != nil {
		return false, fmt.Errorf("stat: %w", err)
	}
	return byName.Dev == byFD.Dev && byName.Ino == byFD.Ino, nil
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

// compactAtClose is compactIfWasteful when the last view lets the cache
// go: expunged UIDs are looked for again, since those expunged while
// the view was open were not (a view may live for days, see
// view_linger.go).
func (c *structCache) compactAtClose(alive func(uid uint32) bool) {
	c.mu.Lock()
	c.expungeChecked = false
	c.mu.Unlock()
	c.compactIfWasteful(alive)
}

// compactIfWasteful rewrites the file without its dead records when they
// are more than half of it (see the format above). alive says whether a
// UID still names a message; it is called without the cache's lock held
// (it may take the view's). The cache stays usable whatever happens: a
// failed compaction leaves the old file, and is only logged.
func (c *structCache) compactIfWasteful(alive func(uid uint32) bool) {
	c.mu.Lock()
	if c.f == nil || c.fileSize < cacheCompactMin || c.fileSize < 0 ||
		(c.expungeChecked && 2*c.dead <= c.fileSize-cacheHeaderLen) {
		// Expunged UIDs are looked for once per load (it costs a look-up
		// per record); replaced records are counted as they come.
		c.mu.Unlock()
		return
	}
	c.expungeChecked = true
	uids := make([]uint32, 0, len(c.index))
	for uid := range c.index {
		uids = append(uids, uid)
	}
	c.mu.Unlock()
	gone := map[uint32]bool{}
	for _, uid := range uids {
		if !alive(uid) {
			gone[uid] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil || c.fileSize < 0 {
		return
	}
	dead := c.dead
	for uid := range gone {
		if e, ok := c.index[uid]; ok {
			dead += recordLen(len(e.data))
		}
	}
	if 2*dead <= c.fileSize-cacheHeaderLen {
		return
	}
	if err := c.compactLocked(gone); err != nil {
		c.log.Warn("cache", "path", c.path, "compact", "failed", "err", err)
	}
}

// compactLocked writes the records of the index but those of gone to
// cacheNewName and renames it over the file, under the file's flock; c.mu
// is held. Records added since the last flush are written too.
func (c *structCache) compactLocked(gone map[uint32]bool) error {
	if err := c.lockCurrent(); err != nil {
		return err
	}
	oldFD := int(c.f.Fd())
	defer func() { _ = syscall.Flock(oldFD, syscall.LOCK_UN) }()
	var st syscall.Stat_t
	if err := syscall.Fstat(oldFD, &st); err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if st.Size != c.fileSize {
		// Another process appended records this cache has not read:
		// they would be lost. A later load sees them.
		c.fileSize = -1
		return nil
	}
	var live int64
	for uid, e := range c.index {
		if !gone[uid] {
			live += recordLen(len(e.data))
		}
	}
	data := make([]byte, 0, cacheHeaderLen+live)
	data = binary.BigEndian.AppendUint32(append(data, cacheMagic...), c.uidValid)
	index := make(map[uint32]cacheEntry, len(c.index)-len(gone))
	for uid, e := range c.index {
		if gone[uid] {
			continue
		}
		start := len(data)
		data = binary.BigEndian.AppendUint32(data, uid)
		data = binary.BigEndian.AppendUint64(data, uint64(e.size))
		data = binary.BigEndian.AppendUint64(data, uint64(e.mtime))
		data = binary.BigEndian.AppendUint32(data, uint32(len(e.data)))
		data = append(data, e.data...)
		end := len(data)
		data = binary.BigEndian.AppendUint32(data, crc32.Checksum(data[start:], crcTable))
		index[uid] = cacheEntry{data: data[start+cacheFixedLen : end : end], size: e.size, mtime: e.mtime}
	}
	f, err := c.writeNew(data)
	if err != nil {
		return err
	}
	// The old descriptor keeps its lock until the deferred unlock: a
	// process waiting on it finds the name moved on (lockCurrent).
	old := c.f
	c.f, c.data, c.index = f, data, index
	c.fileSize, c.dead = int64(len(data)), 0
	c.tail, c.pending, c.full = nil, 0, nil
	c.dirty = false
	c.compacts++
	defer func() { _ = old.Close() }()
	return nil
}

// writeNew writes data to cacheNewName, makes it durable, renames it
// over CacheName and returns it opened for appending.
func (c *structCache) writeNew(data []byte) (*os.File, error) {
	dir := filepath.Dir(c.path)
	tmp := filepath.Join(dir, cacheNewName)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("compact: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fail(err)
	}
	if err := fsx.SyncDir(dir); err != nil {
		// Renamed already: the new file is in use either way.
		c.log.Warn("cache", "path", c.path, "err", err)
	}
	return f, nil
}
