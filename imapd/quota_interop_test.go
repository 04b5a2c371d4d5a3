package imapd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailroom/maildir"
)

const dovecotIMAPBinary = "/usr/lib/dovecot/imap"

// requireTool skips the test when path is missing, unless
// MAILROOM_REQUIRE_INTEROP=1 (make test, CI), where it fails.
func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("MAILROOM_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s is missing and MAILROOM_REQUIRE_INTEROP=1", path)
	}
	t.Skipf("%s not installed", path)
}

var quotaResources = regexp.MustCompile(`(?m)^\* QUOTA (?:"[^"]*"|\S+) (\([^)]*\))\r?$`)

// dovecotQuota runs Dovecot's imap pre-authenticated on root with its
// Maildir++ quota backend (Trash ignored, as Maildir++ wants) and the
// limit q, and returns the resource list of its QUOTA response.
func dovecotQuota(t *testing.T, root string, q maildir.Quota) string {
	t.Helper()
	dir := t.TempDir()
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 { // Dovecot will not serve mail as root
		uid, gid = 65534, 65534
		for p := filepath.Dir(root); p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		}); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "dovecot.conf")
	cfg := fmt.Sprintf(`mail_location = maildir:%s
log_path = /dev/stderr
base_dir = %s
ssl = no
mail_uid = %d
mail_gid = %d
first_valid_uid = 1
first_valid_gid = 1
mail_plugins = quota
protocol imap {
  mail_plugins = $mail_plugins imap_quota
}
plugin {
  quota = maildir:User quota
  quota_rule = *:bytes=%d:messages=%d
  quota_rule2 = Trash:ignore
}
`, root, filepath.Join(dir, "run"), uid, gid, q.Bytes, q.Messages)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotIMAPBinary, "-c", conf)
	cmd.Env = []string{"USER=quota-test", "HOME=" + root, "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader("a GETQUOTAROOT INBOX\r\nb LOGOUT\r\n")
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dovecot imap: %v\n%s%s", err, out, errOut.String())
	}
	m := quotaResources.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no QUOTA response from Dovecot:\n%s%s", out, errOut.String())
	}
	return m[1]
}

// ourQuota asks mailroom's GETQUOTA for the resource list.
func ourQuota(t *testing.T, c *client, tag string) string {
	t.Helper()
	r := c.cmd(tag, `GETQUOTA ""`)
	must(t, last(r), tag+" OK")
	m := quotaResources.FindStringSubmatch(r[0])
	if m == nil {
		t.Fatalf("GETQUOTA: %q", r)
	}
	return m[1]
}

// Dovecot's quota plugin and mailroom read the same maildirsize alike,
// and count the same Maildir alike when the file is gone.
func TestQuotaDovecotAgrees(t *testing.T) {
	requireTool(t, dovecotIMAPBinary)
	e := newTestEnv(t, nil)
	// The limit is the account's (it must outlive maildirsize, which
	// this test removes).
	root := addQuotaUser(t, e, "carol@example.org", "*:bytes=100000:messages=50")
	q := maildir.Quota{Bytes: 100000, Messages: 50}
	c := e.dial()
	c.line()
	must(t, last(c.cmd("L", "LOGIN carol@example.org pw")), "L OK")
	for i, box := range []string{"INBOX", "INBOX", "Sent", "Trash"} {
		body := "Subject: " + box + "\r\n\r\n" + strings.Repeat("z", 700*(i+1)) + "\r\n"
		c.send(fmt.Sprintf("a%d APPEND %s {%d+}\r\n%s\r\n", i, box, len(body), body))
		must(t, last(c.until(fmt.Sprintf("a%d", i))), fmt.Sprintf("a%d OK", i))
	}
	must(t, last(c.cmd("s", "SELECT INBOX")), "s OK")
	must(t, last(c.cmd("d", `STORE 1 +FLAGS.SILENT (\Deleted)`)), "d OK")
	must(t, last(c.cmd("x", "EXPUNGE")), "x OK")

	ours := ourQuota(t, c, "q1")
	if theirs := dovecotQuota(t, root, q); theirs != ours {
		t.Fatalf("from our maildirsize: Dovecot says %s, mailroom %s", theirs, ours)
	}
	// Recount: Dovecot rebuilds the file, mailroom must read it alike.
	if err := os.Remove(filepath.Join(root, maildir.QuotaFileName)); err != nil {
		t.Fatal(err)
	}
	theirs := dovecotQuota(t, root, q)
	if ours := ourQuota(t, c, "q2"); theirs != ours {
		t.Fatalf("after Dovecot's recount: Dovecot says %s, mailroom %s", theirs, ours)
	}
	// And the other way: mailroom counts, Dovecot reads.
	if err := os.Remove(filepath.Join(root, maildir.QuotaFileName)); err != nil {
		t.Fatal(err)
	}
	ours = ourQuota(t, c, "q3")
	if theirs := dovecotQuota(t, root, q); theirs != ours {
		t.Fatalf("after mailroom's recount: Dovecot says %s, mailroom %s", theirs, ours)
	}
	if want := "(STORAGE 4 98 MESSAGE 2 50)"; ours != want {
		// 1420 octets in INBOX and 2119 in Sent: 3539 = 3.5 KiB, up;
		// Trash and the expunged message do not count.
		t.Fatalf("usage %s, want %s", ours, want)
	}
}
