// Package testutil holds the small helpers tests across mailroom share:
// building the programs once per test process, the interop-tool rule, and
// temporary mail roots.
//
// The interop rule: a test that drives a Debian program (doveadm, postfix,
// swaks, ...) calls RequireTool first. When the program is missing the test
// is skipped, unless the environment has MAILROOM_REQUIRE_INTEROP=1 (as
// `make test` and CI do), where a missing program is a failure: CI must not
// pass by skipping the tests that matter most.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RequireInteropEnv names the environment variable of the interop rule.
const RequireInteropEnv = "MAILROOM_REQUIRE_INTEROP"

// RequireTool returns the path of an executable program: an absolute path
// is checked as it is, a bare name is looked up in $PATH. If the program is
// missing, the test is skipped, or fails when MAILROOM_REQUIRE_INTEROP=1.
func RequireTool(t testing.TB, path string) string {
	t.Helper()
	found, err := exec.LookPath(path)
	if err == nil {
		return found
	}
	if os.Getenv(RequireInteropEnv) == "1" {
		t.Fatalf("%s is required (%s=1) but not usable: %v", path, RequireInteropEnv, err)
		return ""
	}
	t.Skipf("%s not usable (%v); set %s=1 to make this a failure", path, err, RequireInteropEnv)
	return ""
}

// TempMaildirRoot returns an empty directory, private to the test and
// removed after it, to serve as a mail_root. Its path has no symlinks in it
// (so tests may compare it with resolved paths), and its parent is a private
// directory too, where a test may put things that lie outside the mail root
// (a symlink target for an escape test, a passwd file).
func TempMaildirRoot(t testing.TB) string {
	t.Helper()
	parent, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatalf("resolving the temporary directory: %v", err)
	}
	root := filepath.Join(parent, "mail")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatalf("creating the mail root: %v", err)
	}
	return root
}

// NobodyID is the uid and gid (Debian's nobody and nogroup) to which tests
// running as root give a mail root.
const NobodyID = 65534

// ShareMailRoot readies root, a directory under the temporary directory
// (as from TempMaildirRoot), for a program that, started as root, drops to
// the owner of mail_root before writing (deliver): when the test runs as
// root, root is given to nobody:nogroup and every directory between the
// temporary directory and root is made searchable by others (0711, never
// readable), so that nobody can reach it; directories above the temporary
// directory are left alone and must already be searchable. It returns the
// uid and gid that own root afterwards. Run by anyone else it changes
// nothing and returns the caller's ids.
func ShareMailRoot(t testing.TB, root string) (uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return os.Getuid(), os.Getgid()
	}
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		t.Fatalf("resolving the temporary directory: %v", err)
		return -1, -1
	}
	dir := filepath.Dir(root)
	if rel, err := filepath.Rel(tmp, dir); err != nil || rel == "." || !filepath.IsLocal(rel) {
		t.Fatalf("ShareMailRoot: %s is not below the temporary directory %s", root, tmp)
		return -1, -1
	}
	for ; dir != tmp; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatalf("ShareMailRoot: %v", err)
			return -1, -1
		}
	}
	for ; ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatalf("ShareMailRoot: %v", err)
			return -1, -1
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("ShareMailRoot: %s (mode %v) is not searchable by others, so uid %d cannot reach the mail root; use a TMPDIR that is", dir, fi.Mode().Perm(), NobodyID)
			return -1, -1
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	if err := os.Chown(root, NobodyID, NobodyID); err != nil {
		t.Fatalf("ShareMailRoot: %v", err)
		return -1, -1
	}
	return NobodyID, NobodyID
}

// WaitFor polls cond until it holds or limit has passed, and reports
// whether it held. It is for conditions outside the test's control (a
// child process writing a file); never use it to wait for code the test
// could synchronise with directly.
func WaitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}
