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
