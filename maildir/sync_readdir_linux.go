package maildir

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// syncReadDirBufs are getdents64 buffers, reused: every sync reads two
// directories, and every POP3 login syncs.
var syncReadDirBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// syncReadDir returns the names in dir, without stat. All names are
// slices of one string: a directory of 10,000 messages costs a handful of
// allocations, where os.File.Readdirnames makes one string per entry.
// hint, if positive, bounds the bytes of names expected: a directory's
// size never shrinks on ext4, so a cur/ that once held many more messages
// would otherwise make every listing reserve room for all of them.
func syncReadDir(dir string, hint int) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	defer f.Close()
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("maildir: read %s: %w", dir, err)
	}
	bufp := syncReadDirBufs.Get().(*[]byte)
	defer syncReadDirBufs.Put(bufp)
	buf := *bufp
	var blob []byte  // the names, back to back
	var ends []int32 // where each name ends in blob
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.Size() < 64<<20 {
		// On ext4 and xfs a directory's size is about the bytes of its
		// entries: room for the names without regrowing the blob.
		size := int(fi.Size())
		if hint > 0 {
			size = min(size, hint)
		}
		blob = make([]byte, 0, size)
		ends = make([]int32, 0, size/32)
	}
	for {
		var n int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			for {
				n, rerr = syscall.ReadDirent(int(fd), buf)
				if rerr != syscall.EINTR {
					return true
				}
			}
		}); err != nil {
			return nil, fmt.Errorf("maildir: read %s: %w", dir, err)
		}
		if rerr != nil {
			return nil, fmt.Errorf("maildir: read %s: %w", dir, rerr)
		}
		if n <= 0 {
			break
		}
		if blob, ends, err = syncParseDirents(buf[:n], blob, ends); err != nil {
			return nil, fmt.Errorf("maildir: read %s: %w", dir, err)
		}
	}
	if len(blob) == 0 {
		return nil, nil
	}
	// blob is never written again: the names may share it as a string
	// instead of copying it.
	all := unsafe.String(&blob[0], len(blob))
	names := make([]string, len(ends))
	start := int32(0)
	for i, end := range ends {
		names[i] = all[start:end]
		start = end
	}
	return names, nil
}

// syncParseDirents appends the names in a getdents64(2) buffer (struct
// linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, then the
// NUL-terminated name) to blob, skipping "." and "..".
func syncParseDirents(buf, blob []byte, ends []int32) ([]byte, []int32, error) {
	const nameOff = int(unsafe.Offsetof(syscall.Dirent{}.Name))
	const reclenOff = int(unsafe.Offsetof(syscall.Dirent{}.Reclen))
	for len(buf) > 0 {
		if len(buf) < nameOff {
			return blob, ends, fmt.Errorf("short directory entry")
		}
		reclen := int(*(*uint16)(unsafe.Pointer(&buf[reclenOff])))
		if reclen <= nameOff || reclen > len(buf) {
			return blob, ends, fmt.Errorf("bad directory entry length %d", reclen)
		}
		name := buf[nameOff:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		buf = buf[reclen:]
		if string(name) == "." || string(name) == ".." {
			continue
		}
		blob = append(blob, name...)
		ends = append(ends, int32(len(blob)))
	}
	return blob, ends, nil
}
