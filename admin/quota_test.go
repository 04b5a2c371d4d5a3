package admin

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

	"mailroom/internal/config"
	"mailroom/internal/testutil"
)

func TestStorageRule(t *testing.T) {
	tests := []struct {
		in       string
		wantRule string
		bytes    int64
	}{
		{"500", "*:storage=500B", 500},
		{"0", "*:storage=0B", 0},
		{"1536", "*:storage=1536B", 1536},
		{"2048", "*:storage=2k", 2048},
		{"3k", "*:storage=3k", 3 << 10},
		{"500M", "*:storage=500M", 500 << 20},
		{"1024M", "*:storage=1G", 1 << 30},
		{"2g", "*:storage=2G", 2 << 30},
	}
	for _, tt := range tests {
		rule, err := storageRule(tt.in)
		if err != nil || rule != tt.wantRule {
			t.Errorf("storageRule(%q) = %q, %v; want %q", tt.in, rule, err, tt.wantRule)
		}
		if n, err := config.ParseSize(tt.in); err != nil || n != tt.bytes {
			t.Errorf("config.ParseSize(%q) = %d, %v; the file and the flag disagree", tt.in, n, err)
		}
	}
	for _, bad := range []string{"lots", "1T", "-5", "1.5G", "5 M", "500KB"} {
		if rule, err := storageRule(bad); err == nil {
			t.Errorf("storageRule(%q) = %q, want an error", bad, rule)
		}
	}
}

// TestQuotaFlagMeansConfigBytes: --quota N and "quota = N" in mailroom.conf
// are the same number of bytes, through the passwd file and back.
func TestQuotaFlagMeansConfigBytes(t *testing.T) {
	in := newInstall(t)
	for i, size := range []string{"500", "1536", "3k", "500M", "2G"} {
		addr := fmt.Sprintf("u%d@example.org", i)
		if code, _, errOut := in.run(t, "pw\n", "user", "add", "--quota", size, addr); code != ExitOK {
			t.Fatalf("add --quota %s: exit %d, %q", size, code, errOut)
		}
		cfg, err := config.Parse(strings.NewReader("[deliver]\nquota = "+size+"\n"), "test.conf")
		if err != nil {
			t.Fatal(err)
		}
		u, _ := in.load(t).Lookup(addr)
		q, ok := u.Quota()
		if !ok || q.Bytes != cfg.Deliver.Quota {
			t.Errorf("--quota %s: passwd quota %+v (rule %q), mailroom.conf quota %d", size, q, u.Extra[quotaRuleKey], cfg.Deliver.Quota)
		}
	}
	if !strings.Contains(readString(t, in.passwd), "u0@example.org:") || !strings.Contains(readString(t, in.passwd), "userdb_quota_rule=*:storage=500B") {
		t.Errorf("passwd file lacks the explicit-unit rule:\n%s", readString(t, in.passwd))
	}
}

const dovecotIMAP = "/usr/lib/dovecot/imap"

// TestDovecotReadsQuotaRule gives the rule "user add --quota" wrote to
// Dovecot's quota plugin and reads the limit back over IMAP GETQUOTAROOT
// (RFC 2087 §3: STORAGE in units of 1024 octets, which Dovecot rounds
// up): a bare number would be kilobytes to Dovecot, so "500" (bytes) must
// come back as 1, not 500.
func TestDovecotReadsQuotaRule(t *testing.T) {
	testutil.RequireTool(t, dovecotIMAP)
	in := newInstall(t)
	tests := []struct {
		size    string
		wantKiB int64
	}{
		{"500", 1},
		{"1536", 2},
		{"3k", 3},
		{"2M", 2048},
		{"1G", 1 << 20},
	}
	for i, tt := range tests {
		addr := fmt.Sprintf("d%d@example.org", i)
		if code, _, errOut := in.run(t, "pw\n", "user", "add", "--quota", tt.size, addr); code != ExitOK {
			t.Fatalf("add: exit %d, %q", code, errOut)
		}
		u, _ := in.load(t).Lookup(addr)
		rule := u.Extra[quotaRuleKey]
		if q, _ := u.Quota(); (q.Bytes+1023)/1024 != tt.wantKiB {
			t.Errorf("mailroom reads %q as %d bytes, want %d KiB", rule, q.Bytes, tt.wantKiB)
		}
		if got := dovecotStorageLimit(t, rule); got != tt.wantKiB {
			t.Errorf("--quota %s: Dovecot reads %q as %d KiB, want %d", tt.size, rule, got, tt.wantKiB)
		}
	}
}

var quotaLine = regexp.MustCompile(`(?m)^\* QUOTA "[^"]*" \(STORAGE \d+ (\d+)\)`)

// dovecotStorageLimit runs Dovecot's imap pre-authenticated on an empty
// Maildir with quota_rule = rule and returns the STORAGE limit in KiB.
func dovecotStorageLimit(t *testing.T, rule string) int64 {
	t.Helper()
	dir := t.TempDir()
	maildir := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		must(t, os.MkdirAll(filepath.Join(maildir, sub), 0o700))
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 { // Dovecot will not serve mail as root
		uid, gid = 65534, 65534
		// Every directory above the Maildir must be searchable by that uid.
		for p := dir; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
			must(t, os.Chmod(p, 0o755))
		}
		must(t, filepath.Walk(maildir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		}))
	}
	conf := filepath.Join(dir, "dovecot.conf")
	mustWrite(t, conf, fmt.Sprintf(`mail_location = maildir:%s
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
  quota_rule = %s
}
`, maildir, filepath.Join(dir, "run"), uid, gid, rule), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotIMAP, "-c", conf)
	cmd.Env = []string{"USER=quota-test", "HOME=" + maildir, "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader("a GETQUOTAROOT INBOX\r\nb LOGOUT\r\n")
	var errOut strings.Builder
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dovecot imap: %v\n%s%s", err, out, errOut.String())
	}
	m := quotaLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no QUOTA line from Dovecot for rule %q:\n%s%s", rule, out, errOut.String())
	}
	var kib int64
	fmt.Sscan(m[1], &kib)
	return kib
}
