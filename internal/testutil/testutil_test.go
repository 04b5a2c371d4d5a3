package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) { RunMain(m) }

// fakeTB records Fatal and Skip instead of ending the test, so the helpers'
// failure paths can be checked. Like the real ones, the helpers return right
// after calling Fatal or Skip.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatal(args ...any)              { f.fatal = fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestRequireTool(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("no sh on this machine: %v", err)
	}
	tests := []struct {
		name, path, env string
		want            string // "found", "skip" or "fatal"
	}{
		{"bare name found", "sh", "1", "found"},
		{"absolute path found", sh, "", "found"},
		{"missing, rule off", "/nonexistent/mailroom-tool", "", "skip"},
		{"missing, rule 0", "mailroom-no-such-tool", "0", "skip"},
		{"missing, rule on", "/nonexistent/mailroom-tool", "1", "fatal"},
		{"missing bare name, rule on", "mailroom-no-such-tool", "1", "fatal"},
		{"not executable, rule on", "/etc/passwd", "1", "fatal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(RequireInteropEnv, tt.env)
			f := &fakeTB{TB: t}
			got := RequireTool(f, tt.path)
			switch tt.want {
			case "found":
				if got == "" || f.fatal != "" || f.skip != "" {
					t.Fatalf("RequireTool(%q) = %q, fatal %q, skip %q; want a path", tt.path, got, f.fatal, f.skip)
				}
			case "skip":
				if got != "" || f.skip == "" || f.fatal != "" {
					t.Fatalf("RequireTool(%q) = %q, fatal %q, skip %q; want a skip", tt.path, got, f.fatal, f.skip)
				}
			case "fatal":
				if got != "" || f.fatal == "" || f.skip != "" {
					t.Fatalf("RequireTool(%q) = %q, fatal %q, skip %q; want a failure", tt.path, got, f.fatal, f.skip)
				}
				if !strings.Contains(f.fatal, RequireInteropEnv) {
					t.Errorf("failure message %q does not name %s", f.fatal, RequireInteropEnv)
				}
			}
		})
	}
}

func TestTempMaildirRoot(t *testing.T) {
	root := TempMaildirRoot(t)
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("mail root mode = %v, want a 0700 directory", fi.Mode())
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Errorf("mail root holds %v (err %v), want nothing", entries, err)
	}
	if resolved, err := filepath.EvalSymlinks(root); err != nil || resolved != root {
		t.Errorf("EvalSymlinks(%q) = %q, %v; want the path unchanged", root, resolved, err)
	}
	outside := filepath.Join(filepath.Dir(root), "outside")
	if err := os.WriteFile(outside, nil, 0o600); err != nil {
		t.Errorf("the parent of the mail root is not usable: %v", err)
	}
	if other := TempMaildirRoot(t); other == root {
		t.Errorf("two calls returned the same root %q", root)
	}
}

func TestBuildBinaries(t *testing.T) {
	first := BuildBinaries(t, "./testdata/hello")
	hello := first["hello"]
	if hello == "" {
		t.Fatalf("BuildBinaries = %v, want an entry for hello", first)
	}
	out, err := exec.Command(hello).Output()
	if err != nil {
		t.Fatalf("running %s: %v", hello, err)
	}
	if got, want := string(out), "hello from a built program\n"; got != want {
		t.Errorf("hello printed %q, want %q", got, want)
	}
	fi, err := os.Stat(hello)
	if err != nil {
		t.Fatal(err)
	}
	again := BuildBinaries(t, "./testdata/hello")
	if again["hello"] != hello {
		t.Errorf("second build at %q, first at %q; want the cached one", again["hello"], hello)
	}
	fi2, err := os.Stat(again["hello"])
	if err != nil {
		t.Fatal(err)
	}
	if !fi2.ModTime().Equal(fi.ModTime()) {
		t.Errorf("the program was rebuilt (mtime %v, then %v)", fi.ModTime(), fi2.ModTime())
	}
}

func TestBuildBinariesFailures(t *testing.T) {
	t.Run("build error", func(t *testing.T) {
		f := &fakeTB{TB: t}
		if got := BuildBinaries(f, "./testdata/no-such-package"); got != nil {
			t.Errorf("BuildBinaries = %v, want nil", got)
		}
		if !strings.Contains(f.fatal, "go build ./testdata/no-such-package") {
			t.Errorf("failure %q does not show the go build error", f.fatal)
		}
	})
	t.Run("same name twice", func(t *testing.T) {
		f := &fakeTB{TB: t}
		BuildBinaries(f, "./testdata/hello", "mailroom/internal/testutil/testdata/hello")
		if !strings.Contains(f.fatal, `two packages named "hello"`) {
			t.Errorf("failure = %q, want the duplicate name reported", f.fatal)
		}
	})
	t.Run("without RunMain", func(t *testing.T) {
		binMu.Lock()
		mainUsed = false
		binMu.Unlock()
		t.Cleanup(func() {
			binMu.Lock()
			mainUsed = true
			binMu.Unlock()
		})
		f := &fakeTB{TB: t}
		if got := BuildBinaries(f, "./testdata/hello"); got != nil {
			t.Errorf("BuildBinaries = %v, want nil", got)
		}
		if !strings.Contains(f.fatal, "RunMain") {
			t.Errorf("failure = %q, want it to point at RunMain", f.fatal)
		}
	})
}

func TestShareMailRoot(t *testing.T) {
	root := TempMaildirRoot(t)
	uid, gid := ShareMailRoot(t, root)
	fi, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("mail root owned by %d:%d, ShareMailRoot said %d:%d", st.Uid, st.Gid, uid, gid)
	}
	if os.Geteuid() != 0 {
		if uid != os.Getuid() || gid != os.Getgid() {
			t.Errorf("not root: ShareMailRoot returned %d:%d, want the caller's %d:%d", uid, gid, os.Getuid(), os.Getgid())
		}
		return
	}
	if uid != NobodyID || gid != NobodyID {
		t.Errorf("as root: ShareMailRoot returned %d:%d, want %d:%d", uid, gid, NobodyID, NobodyID)
	}
	// Every directory from / down to the mail root is searchable by
	// others; the ones the test made are not readable by them.
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for dir := filepath.Dir(root); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Errorf("%s: mode %v, not searchable by others", dir, fi.Mode().Perm())
		}
		if strings.HasPrefix(dir, tmp+string(filepath.Separator)) && fi.Mode().Perm() != 0o711 {
			t.Errorf("%s: mode %v, want 0711", dir, fi.Mode().Perm())
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}

	// A directory outside the temporary directory is refused.
	f := &fakeTB{TB: t}
	ShareMailRoot(f, "/etc/mailroom-not-a-mail-root")
	if !strings.Contains(f.fatal, "not below the temporary directory") {
		t.Errorf("a path outside the temporary directory: fatal %q", f.fatal)
	}
}
