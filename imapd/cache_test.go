package imapd

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStructureCache: FETCH fills mailroom-cache; a damaged cache is cut
// and rebuilt, and answers stay the same.
func TestStructureCache(t *testing.T) {
	e := newTestEnv(t, nil)
	deliver(t, e.root(), "", fixture1)
	deliver(t, e.root(), "", fixture2)
	cachePath := filepath.Join(e.root(), CacheName)
	fetch := func() []string {
		c := e.login()
		c.cmd("s", "EXAMINE INBOX")
		r := c.cmd("f", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
		c.cmd("z", "LOGOUT")
		c.expectEOF()
		return r
	}
	first := fetch()
	fi, err := os.Stat(cachePath)
	if err != nil || fi.Size() <= cacheHeaderLen {
		t.Fatalf("cache after FETCH: %v, %v", fi, err)
	}
	// Flip a byte in the second record's data: the CRC must catch it.
	data, err := os.ReadFile(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-10] ^= 0xff
	if err := os.WriteFile(cachePath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	second := fetch()
	if len(first) != len(second) {
		t.Fatalf("answers differ: %q vs %q", first, second)
	}
	for i := range first {
		if first[i] != second[i] {
			t.Errorf("line %d: %q vs %q", i, first[i], second[i])
		}
	}
	st := openStructCache(e.root(), 0, e.srv.Logger)
	defer st.close()
	if len(st.index) != 0 {
		t.Errorf("a cache of another UIDVALIDITY was kept")
	}
}
