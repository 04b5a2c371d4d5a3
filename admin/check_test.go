package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	in := newInstall(t)
	for _, a := range []string{"bob@example.org", "alice@example.org"} {
		if code, _, errOut := in.run(t, "pw\n", "user", "add", a); code != ExitOK {
			t.Fatalf("add %s: exit %d, %q", a, code, errOut)
		}
	}
	code, out, errOut := in.run(t, "", "check")
	if code != ExitOK || out != "no problems found\n" {
		t.Fatalf("check of a fresh install: exit %d, %q, %q", code, out, errOut)
	}

	bob := filepath.Join(in.mailRoot, "example.org", "bob")
	alice := filepath.Join(in.mailRoot, "example.org", "alice")
	must(t, os.Chmod(in.passwd, 0o644))
	must(t, os.Chmod(bob, 0o777))
	must(t, os.Remove(filepath.Join(bob, ".Sent", "cur")))
	must(t, os.RemoveAll(alice))
	mustWrite(t, in.passwd, readString(t, in.passwd)+"carol@example.org:{X}h\n", 0o644)
	mustWrite(t, in.aliases, "BROKEN\n", 0o644)

	code, out, _ = in.run(t, "", "check")
	if code != ExitProblems {
		t.Errorf("check: exit %d, want %d", code, ExitProblems)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		"aliases:",
		"passwd_file " + in.passwd + ": mode 0644",
		"user bob@example.org: " + bob + ": writable by group or others",
		"user bob@example.org: " + filepath.Join(bob, ".Sent", "cur") + ":",
		"user alice@example.org: Maildir:",
		"user carol@example.org: Maildir:",
	}
	if len(lines) != len(want) {
		t.Errorf("check printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("check output lacks a line starting %q:\n%s", w, out)
		}
	}
}

func TestCheckOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand a Maildir to another uid")
	}
	in := newInstall(t)
	if code, _, errOut := in.run(t, "pw\n", "user", "add", "--uid", "4321", "--gid", "4321", "bob@example.org"); code != ExitOK {
		t.Fatalf("add: exit %d, %q", code, errOut)
	}
	must(t, os.Chmod(in.passwd, 0o640))
	bob := filepath.Join(in.mailRoot, "example.org", "bob")
	st, err := os.Stat(filepath.Join(bob, ".Sent", "new"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid := ownerOf(st); uid != 4321 || gid != 4321 {
		t.Errorf("Maildir owned by %d:%d, want 4321:4321", uid, gid)
	}
	if code, out, _ := in.run(t, "", "check"); code != ExitOK {
		t.Errorf("check: exit %d, %q", code, out)
	}
	must(t, os.Chown(filepath.Join(bob, "cur"), 0, 0))
	if code, out, _ := in.run(t, "", "check"); code != ExitProblems || !strings.Contains(out, "owned by uid 0, want 4321") {
		t.Errorf("check with a root-owned cur: exit %d, %q", code, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	return string(b)
}
