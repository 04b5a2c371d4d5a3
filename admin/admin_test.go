package admin

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/internal/account"
	"mailroom/internal/account/accounttest"
	"mailroom/spool"
)

// install is a temporary mailroom setup: config, passwd, aliases, mail root.
type install struct {
	dir, conf, passwd, aliases, mailRoot, spool string
	ids                                         expectedIDs // the owner and group check expects
}

// newInstall also makes new hashes cheap for the test (the hashes keep
// their formats; internal/account checks the production costs), so that
// the admin tests take seconds, not minutes, under -race.
func newInstall(t *testing.T) install {
	t.Helper()
	accounttest.CheapHashes(t)
	dir := t.TempDir()
	in := install{
		dir:      dir,
		conf:     filepath.Join(dir, "mailroom.conf"),
		passwd:   filepath.Join(dir, "passwd"),
		aliases:  filepath.Join(dir, "aliases"),
		mailRoot: filepath.Join(dir, "mail"),
		spool:    filepath.Join(dir, "spool"),
	}
	conf := "domains = example.org, example.net\n" +
		"mail_root = " + in.mailRoot + "\n" +
		"passwd_file = " + in.passwd + "\n" +
		"aliases_file = " + in.aliases + "\n" +
		"spool_dir = " + in.spool + "\n" +
		"[smtpd]\nuser = " + testDaemonUser + "\n"
	mustWrite(t, in.conf, conf, 0o644)
	mustWrite(t, in.aliases, "postmaster: bob@example.org\n", 0o644)
	if err := os.Mkdir(in.mailRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := spool.Setup(in.spool); err != nil {
		t.Fatal(err)
	}
	in.ids = fakeDaemonUser(t)
	if os.Geteuid() == 0 {
		// As installed: mail_root and the spool are vmail's (here
		// nobody's), the spool's group the daemons' (here nogroup's).
		must(t, os.Chown(in.mailRoot, in.ids.owner.id, in.ids.owner.id))
		must(t, spool.SetOwner(in.spool, in.ids.owner.id, in.ids.group.id))
	}
	return in
}

// testDaemonUser is the [smtpd] user of the test installs, answered by
// fakeDaemonUser's lookup.
const testDaemonUser = "mailroom-test-daemon"

// fakeDaemonUser makes testDaemonUser resolve, for the rest of the test,
// to a user whose primary group the test's files can have: the test's own
// group, or nogroup (65534) when the test runs as root (root's group 0 is
// what check refuses). It returns the owner and group check then expects
// of the spool: the test's own ids, or nobody:nogroup as root.
func fakeDaemonUser(t *testing.T) expectedIDs {
	t.Helper()
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		uid, gid = 65534, 65534
	}
	saved := lookupUser
	t.Cleanup(func() { lookupUser = saved })
	lookupUser = func(name string) (*user.User, error) {
		if name == testDaemonUser {
			return &user.User{Uid: "4242", Gid: strconv.Itoa(gid), Username: name}, nil
		}
		return saved(name)
	}
	return expectedIDs{owner: ident{uid, userName(uid)}, group: ident{gid, groupName(gid)}}
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// run runs the admin command in-process with --config pointing at in.
func (in install) run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	argv := append([]string{"mailroom", "--config", in.conf}, args...)
	code = Main(argv, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func (in install) load(t *testing.T) *account.DB {
	t.Helper()
	db, err := account.Load(in.passwd, in.mailRoot)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestUserLifecycle(t *testing.T) {
	in := newInstall(t)
	code, out, errOut := in.run(t, "first pw\n", "user", "add", "Bob@Example.org")
	if code != ExitOK {
		t.Fatalf("user add: exit %d, stderr %q", code, errOut)
	}
	root := filepath.Join(in.mailRoot, "example.org", "bob")
	if !strings.Contains(out, root) {
		t.Errorf("user add output %q does not name the Maildir %s", out, root)
	}
	for _, d := range []string{"tmp", "new", "cur", ".Sent/cur", ".Trash/new"} {
		if st, err := os.Stat(filepath.Join(root, d)); err != nil || !st.IsDir() {
			t.Errorf("Maildir part %s: %v", d, err)
		}
	}
	if db := in.load(t); !db.Verify("bob@example.org", "first pw") || db.Verify("bob@example.org", "first pw\n") {
		t.Error("stored hash does not verify exactly the stdin line")
	}
	if st, err := os.Stat(in.passwd); err != nil || st.Mode().Perm()&0o007 != 0 {
		t.Errorf("new passwd file mode: %v, %v", st.Mode(), err)
	}

	if code, _, errOut := in.run(t, "x\n", "user", "add", "bob@EXAMPLE.ORG"); code != ExitDataErr || !strings.Contains(errOut, "already exists") {
		t.Errorf("duplicate add: exit %d, stderr %q", code, errOut)
	}

	pwFile := filepath.Join(in.dir, "pw")
	mustWrite(t, pwFile, "alice pw", 0o600) // no trailing newline
	if code, _, errOut := in.run(t, "", "user", "add", "--scheme", "ARGON2ID", "--password-file", pwFile, "--quota", "2G", "alice@example.net"); code != ExitOK {
		t.Fatalf("add alice: exit %d, %q", code, errOut)
	}
	db := in.load(t)
	alice, _ := db.Lookup("alice@example.net")
	if !strings.HasPrefix(alice.Hash, "{ARGON2ID}$argon2id$") || !db.Verify("alice@example.net", "alice pw") {
		t.Errorf("alice's hash %q", alice.Hash)
	}
	if q, ok := alice.Quota(); !ok || q.Bytes != 2<<30 {
		t.Errorf("alice's quota %+v %v", q, ok)
	}

	code, out, _ = in.run(t, "", "user", "list")
	if code != ExitOK || out != "bob@example.org\nalice@example.net\n" {
		t.Errorf("user list: exit %d, %q", code, out)
	}

	if code, _, errOut := in.run(t, "second pw\n", "user", "passwd", "bob@example.org"); code != ExitOK {
		t.Fatalf("passwd: exit %d, %q", code, errOut)
	}
	if db := in.load(t); !db.Verify("bob@example.org", "second pw") || db.Verify("bob@example.org", "first pw") {
		t.Error("passwd did not replace the password")
	}

	code, out, _ = in.run(t, "", "user", "del", "bob@example.org")
	if code != ExitOK || !strings.Contains(out, "not deleted") {
		t.Errorf("user del: exit %d, %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(root, "cur")); err != nil {
		t.Errorf("user del removed mail: %v", err)
	}
	if code, out, _ = in.run(t, "", "user", "list"); code != ExitOK || out != "alice@example.net\n" {
		t.Errorf("user list after del: exit %d, %q", code, out)
	}
	for _, args := range [][]string{{"user", "del", "bob@example.org"}, {"user", "passwd", "bob@example.org"}} {
		if code, _, errOut := in.run(t, "pw\n", args...); code != ExitDataErr || !strings.Contains(errOut, "no such user") {
			t.Errorf("%v for a deleted user: exit %d, %q", args, code, errOut)
		}
	}
}

func TestUserListWithoutFile(t *testing.T) {
	in := newInstall(t)
	if code, out, errOut := in.run(t, "", "user", "list"); code != ExitOK || out != "" {
		t.Errorf("list with no passwd file: exit %d, %q, %q", code, out, errOut)
	}
}

func TestExitCodes(t *testing.T) {
	in := newInstall(t)
	mustWrite(t, in.passwd, "carol@example.org:{X}h\n", 0o600)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"no command", "", nil, ExitUsage},
		{"unknown command", "", []string{"frobnicate"}, ExitUsage},
		{"unknown user command", "", []string{"user", "rename"}, ExitUsage},
		{"user alone", "", []string{"user"}, ExitUsage},
		{"add without address", "pw\n", []string{"user", "add"}, ExitUsage},
		{"add two addresses", "pw\n", []string{"user", "add", "a@example.org", "b@example.org"}, ExitUsage},
		{"unknown flag", "pw\n", []string{"user", "add", "--frob", "a@example.org"}, ExitUsage},
		{"list with argument", "", []string{"user", "list", "x"}, ExitUsage},
		{"path in address", "pw\n", []string{"user", "add", "../x@example.org"}, ExitDataErr},
		{"no domain", "pw\n", []string{"user", "add", "bob"}, ExitDataErr},
		{"colon in address", "pw\n", []string{"user", "add", "b:b@example.org"}, ExitDataErr},
		{"foreign domain", "pw\n", []string{"user", "add", "bob@elsewhere.com"}, ExitDataErr},
		{"empty password", "\n", []string{"user", "add", "bob@example.org"}, ExitDataErr},
		{"no password", "", []string{"user", "add", "bob@example.org"}, ExitDataErr},
		{"two lines", "a\nb\n", []string{"user", "add", "bob@example.org"}, ExitDataErr},
		{"bad scheme", "pw\n", []string{"user", "add", "--scheme", "PLAIN", "bob@example.org"}, ExitDataErr},
		{"bad quota", "pw\n", []string{"user", "add", "--quota", "lots", "bob@example.org"}, ExitDataErr},
		{"uid 0", "pw\n", []string{"user", "add", "--uid", "0", "bob@example.org"}, ExitDataErr},
		{"missing password file", "", []string{"user", "add", "--password-file", "/nonexistent/pw", "bob@example.org"}, ExitIOErr},
		{"duplicate", "pw\n", []string{"user", "add", "CAROL@example.org"}, ExitDataErr},
	} {
		code, _, errOut := in.run(t, tc.stdin, tc.args...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tc.name, code, tc.code, errOut)
		}
	}
	if got, _ := os.ReadFile(in.passwd); string(got) != "carol@example.org:{X}h\n" {
		t.Errorf("failed commands changed the passwd file: %q", got)
	}
	if _, err := os.Stat(filepath.Join(in.mailRoot, "example.org", "bob")); err == nil {
		t.Error("a refused add created a Maildir")
	}

	var out, errOut bytes.Buffer
	if code := Main([]string{"mailroom", "--config", filepath.Join(in.dir, "nope.conf"), "user", "list"}, strings.NewReader(""), &out, &errOut); code != ExitIOErr {
		t.Errorf("missing --config file: exit %d, %q", code, errOut.String())
	}
}

func TestLockTimeoutIsTempFail(t *testing.T) {
	in := newInstall(t)
	mustWrite(t, in.passwd, "carol@example.org:{X}h\n", 0o600)
	f, err := os.OpenFile(in.passwd+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	old := account.LockTimeout
	account.LockTimeout = 50 * time.Millisecond
	defer func() { account.LockTimeout = old }()
	if code, _, errOut := in.run(t, "", "user", "del", "carol@example.org"); code != ExitTempFail {
		t.Errorf("del under a held lock: exit %d, %q", code, errOut)
	}
}

func TestGlobalConfigFlags(t *testing.T) {
	in := newInstall(t)
	if code, out, errOut := in.run(t, "", "--check-config"); code != ExitOK || errOut != "" {
		t.Errorf("--check-config: exit %d, %q %q", code, out, errOut)
	}
	code, out, _ := in.run(t, "", "--print-config")
	if code != ExitOK || !strings.Contains(out, in.passwd) || !strings.Contains(out, "passwd_file") {
		t.Errorf("--print-config: exit %d, %q", code, out)
	}
	mustWrite(t, in.conf, "no_such_key = 1\n", 0o644)
	if code, _, errOut := in.run(t, "", "--check-config"); code != ExitDataErr || !strings.Contains(errOut, in.conf+":1") {
		t.Errorf("--check-config on a bad file: exit %d, %q", code, errOut)
	}
}
