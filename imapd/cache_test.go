package imapd

import (
	"os"
	"path/filepath"
	"testing"

	"mailroom/maildir"
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

// TestHeaderOnlyCache: ENVELOPE and the header sections add header-only
// records; later sessions get the same answers from them; BODYSTRUCTURE
// and the body upgrade a record to a whole one, and every answer stays
// the same through each step, for well-formed and malformed messages.
func TestHeaderOnlyCache(t *testing.T) {
	e := newTestEnv(t, nil)
	msgs := []string{fixture1, fixture2,
		"Subject: no blank line\nFrom: a@b",
		" leading continuation\nSubject: caf\xc3\xa9 \x00\nFrom a@b no colon\n\nbody\x00\n",
		"Subject: bare\rcr\r\n\r\nbody\r",
	}
	for _, m := range msgs {
		deliver(t, e.root(), "", m)
	}
	headerItems := "(ENVELOPE INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (FROM SUBJECT X-NONE)] BODY.PEEK[HEADER.FIELDS.NOT (To)] RFC822.HEADER)"
	wholeItems := "(BODYSTRUCTURE BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[]<2.20>)"
	fetch := func(items string) []string {
		c := e.login()
		c.cmd("s", "EXAMINE INBOX")
		r := c.cmd("f", "FETCH 1:* "+items)
		must(t, last(r), "f OK")
		c.cmd("z", "LOGOUT")
		c.expectEOF()
		return r
	}
	headerOnly := func() (n int) {
		c := openStructCache(e.root(), uidValidity(t, e.root()), e.srv.Logger)
		defer c.close()
		for uid := range c.index {
			if st, _ := c.get(uid, -1); st != nil && st.HeaderOnly() {
				n++
			}
		}
		return n
	}
	first := fetch(headerItems)
	if n := headerOnly(); n != len(msgs) {
		t.Errorf("after ENVELOPE: %d header-only records, want %d", n, len(msgs))
	}
	same(t, "header items from the cache", first, fetch(headerItems))
	whole := fetch(wholeItems)
	if n := headerOnly(); n != 0 {
		t.Errorf("after BODYSTRUCTURE: %d header-only records left", n)
	}
	same(t, "header items from whole records", first, fetch(headerItems))
	same(t, "whole items from the cache", whole, fetch(wholeItems))
	if err := os.Remove(filepath.Join(e.root(), CacheName)); err != nil {
		t.Fatal(err)
	}
	same(t, "whole items parsed again", whole, fetch(wholeItems))
}

func same(t *testing.T, what string, a, b []string) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d vs %d responses:\n%q\n%q", what, len(a), len(b), a, b)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("%s: response %d: %q vs %q", what, i, a[i], b[i])
		}
	}
}

func uidValidity(t *testing.T, root string) uint32 {
	t.Helper()
	mb, err := maildir.OpenMailbox(root)
	if err != nil {
		t.Fatal(err)
	}
	return mb.UIDValidity()
}
