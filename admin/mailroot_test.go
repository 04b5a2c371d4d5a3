package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAddHomeMustBeBelowMailRoot(t *testing.T) {
	in := newInstall(t)
	outside := filepath.Join(in.dir, "elsewhere", "bob")
	link := filepath.Join(in.mailRoot, "escape")
	must(t, os.Symlink(in.dir, link))
	tests := []struct {
		name, home string
		code       int
		stderr     string
	}{
		{"outside", outside, ExitUsage, "outside mail_root " + in.mailRoot},
		{"mail_root itself", in.mailRoot, ExitUsage, "outside mail_root"},
		{"dot-dot out", in.mailRoot + "/example.org/../../x", ExitUsage, "outside mail_root"},
		{"symlink out", filepath.Join(link, "bob"), ExitUsage, "resolves to " + filepath.Join(in.dir, "bob")},
		{"relative", "mail/bob", ExitUsage, "not an absolute path"},
		{"prefix is not parent", in.mailRoot + "2/bob", ExitUsage, "outside mail_root"},
	}
	for _, tt := range tests {
		code, _, errOut := in.run(t, "pw\n", "user", "add", "--home", tt.home, "bob@example.org")
		if code != tt.code || !strings.Contains(errOut, tt.stderr) {
			t.Errorf("%s: --home %s: exit %d, stderr %q; want %d containing %q", tt.name, tt.home, code, errOut, tt.code, tt.stderr)
		}
	}
	if _, err := os.Stat(in.passwd); err == nil {
		t.Errorf("a refused --home wrote the passwd file:\n%s", readString(t, in.passwd))
	}
	for _, p := range []string{outside, filepath.Join(in.dir, "bob"), in.mailRoot + "2"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a refused --home created %s", p)
		}
	}

	inside := filepath.Join(in.mailRoot, "custom", "bob")
	if code, _, errOut := in.run(t, "pw\n", "user", "add", "--home", inside+"/", "bob@example.org"); code != ExitOK {
		t.Fatalf("--home below mail_root: exit %d, %q", code, errOut)
	}
	if root, _ := in.load(t).Mailbox("bob@example.org"); root != inside {
		t.Errorf("Maildir %q, want %q", root, inside)
	}
	if code, out, _ := in.run(t, "", "check"); code != ExitOK {
		t.Errorf("check after a --home below mail_root: exit %d, %q", code, out)
	}
}

func TestCheckReportsMaildirOutsideMailRoot(t *testing.T) {
	in := newInstall(t)
	outside := filepath.Join(in.dir, "outside")
	if code, _, errOut := in.run(t, "pw\n", "user", "add", "bob@example.org"); code != ExitOK {
		t.Fatalf("add: exit %d, %q", code, errOut)
	}
	// A line written by hand (or by Dovecot's tools), as user add refuses it.
	mustWrite(t, in.passwd, readString(t, in.passwd)+"carol@example.org:{X}h::::"+outside+"\n", 0o600)
	code, out, _ := in.run(t, "", "check")
	if code != ExitProblems {
		t.Errorf("check: exit %d, want %d:\n%s", code, ExitProblems, out)
	}
	want := "user carol@example.org: Maildir " + outside + " is outside mail_root " + in.mailRoot
	if !strings.Contains(out, want) {
		t.Errorf("check output lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "bob@example.org") {
		t.Errorf("check reports bob, whose Maildir is below mail_root:\n%s", out)
	}
}

func TestCheckReportsEmptyDomains(t *testing.T) {
	in := newInstall(t)
	if code, _, errOut := in.run(t, "pw\n", "user", "add", "bob@example.org"); code != ExitOK {
		t.Fatalf("add: exit %d, %q", code, errOut)
	}
	conf := readString(t, in.conf)
	mustWrite(t, in.conf, strings.Replace(conf, "domains = example.org, example.net\n", "", 1), 0o644)
	code, out, _ := in.run(t, "", "check")
	if code != ExitProblems || out != "domains is empty: no mail is delivered locally\n" {
		t.Errorf("check with no domains: exit %d, %q", code, out)
	}

	mustWrite(t, in.conf, strings.Replace(conf, "example.org, example.net", "example.net", 1), 0o644)
	code, out, _ = in.run(t, "", "check")
	want := "user bob@example.org: domain example.org is not in domains: its mail is remote, never delivered here\n"
	if code != ExitProblems || out != want {
		t.Errorf("check with bob's domain not hosted: exit %d, %q, want %q", code, out, want)
	}
}

// A --home that cannot be one passwd-file field (a line break would add a
// user of the caller's choosing, a ':' shift the fields) is refused before
// anything is written or created.
func TestAddHomeRefusesFieldInjection(t *testing.T) {
	in := newInstall(t)
	for _, home := range []string{
		filepath.Join(in.mailRoot, "bob") + "\nevil@example.org:{BLF-CRYPT}$2y$04$abcdefghijklmnopqrstuu5bJ6FUXGz9oQjDQlFw1e7Ohq7GkXQ5y",
		filepath.Join(in.mailRoot, "bob:/bin/sh"),
		filepath.Join(in.mailRoot, "bob\r"),
	} {
		code, _, errOut := in.run(t, "pw\n", "user", "add", "--home", home, "bob@example.org")
		if code != ExitUsage || !strings.Contains(errOut, "--home") {
			t.Errorf("--home %q: exit %d, stderr %q; want %d naming --home", home, code, errOut, ExitUsage)
		}
	}
	if _, err := os.Stat(in.passwd); err == nil {
		t.Errorf("a refused --home wrote the passwd file:\n%s", readString(t, in.passwd))
	}
	if entries, err := os.ReadDir(in.mailRoot); err != nil || len(entries) != 0 {
		t.Errorf("a refused --home created %v (%v) under mail_root", entries, err)
	}
}
