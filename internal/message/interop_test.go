package message

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool skips the test when path is not there, unless
// MAILROOM_REQUIRE_INTEROP=1 makes that a failure.
func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath(path); err == nil {
		return
	} else if os.Getenv("MAILROOM_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s is required (MAILROOM_REQUIRE_INTEROP=1): %v", path, err)
	} else {
		t.Skipf("%s not usable: %v", path, err)
	}
}
