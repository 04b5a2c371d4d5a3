package admin

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinary builds cmd/mailroom and runs it as a separate process.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "mailroom")
	build := exec.Command("go", "build", "-o", bin, "mailroom/cmd/mailroom")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	in := newInstall(t)
	run := func(stdin string, args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"--config", in.conf}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return 0, string(out)
		case errors.As(err, &exit):
			return exit.ExitCode(), string(out)
		}
		t.Fatalf("run %v: %v", args, err)
		return -1, ""
	}
	if code, out := run("s3cret\n", "user", "add", "dave@example.org"); code != 0 {
		t.Fatalf("user add: exit %d: %s", code, out)
	}
	if code, out := run("", "user", "list"); code != 0 || out != "dave@example.org\n" {
		t.Errorf("user list: exit %d: %q", code, out)
	}
	if code, out := run("", "user", "add"); code != ExitUsage {
		t.Errorf("user add without address: exit %d: %s", code, out)
	}
	if !in.load(t).Verify("dave@example.org", "s3cret") {
		t.Error("password set through the binary does not verify")
	}
}
