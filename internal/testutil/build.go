package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// The programs a test process builds go into one directory, made on first
// use and removed by RunMain when the tests are done.
var (
	binMu    sync.Mutex
	binDir   string
	builds   = map[string]*build{} // by package
	mainUsed bool                  // RunMain is in charge of binDir
)

type build struct {
	once  sync.Once
	index int // names the build's own directory
	path  string
	err   error
}

// RunMain runs the tests and then removes what BuildBinaries built. A package
// whose tests call BuildBinaries calls it from TestMain:
//
//	func TestMain(m *testing.M) { testutil.RunMain(m) }
func RunMain(m *testing.M) {
	binMu.Lock()
	mainUsed = true
	binMu.Unlock()
	code := m.Run()
	binMu.Lock()
	dir := binDir
	binMu.Unlock()
	if dir != "" {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: removing built programs: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// BuildBinaries builds each main package (an import path such as
// "mailroom/cmd/deliver", or a directory relative to the test's own, such as
// "./testdata/hello") and returns the executables by name, the last element
// of the package path. Each package is built once per test process, however
// many tests ask; a failed build fails every test that asks for it. When the
// tests run with -race the programs are built with -race too, so the
// end-to-end tests watch the programs for data races as well.
func BuildBinaries(t testing.TB, pkgs ...string) map[string]string {
	t.Helper()
	dir, err := buildDir()
	if err != nil {
		t.Fatal(err)
		return nil // when t is a fake whose Fatal returns
	}
	paths := make(map[string]string, len(pkgs))
	for _, pkg := range pkgs {
		name := path.Base(pkg)
		if _, dup := paths[name]; dup {
			t.Fatalf("BuildBinaries: two packages named %q", name)
			return nil
		}
		p, err := buildOnce(dir, pkg)
		if err != nil {
			t.Fatal(err)
			return nil
		}
		paths[name] = p
	}
	return paths
}

func buildDir() (string, error) {
	binMu.Lock()
	defer binMu.Unlock()
	if !mainUsed {
		return "", errors.New("BuildBinaries needs TestMain to call testutil.RunMain(m), which removes the programs afterwards")
	}
	if binDir == "" {
		dir, err := os.MkdirTemp("", "mailroom-bin-")
		if err != nil {
			return "", fmt.Errorf("BuildBinaries: %w", err)
		}
		binDir = dir
	}
	return binDir, nil
}

func buildOnce(dir, pkg string) (string, error) {
	binMu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &build{index: len(builds)}
		builds[pkg] = b
	}
	binMu.Unlock()
	b.once.Do(func() {
		// A directory per package keeps equal names from different
		// callers apart.
		out := filepath.Join(dir, strconv.Itoa(b.index), path.Base(pkg))
		b.path, b.err = goBuild(out, pkg)
	})
	return b.path, b.err
}

func goBuild(out, pkg string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building %s: %w", pkg, err)
	}
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, pkg)...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
	}
	return out, nil
}
