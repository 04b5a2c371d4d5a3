package imapd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"

	"mailroom/internal/account"
	"mailroom/maildir"
)

// writeMaildirsize writes root's maildirsize as given.
func writeMaildirsize(t *testing.T, root, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, maildir.QuotaFileName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// usage returns root's quota usage from maildirsize.
func usage(t *testing.T, root string) (int64, int64) {
	t.Helper()
	b, c, err := maildir.ReadQuotaUsage(root)
	if err != nil {
		t.Fatal(err)
	}
	return b, c
}

// files lists the names in dir (a Maildir's cur/, new/ or tmp/).
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// messageCount counts the messages of a Maildir and checks its tmp/ is
// empty: an aborted command must leave nothing anywhere.
func messageCount(t *testing.T, dir string) int {
	t.Helper()
	if tmp := files(t, filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("%s/tmp holds %v", dir, tmp)
	}
	return len(files(t, filepath.Join(dir, "cur"))) + len(files(t, filepath.Join(dir, "new")))
}

// addQuotaUser adds an account with a userdb_quota_rule (password "pw")
// and returns its Maildir.
func addQuotaUser(t *testing.T, e *testEnv, address, rule string) string {
	t.Helper()
	hash, err := account.HashPassword("pw", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := account.AddUser(e.passwd, account.User{Address: address, Hash: hash, UID: -1, GID: -1, Extra: map[string]string{"userdb_quota_rule": rule}}); err != nil {
		t.Fatal(err)
	}
	db, err := account.Load(e.passwd, e.mailRoot)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.users = db
	e.mu.Unlock()
	root, _ := db.Mailbox(address)
	if err := maildir.Create(root); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestQuotaRootAndGetQuota(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.login()
	// No maildirsize and no rule: no quota root (a QUOTA response needs
	// at least one resource, RFC 9208 §9).
	replay(t, c, []step{
		{"a GETQUOTAROOT INBOX", []string{"* QUOTAROOT INBOX", "a OK GETQUOTAROOT completed"}},
		{`b GETQUOTA ""`, []string{"b NO [NONEXISTENT] no such quota root"}},
	})
	// 10 KiB and 5 messages, 3000 bytes in 2 used: STORAGE in KiB
	// (RFC 9208 §5.1), rounded up as Dovecot does.
	writeMaildirsize(t, e.root(), "10240S,5C\n3000 2\n")
	replay(t, c, []step{
		{"c GETQUOTAROOT INBOX", []string{`* QUOTAROOT INBOX ""`, `* QUOTA "" (STORAGE 3 10 MESSAGE 2 5)`, "c OK GETQUOTAROOT completed"}},
		{"d GETQUOTAROOT Sent", []string{`* QUOTAROOT Sent ""`, `* QUOTA "" (STORAGE 3 10 MESSAGE 2 5)`, "d OK GETQUOTAROOT completed"}},
		{`e GETQUOTA ""`, []string{`* QUOTA "" (STORAGE 3 10 MESSAGE 2 5)`, "e OK GETQUOTA completed"}},
		{`f GETQUOTA "other"`, []string{"f NO [NONEXISTENT] no such quota root"}},
		{"g GETQUOTAROOT Nonesuch", []string{"g NO [NONEXISTENT] no such mailbox"}},
		{`h SETQUOTA "" (STORAGE 512)`, []string{"h NO [NOPERM] quotas are set by the administrator"}},
		{`i SETQUOTA ""`, []string{"i BAD SETQUOTA needs a quota root and a resource list"}},
		{"j GETQUOTAROOT", []string{"j BAD GETQUOTAROOT needs a mailbox name"}},
	})
	// Only a byte limit: only STORAGE.
	writeMaildirsize(t, e.root(), "2048S\n1024 1\n")
	replay(t, c, []step{
		{`k GETQUOTA ""`, []string{`* QUOTA "" (STORAGE 1 2)`, "k OK GETQUOTA completed"}},
	})
}

// A quota rule in the account table wins over maildirsize, whose
// definition is brought in line (Maildir++ rebuild).
func TestQuotaFromAccountRule(t *testing.T) {
	e := newTestEnv(t, nil)
	const user = "bob@example.org"
	root := addQuotaUser(t, e, user, "*:storage=100k:messages=7")
	deliver(t, root, "", fixture1)
	writeMaildirsize(t, root, "1S\n")
	c := e.dial()
	c.line()
	must(t, last(c.cmd("L", "LOGIN "+user+" pw")), "L OK")
	replay(t, c, []step{
		{`a GETQUOTA ""`, []string{`* QUOTA "" (STORAGE 1 100 MESSAGE 1 7)`, "a OK GETQUOTA completed"}},
	})
	data, err := os.ReadFile(filepath.Join(root, maildir.QuotaFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "102400S,7C\n") {
		t.Fatalf("maildirsize %q not rebuilt with the account's limits", data)
	}
}

func TestQuotaAppendCopyMoveExpunge(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.root()
	c := e.login()
	msg := "Subject: q\r\n\r\nbody\r\n" // 20 octets
	writeMaildirsize(t, root, "50S,10C\n0 0\n")

	// APPEND: usage moves by the message.
	c.send("a APPEND INBOX {20+}\r\n" + msg + "\r\n")
	must(t, last(c.until("a")), "a OK [APPENDUID ")
	if b, n := usage(t, root); b != 20 || n != 1 {
		t.Fatalf("after APPEND: %d bytes %d messages, want 20 1", b, n)
	}
	// Over quota: NO [OVERQUOTA] and no file, not even in tmp/.
	big := strings.Repeat("x", 31)
	c.send("b APPEND INBOX {31+}\r\n" + big + "\r\n")
	must(t, last(c.until("b")), "b NO [OVERQUOTA]")
	if n := messageCount(t, root); n != 1 {
		t.Fatalf("INBOX holds %d messages after a refused APPEND", n)
	}
	// .Trash does not count: an APPEND there passes and changes nothing.
	c.send("c APPEND Trash {31+}\r\n" + big + "\r\n")
	must(t, last(c.until("c")), "c OK")
	if b, n := usage(t, root); b != 20 || n != 1 {
		t.Fatalf("after APPEND to Trash: %d %d", b, n)
	}

	must(t, last(c.cmd("d", "SELECT INBOX")), "d OK")
	// COPY to Sent: 20 more fits (40 ≤ 50) and is counted ...
	must(t, last(c.cmd("e", "COPY 1 Sent")), "e OK [COPYUID ")
	if b, n := usage(t, root); b != 40 || n != 2 {
		t.Fatalf("after COPY: %d %d", b, n)
	}
	// ... 20 more would not (60 > 50): nothing is copied.
	must(t, last(c.cmd("f", "COPY 1 Sent")), "f NO [OVERQUOTA]")
	if n := messageCount(t, filepath.Join(root, ".Sent")); n != 1 {
		t.Fatalf("Sent holds %d messages after a refused COPY", n)
	}
	// MOVE into Trash leaves the quota; out of it, it is checked.
	must(t, last(c.cmd("g", "MOVE 1 Trash")), "g OK")
	if b, n := usage(t, root); b != 20 || n != 1 {
		t.Fatalf("after MOVE to Trash: %d %d", b, n)
	}
	must(t, last(c.cmd("h", "SELECT Trash")), "h OK")
	must(t, last(c.cmd("i", "UID MOVE 1:* INBOX")), "i NO [OVERQUOTA]") // 20 + 31 + 20 > 50
	must(t, last(c.cmd("j", "MOVE 2 INBOX")), "j OK")                   // the 20-octet one
	if b, n := usage(t, root); b != 40 || n != 2 {
		t.Fatalf("after MOVE out of Trash: %d %d", b, n)
	}
	// EXPUNGE takes it off again.
	must(t, last(c.cmd("k", "SELECT INBOX")), "k OK")
	must(t, last(c.cmd("l", `STORE 1 +FLAGS.SILENT (\Deleted)`)), "l OK")
	must(t, last(c.cmd("m", "EXPUNGE")), "m OK")
	if b, n := usage(t, root); b != 20 || n != 1 {
		t.Fatalf("after EXPUNGE: %d %d", b, n)
	}
	// The file agrees with a count of the Maildir.
	if err := os.Remove(filepath.Join(root, maildir.QuotaFileName)); err != nil {
		t.Fatal(err)
	}
	if b, n := usage(t, root); b != 20 || n != 1 {
		t.Fatalf("recounted: %d %d", b, n)
	}
}

func TestQuotaMessageLimit(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.root()
	writeMaildirsize(t, root, "2C\n0 0\n")
	c := e.login()
	c.send("a APPEND INBOX {3+}\r\nx\r\n (\\Seen) {3+}\r\ny\r\n\r\n")
	must(t, last(c.until("a")), "a OK [APPENDUID ")
	c.send("b APPEND INBOX {3+}\r\nz\r\n\r\n")
	must(t, last(c.until("b")), "b NO [OVERQUOTA]")
	if n := messageCount(t, root); n != 2 {
		t.Fatalf("%d messages", n)
	}
}

// go-imap/v2's client, an independent reading of RFC 9208, sees the same
// quota, and APPEND over it fails with OVERQUOTA.
func TestQuotaClient(t *testing.T) {
	e := newTestEnv(t, nil)
	writeMaildirsize(t, e.root(), "4096S,3C\n2048 1\n")
	c := e.dialClient(nil)
	if !c.Caps().Has(imap.CapQuota) {
		t.Fatalf("no QUOTA in %v", c.Caps())
	}
	roots, err := c.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || roots[0].Root != "" {
		t.Fatalf("quota roots %+v", roots)
	}
	res := roots[0].Resources
	if s, m := res[imap.QuotaResourceStorage], res[imap.QuotaResourceMessage]; s.Usage != 2 || s.Limit != 4 || m.Usage != 1 || m.Limit != 3 {
		t.Fatalf("resources %+v", res)
	}
	msg := strings.Repeat("y", 3000)
	app := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := app.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = app.Wait()
	var ierr *imap.Error
	if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeOverQuota {
		t.Fatalf("APPEND over quota: %v, want NO [OVERQUOTA]", err)
	}
	if n := messageCount(t, e.root()); n != 0 {
		t.Fatalf("%d messages after a refused APPEND", n)
	}
}

// Without a rule of their own a user has the configured default, as
// deliver enforces it, even before any maildirsize exists.
func TestQuotaDefault(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.DefaultQuota = maildir.Quota{Bytes: 20480, Messages: 9} })
	c := e.login()
	replay(t, c, []step{
		{`a GETQUOTA ""`, []string{`* QUOTA "" (STORAGE 0 20 MESSAGE 0 9)`, "a OK GETQUOTA completed"}},
	})
	// A rule in the account table still wins.
	const user = "carol@example.org"
	addQuotaUser(t, e, user, "*:storage=100k:messages=7")
	c2 := e.dial()
	c2.line()
	must(t, last(c2.cmd("L", "LOGIN "+user+" pw")), "L OK")
	replay(t, c2, []step{
		{`b GETQUOTA ""`, []string{`* QUOTA "" (STORAGE 0 100 MESSAGE 0 7)`, "b OK GETQUOTA completed"}},
	})
}
