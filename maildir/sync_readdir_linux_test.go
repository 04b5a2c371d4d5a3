package maildir

import (
	"encoding/binary"
	"slices"
	"syscall"
	"testing"
	"unsafe"
)

// direntBytes builds one linux_dirent64 record.
func direntBytes(name string) []byte {
	off := int(unsafe.Offsetof(syscall.Dirent{}.Name))
	reclen := (off + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint16(b[unsafe.Offsetof(syscall.Dirent{}.Reclen):], uint16(reclen))
	copy(b[off:], name)
	return b
}

func TestSyncParseDirents(t *testing.T) {
	var buf []byte
	for _, n := range []string{".", "..", "a", "1732300000.M1P2.host,S=1:2,S", ".hidden"} {
		buf = append(buf, direntBytes(n)...)
	}
	blob, ends, err := syncParseDirents(buf, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	start := int32(0)
	for _, e := range ends {
		got = append(got, string(blob[start:e]))
		start = e
	}
	if want := []string{"a", "1732300000.M1P2.host,S=1:2,S", ".hidden"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range [][]byte{buf[:5], append(slices.Clone(buf[:24]), 0)} {
		if _, _, err := syncParseDirents(bad, nil, nil); err == nil {
			t.Errorf("%x: no error", bad)
		}
	}
}

func FuzzSyncParseDirents(f *testing.F) {
	f.Add(append(direntBytes("a"), direntBytes("b:2,S")...))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, buf []byte) {
		blob, ends, err := syncParseDirents(buf, nil, nil)
		if err != nil {
			return
		}
		prev := int32(0)
		for _, e := range ends {
			if e < prev || int(e) > len(blob) {
				t.Fatalf("end %d after %d, blob %d", e, prev, len(blob))
			}
			prev = e
		}
	})
}
