package admin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// permFixture is a test install that "mailroom check" finds clean: a user,
// the spool, a TLS key readable by the daemons' group.
type permFixture struct {
	install
	key string
}

func newPermFixture(t *testing.T) permFixture {
	t.Helper()
	fx := permFixture{install: newInstall(t)}
	fx.key = filepath.Join(fx.dir, "key.pem")
	cert := filepath.Join(fx.dir, "cert.pem")
	mustWrite(t, cert, "not parsed by check\n", 0o644)
	mustWrite(t, fx.key, "not parsed by check\n", 0o640)
	must(t, os.Chmod(fx.key, 0o640)) // whatever the umask
	must(t, os.Chown(fx.key, -1, fx.ids.group.id))
	conf := "tls_cert = " + cert + "\ntls_key = " + fx.key + "\n" + readString(t, fx.conf)
	mustWrite(t, fx.conf, conf, 0o644)
	if code, _, errOut := fx.run(t, "pw\n", "user", "add", "bob@example.org"); code != ExitOK {
		t.Fatalf("user add: exit %d, %q", code, errOut)
	}
	if code, out, errOut := fx.run(t, "", "check"); code != ExitOK || out != "no problems found\n" {
		t.Fatalf("check of the fixture: exit %d, %q, %q", code, out, errOut)
	}
	return fx
}

// TestCheckPermissions breaks one owner or mode at a time and checks that
// "mailroom check" reports exactly that, in one line naming the path,
// what is wrong and a fix; then it runs the fix with sh(1) and checks
// that check is satisfied. Wrong owners need root (chown to nobody or
// root); without root, TestRuleOwnership covers them with injected ids.
func TestCheckPermissions(t *testing.T) {
	root := os.Geteuid() == 0
	tests := []struct {
		name   string
		root   bool // needs root to set up
		noFix  bool // the fix makes users; not run here
		breaks func(t *testing.T, fx permFixture) (path string)
		want   []string // in the line, besides the path
	}{
		{name: "spool dir mode", breaks: func(t *testing.T, fx permFixture) string {
			p := filepath.Join(fx.spool, "queue")
			must(t, os.Chmod(p, 0o755))
			return p
		}, want: []string{"spool ", "mode 0755, want 2770", "fix: chmod 2770 "}},
		{name: "spool setgid lost", breaks: func(t *testing.T, fx permFixture) string {
			p := filepath.Join(fx.spool, "tmp")
			must(t, os.Chmod(p, 0o770))
			return p
		}, want: []string{"mode 0770, want 2770", "fix: chmod 2770 "}},
		{name: "maildrop mode", breaks: func(t *testing.T, fx permFixture) string {
			p := filepath.Join(fx.spool, "maildrop")
			must(t, os.Chmod(p, 0o777))
			return p
		}, want: []string{"mode 0777, want 1733", "fix: chmod 1733 "}},
		{name: "spool root mode", breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chmod(fx.spool, 0o755))
			return fx.spool
		}, want: []string{"spool_dir ", "mode 0755, want 0711", "fix: chmod 0711 "}},
		{name: "spool dir missing", breaks: func(t *testing.T, fx permFixture) string {
			p := filepath.Join(fx.spool, "corrupt")
			must(t, os.Remove(p))
			return p
		}, want: []string{"does not exist", "fix: install -d -o " + fx0Owner() + " -g " + fx0Group() + " -m 2770 "}},
		{name: "passwd world-readable", breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chmod(fx.passwd, 0o644))
			return fx.passwd
		}, want: []string{"passwd_file ", "mode 0644 gives others access", "fix: chmod 0640 "}},
		{name: "passwd group-writable", breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chmod(fx.passwd, 0o660))
			return fx.passwd
		}, want: []string{"mode 0660 lets the group write", "fix: chmod 0640 "}},
		{name: "passwd not group-readable", breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chmod(fx.passwd, 0o600))
			return fx.passwd
		}, want: []string{"mode 0600 does not let the group read it", "fix: chmod 0640 "}},
		{name: "tls key world-readable", breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chmod(fx.key, 0o644))
			return fx.key
		}, want: []string{"tls_key ", "mode 0644 gives others access", "fix: chmod 0640 "}},
		{name: "tls key not group-readable", breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chmod(fx.key, 0o600))
			return fx.key
		}, want: []string{"mode 0600 does not let the group read it"}},
		{name: "config writable by others", breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chmod(fx.conf, 0o666))
			return fx.conf
		}, want: []string{"config ", "mode 0666 gives others access", "fix: chmod o-w "}},
		{name: "mail_root writable by others", breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chmod(fx.mailRoot, 0o757))
			return fx.mailRoot
		}, want: []string{"mail_root ", "writable by group or others", "fix: chmod go-w "}},
		{name: "smtpd user missing", noFix: true, breaks: func(t *testing.T, fx permFixture) string {
			conf := strings.Replace(readString(t, fx.conf), "user = "+testDaemonUser, "user = no-such-user-mailroom-test", 1)
			mustWrite(t, fx.conf, conf, 0o644)
			return "no-such-user-mailroom-test"
		}, want: []string{"[smtpd] user ", "fix: adduser --system --group --no-create-home no-such-user-mailroom-test"}},
		// Owners: root only.
		{name: "spool dir owned by root", root: true, breaks: func(t *testing.T, fx permFixture) string {
			p := filepath.Join(fx.spool, "queue")
			must(t, os.Chown(p, 0, 0))
			return p
		}, want: []string{"owner root, want nobody", "group root, want nogroup", "fix: chown nobody:nogroup ", " && chmod 2770 "}},
		{name: "maildrop owned by another", root: true, breaks: func(t *testing.T, fx permFixture) string {
			p := filepath.Join(fx.spool, "maildrop")
			must(t, os.Chown(p, 4321, 65534))
			return p
		}, want: []string{"owner 4321, want nobody", "fix: chown nobody:nogroup "}},
		{name: "passwd group root", root: true, breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chown(fx.passwd, 0, 0))
			return fx.passwd
		}, want: []string{"group root, want nogroup", "fix: chown root:nogroup "}},
		{name: "passwd owned by a stranger", root: true, breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chown(fx.passwd, 4321, 65534))
			return fx.passwd
		}, want: []string{"owner 4321, want root or nobody", "fix: chown root:nogroup "}},
		{name: "tls key group root", root: true, breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chown(fx.key, 0, 0))
			return fx.key
		}, want: []string{"group root, want nogroup", "fix: chown root:nogroup "}},
		{name: "mail_root owned by root", root: true, noFix: true, breaks: func(t *testing.T, fx permFixture) string {
			must(t, os.Chown(fx.mailRoot, 0, 0))
			return fx.mailRoot
		}, want: []string{"owner root, group root", "refuses root", "fix: ", "chown vmail:vmail "}},
	}
	ran := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && !root {
				// Covered without root by TestRuleOwnership.
				t.Skip("needs root to chown; TestRuleOwnership checks the same logic with injected ids")
			}
			ran++
			fx := newPermFixture(t)
			path := tc.breaks(t, fx)
			code, out, errOut := fx.run(t, "", "check")
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if code != ExitProblems || len(lines) != 1 {
				t.Fatalf("check: exit %d, want %d and one line:\n%s%s", code, ExitProblems, out, errOut)
			}
			line := lines[0]
			if !strings.Contains(line, path) {
				t.Errorf("line does not name %s:\n%s", path, line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("line lacks %q:\n%s", w, line)
				}
			}
			if tc.noFix {
				return
			}
			_, fix, ok := strings.Cut(line, "; fix: ")
			if !ok {
				t.Fatalf("no fix in %q", line)
			}
			runShell(t, fix)
			if code, out, _ := fx.run(t, "", "check"); code != ExitOK {
				t.Errorf("check after %q: exit %d:\n%s", fix, code, out)
			}
		})
	}
	if root && ran != len(tests) {
		t.Errorf("ran %d of %d cases as root", ran, len(tests))
	}
}

// fx0Owner and fx0Group are the names newInstall's ids will have, for
// expectations written before the fixture exists.
func fx0Owner() string {
	if os.Geteuid() == 0 {
		return "nobody"
	}
	return userName(os.Geteuid())
}

func fx0Group() string {
	if os.Geteuid() == 0 {
		return "nogroup"
	}
	return groupName(os.Getegid())
}

func runShell(t *testing.T, cmd string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", cmd).CombinedOutput(); err != nil {
		t.Fatalf("fix %q: %v\n%s", cmd, err, out)
	}
}

// TestRuleOwnership checks the owner and group logic with injected
// expected ids, which needs no root: the files are the test's own, the
// expected owner and group are others.
func TestRuleOwnership(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "passwd")
	mustWrite(t, file, "", 0o640)
	must(t, os.Chmod(file, 0o640))
	sub := filepath.Join(dir, "queue")
	must(t, os.Mkdir(sub, 0o700))
	must(t, os.Chmod(sub, os.ModeSetgid|0o770))
	uid, gid := os.Geteuid(), os.Getegid()
	me, mine := userName(uid), groupName(gid)
	other := expectedIDs{owner: ident{uid + 1000, "vmail"}, group: ident{gid + 1000, "mailroom"}}
	same := expectedIDs{owner: ident{uid, me}, group: ident{gid, mine}}
	unknown := expectedIDs{owner: ident{-1, "vmail"}, group: ident{-1, "mailroom"}}
	setgidDir := os.ModeSetgid | 0o770
	tests := []struct {
		name string
		r    rule
		want string // "" for no problem
	}{
		{"spool dir, right ids", spoolRules(dir, []layoutDir{{"queue", setgidDir}}, same)[0], ""},
		{"spool dir, unknown ids", spoolRules(dir, []layoutDir{{"queue", setgidDir}}, unknown)[0], ""},
		{"spool dir, other ids", spoolRules(dir, []layoutDir{{"queue", setgidDir}}, other)[0],
			fmt.Sprintf("spool %s: owner %s, want vmail, group %s, want mailroom; fix: chown vmail:mailroom %s && chmod 2770 %s", sub, me, mine, sub, sub)},
		{"spool dir, other group", spoolRules(dir, []layoutDir{{"queue", setgidDir}}, expectedIDs{owner: same.owner, group: other.group})[0],
			fmt.Sprintf("spool %s: group %s, want mailroom; fix: chown %s:mailroom %s && chmod 2770 %s", sub, mine, me, sub, sub)},
		{"spool dir, other mode", spoolRules(dir, []layoutDir{{"queue", os.ModeSticky | 0o733}}, same)[0],
			fmt.Sprintf("spool %s: mode 2770, want 1733; fix: chmod 1733 %s", sub, sub)},
		{"passwd, right ids", passwdRule(file, same), ""},
		{"passwd, owned by vmail", passwdRule(file, expectedIDs{owner: ident{uid, "vmail"}, group: same.group}), ""},
		{"passwd, other group", passwdRule(file, expectedIDs{owner: same.owner, group: other.group}),
			fmt.Sprintf("passwd_file %s: group %s, want mailroom; fix: chown %s:mailroom %s", file, mine, me, file)},
		{"tls key, other group", tlsKeyRule(file, other),
			fmt.Sprintf("tls_key %s: group %s, want mailroom; fix: chown %s:mailroom %s", file, mine, me, file)},
		{"tls key, right group", tlsKeyRule(file, same), ""},
	}
	if uid != 0 {
		// As root, uid 0 is an accepted owner of the passwd file.
		tests = append(tests, struct {
			name string
			r    rule
			want string
		}{"passwd, other owner", passwdRule(file, other),
			fmt.Sprintf("passwd_file %s: owner %s, want root or vmail, group %s, want mailroom; fix: chown root:mailroom %s", file, me, mine, file)})
	}
	for _, tc := range tests {
		if got := tc.r.check(); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestCheckDaemonGroup runs the whole check with the [smtpd] user's group
// injected as one the files do not have: every file that must be the
// daemons' group is reported, and nothing else.
func TestCheckDaemonGroup(t *testing.T) {
	fx := newPermFixture(t)
	gid := fx.ids.group.id + 1000
	saved := lookupUser
	lookupUser = func(name string) (*user.User, error) {
		if name == testDaemonUser {
			return &user.User{Uid: "4242", Gid: strconv.Itoa(gid), Username: name}, nil
		}
		return saved(name)
	}
	code, out, _ := fx.run(t, "", "check")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	layout, err := spoolLayout()
	must(t, err)
	// The spool's directories, the TLS key, the passwd file.
	if want := len(layout) + 2; code != ExitProblems || len(lines) != want {
		t.Fatalf("check: exit %d, %d lines, want %d:\n%s", code, len(lines), want, out)
	}
	for _, l := range lines {
		if !strings.Contains(l, fmt.Sprintf("want %d;", gid)) || !strings.Contains(l, fmt.Sprintf(":%d ", gid)) {
			t.Errorf("line does not ask for group %d: %s", gid, l)
		}
	}
}

// TestSpoolLayout: the layout check follows is spool.Setup's, read back:
// spool_dir itself and at least the directories smtpd and sendmail write.
func TestSpoolLayout(t *testing.T) {
	layout, err := spoolLayout()
	must(t, err)
	names := map[string]os.FileMode{}
	for _, d := range layout {
		names[d.name] = d.mode
	}
	for _, n := range []string{"", "tmp", "queue", "maildrop"} {
		if _, ok := names[n]; !ok {
			t.Errorf("layout %v lacks %q", layout, n)
		}
	}
	if m := names["queue"]; m&os.ModeSetgid == 0 || m.Perm()&0o007 != 0 {
		t.Errorf("queue/ mode %s: want setgid and nothing for others", octal(m))
	}
	if m := names["maildrop"]; m&os.ModeSticky == 0 {
		t.Errorf("maildrop/ mode %s: want the sticky bit", octal(m))
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/spool/mailroom": "/var/spool/mailroom",
		"vmail:mailroom":      "vmail:mailroom",
		"/a b":                "'/a b'",
		"it's":                `'it'\''s'`,
		"":                    "''",
		"$(rm -rf /)":         "'$(rm -rf /)'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCheckMissingMailRoot: a missing mail_root is one line whose fix
// makes it vmail's alone.
func TestCheckMissingMailRoot(t *testing.T) {
	in := newInstall(t)
	must(t, os.Remove(in.mailRoot))
	mustWrite(t, in.passwd, "", 0o640)
	must(t, os.Chown(in.passwd, -1, in.ids.group.id))
	code, out, _ := in.run(t, "", "check")
	want := "mail_root " + in.mailRoot + ": does not exist; fix: install -d -o vmail -g vmail -m 0700 " + in.mailRoot + "\n"
	if code != ExitProblems || out != want {
		t.Errorf("check: exit %d, %q; want %d, %q", code, out, ExitProblems, want)
	}
}
