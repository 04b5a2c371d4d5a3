package imapd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailroom/maildir/textindex"
)

var searchFixtures = []string{
	// 1: plain
	"Subject: one\n\nthe Invoice is attached\n",
	// 2: base64 text
	"Subject: two\nContent-Transfer-Encoding: base64\n\nVGhlIHNlY3JldCB3b3JkIGlzIHh5enp5Lg==\n",
	// 3: quoted-printable latin1
	"Subject: three\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nCaf=E9 cr=E8me, soft=\nbreak\n",
	// 4: base64 attachment holding the word, raw octets holding nothing
	"Subject: four\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nplain part\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\neHl6enkgaW4gYmluYXJ5\n--b--\n",
	// 5: encoded-word subject
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\nnothing here\n",
	// 6: raw octets that look like the word only when not decoded
	"Subject: six\nContent-Transfer-Encoding: base64\n\neHl6enk=\n",
}

func searchEnv(t *testing.T) (*testEnv, *client) {
	e := newTestEnv(t, nil)
	for _, m := range searchFixtures {
		deliver(t, e.root(), "", m)
	}
	c := e.login()
	must(t, last(c.cmd("s", "SELECT INBOX")), "s OK")
	return e, c
}

func TestSearchBodyDecoded(t *testing.T) {
	e, c := searchEnv(t)
	tests := []struct{ query, want string }{
		{`SEARCH BODY "xyzzy"`, "* SEARCH 2 6"},
		{`SEARCH BODY "XYZZY."`, "* SEARCH 2"},
		{`SEARCH BODY "invoice IS"`, "* SEARCH 1"},
		{"SEARCH CHARSET UTF-8 BODY {12+}\r\nCAFÉ CRÈME", "* SEARCH 3"},
		{`SEARCH BODY "softbreak"`, "* SEARCH 3"},
		{`SEARCH BODY "eHl6"`, "* SEARCH"}, // base64 is decoded, never matched raw
		{`SEARCH BODY "plain part"`, "* SEARCH 4"},
		{`SEARCH BODY "binary"`, "* SEARCH"}, // attachments are not text
		{"SEARCH TEXT {7+}\r\ngrüße", "* SEARCH 5"},
		{"SEARCH BODY {7+}\r\ngrüße", "* SEARCH"},
		{`SEARCH TEXT "subject: six"`, "* SEARCH 6"},
		{`SEARCH BODY ""`, "* SEARCH 1 2 3 4 5 6"},
		{`SEARCH NOT BODY "e"`, "* SEARCH 4 6"},
		{`SEARCH OR BODY "xyzzy" TEXT "three"`, "* SEARCH 2 3 6"},
		{`UID SEARCH BODY "nothing here"`, "* SEARCH 5"},
	}
	for round := 0; round < 2; round++ { // cold, then from the index
		for _, tc := range tests {
			r := c.cmd("a", tc.query)
			if len(r) != 2 || r[0] != tc.want || !strings.HasPrefix(r[1], "a OK") {
				t.Fatalf("round %d %s: got %q, want %q", round, tc.query, r, tc.want)
			}
		}
	}
	path := filepath.Join(e.root(), textindex.FileName)
	if fi, err := os.Stat(path); err != nil || fi.Size() <= 16 {
		t.Fatalf("index file: %v %v", fi, err)
	}
	// A new message is indexed by the next search; a damaged index is
	// rebuilt and answers the same.
	deliver(t, e.root(), "", "Subject: seven\n\nlate xyzzy\n")
	must(t, c.cmd("n", "NOOP")[0], "* 7 EXISTS")
	if r := c.cmd("b", `SEARCH BODY "xyzzy"`); r[0] != "* SEARCH 2 6 7" {
		t.Fatalf("after arrival: %q", r)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)-7], 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.cmd("c", `SEARCH BODY "xyzzy"`); r[0] != "* SEARCH 2 6 7" {
		t.Fatalf("after damage: %q", r)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.cmd("d", "SEARCH TEXT {7+}\r\ngrüße"); r[0] != "* SEARCH 5" {
		t.Fatalf("after garbage: %q", r)
	}
}

func TestSearchRes(t *testing.T) {
	_, c := searchEnv(t)
	replay(t, c, []step{
		// $ is empty before any SAVE: commands complete, doing nothing.
		{"a FETCH $ (UID)", []string{"a OK FETCH completed (no messages in $)"}},
		{"b SEARCH RETURN (SAVE) BODY xyzzy", []string{"b OK SEARCH completed"}},
		{"c FETCH $ (UID)", []string{"* 2 FETCH (UID 2)", "* 6 FETCH (UID 6)", "c OK FETCH completed"}},
		{"d UID FETCH $ (FLAGS)", []string{"* 2 FETCH (UID 2 FLAGS <*>)", "* 6 FETCH (UID 6 FLAGS <*>)", "d OK FETCH completed"}},
		{"e SEARCH $", []string{"* SEARCH 2 6", "e OK SEARCH completed"}},
		{"f UID SEARCH UID $ SUBJECT six", []string{"* SEARCH 6", "f OK SEARCH completed"}},
		{"g SEARCH RETURN (SAVE COUNT) NOT $", []string{`* ESEARCH (TAG "g") COUNT 4`, "g OK SEARCH completed"}},
		{"h SEARCH $", []string{"* SEARCH 1 3 4 5", "h OK SEARCH completed"}},
		{"i SEARCH RETURN (SAVE MIN) ALL", []string{`* ESEARCH (TAG "i") MIN 1`, "i OK SEARCH completed"}},
		{"j SEARCH $", []string{"* SEARCH 1", "j OK SEARCH completed"}},
		{"k SEARCH RETURN (SAVE) BODY xyzzy", []string{"k OK SEARCH completed"}},
		{"l STORE $ +FLAGS.SILENT (\\Deleted)", []string{"l OK STORE completed"}},
		{"m EXPUNGE", []string{"* 2 EXPUNGE", "* 5 EXPUNGE", "m OK EXPUNGE completed"}},
		// The expunged messages left $.
		{"n SEARCH $", []string{"* SEARCH", "n OK SEARCH completed"}},
		{"o UID COPY $ INBOX", []string{"o OK COPY completed (no messages in $)"}},
		{"p FETCH $ (UID", []string{"p BAD <*>"}},
		// A failed SEARCH with SAVE empties $.
		{"q SEARCH RETURN (SAVE) ALL", []string{"q OK SEARCH completed"}},
		{"r SEARCH RETURN (SAVE) CHARSET KOI8-R BODY x", []string{"r NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"}},
		{"s SEARCH $", []string{"* SEARCH", "s OK SEARCH completed"}},
		{"t SEARCH $,1", []string{"t BAD <*>"}},
	})
	// SELECT empties $.
	replay(t, c, []step{
		{"u SEARCH RETURN (SAVE) ALL", []string{"u OK SEARCH completed"}},
		{"v SELECT INBOX", []string{"<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "v OK [READ-WRITE] SELECT completed"}},
		{"w SEARCH $", []string{"* SEARCH", "w OK SEARCH completed"}},
	})
}

// TestSearchBodyCompactsAfterExpunge: once a quarter of the indexed
// messages are gone, the next search rewrites the index without them.
func TestSearchBodyCompactsAfterExpunge(t *testing.T) {
	e, c := searchEnv(t)
	if r := c.cmd("a", `SEARCH BODY "xyzzy"`); r[0] != "* SEARCH 2 6" {
		t.Fatalf("first search: %q", r)
	}
	must(t, last(c.cmd("b", `STORE 1:3 +FLAGS.SILENT (\Deleted)`)), "b OK")
	must(t, last(c.cmd("c", "EXPUNGE")), "c OK")
	if r := c.cmd("d", `UID SEARCH BODY "xyzzy"`); r[0] != "* SEARCH 6" {
		t.Fatalf("after expunge: %q", r)
	}
	ix, err := textindex.Open(e.root(), uidValidityOf(t, c))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Segments() != 1 || ix.CoveredCount() != 3 {
		t.Fatalf("index after compaction: %d segments, %d messages; want 1, 3", ix.Segments(), ix.CoveredCount())
	}
}

func uidValidityOf(t *testing.T, c *client) uint32 {
	t.Helper()
	for _, l := range c.cmd("x", "STATUS INBOX (UIDVALIDITY)") {
		if i := strings.Index(l, "UIDVALIDITY "); i >= 0 {
			var v uint32
			for _, ch := range l[i+len("UIDVALIDITY "):] {
				if ch < '0' || ch > '9' {
					break
				}
				v = v*10 + uint32(ch-'0')
			}
			return v
		}
	}
	t.Fatal("no UIDVALIDITY")
	return 0
}
