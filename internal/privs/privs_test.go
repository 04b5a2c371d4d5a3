package privs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/internal/testutil"
)

// childEnv makes the test binary act as a child process: DropTo changes
// the credentials of the whole process for good, so it runs in a re-exec'd
// copy while the test itself stays root.
const childEnv = "MAILROOM_PRIVS_CHILD"

// nobody is the unprivileged id the tests drop to (Debian's nobody and
// nogroup).
const nobody = 65534

func TestMain(m *testing.M) {
	if mode, ok := os.LookupEnv(childEnv); ok {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// report is what a child prints on stdout as JSON.
type report struct {
	Err              string   // DropTo's error, "" for nil
	Errno            int      // its errno, if any
	UID, EUID        int      // after DropTo
	GID, EGID        int      //
	Groups           []int    //
	ThreadCreds      []string // "uid,euid,gid,egid" seen by each pinned thread
	ProcStatus       []string // Uid: and Gid: lines of every task in /proc
	RootFileReadable bool     // the path in MAILROOM_PRIVS_ROOTFILE opened
	Caps             []string // non-zero CapInh/CapPrm/CapEff/CapAmb lines of every task
}

// keepCapsEnv makes the child set PR_SET_KEEPCAPS on the thread that
// calls DropTo, as a service started with SecureBits=keep-caps has it.
const keepCapsEnv = "MAILROOM_PRIVS_KEEPCAPS"

// child runs in the re-exec'd process: mode is "UID:GID" to drop to.
func child(mode string) int {
	uidS, gidS, _ := strings.Cut(mode, ":")
	uid, err1 := strconv.Atoi(uidS)
	gid, err2 := strconv.Atoi(gidS)
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintf(os.Stderr, "bad %s=%q: %v\n", childEnv, mode, err)
		return 2
	}
	// Threads started before the drop, each pinned to its goroutine: they
	// must lose root too (Go applies set*id to every thread).
	const pinned = 4
	var ready, wg sync.WaitGroup
	release := make(chan struct{})
	creds := make([]string, pinned)
	for i := range pinned {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			ready.Done()
			<-release
			creds[i] = fmt.Sprintf("%d,%d,%d,%d", syscall.Getuid(), syscall.Geteuid(), syscall.Getgid(), syscall.Getegid())
		}()
	}
	ready.Wait()
	var r report
	if os.Getenv(keepCapsEnv) == "1" {
		runtime.LockOSThread() // the setting is per thread
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			fmt.Fprintf(os.Stderr, "PR_SET_KEEPCAPS: %v\n", err)
			return 2
		}
	}
	if err := DropTo(uid, gid); err != nil {
		r.Err = err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			r.Errno = int(errno)
		}
	}
	close(release)
	wg.Wait()
	r.ThreadCreds = creds
	r.UID, r.EUID, r.GID, r.EGID = syscall.Getuid(), syscall.Geteuid(), syscall.Getgid(), syscall.Getegid()
	r.Groups, _ = syscall.Getgroups()
	r.ProcStatus = procCreds()
	r.Caps = procCaps()
	if p := os.Getenv("MAILROOM_PRIVS_ROOTFILE"); p != "" {
		if f, err := os.Open(p); err == nil {
			r.RootFileReadable = true
			f.Close()
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// procCreds returns the Uid: and Gid: lines of every thread of the process.
func procCreds() []string {
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	var lines []string
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited meanwhile
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") || strings.HasPrefix(l, "Groups:") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	return lines
}

// procCaps returns the capability lines of every thread that are not
// empty (the bounding set, which only limits what execve may grant, aside).
func procCaps() []string {
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	var lines []string
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			name, val, _ := strings.Cut(l, ":")
			switch name {
			case "CapInh", "CapPrm", "CapEff", "CapAmb":
				if strings.Trim(strings.TrimSpace(val), "0") != "" {
					lines = append(lines, strings.Join(strings.Fields(l), " "))
				}
			}
		}
	}
	return lines
}

// runChild re-executes the test binary in child mode, dropping to
// uid:gid, optionally started with other credentials, and decodes its
// report.
func runChild(t *testing.T, uid, gid int, start *syscall.Credential, rootFile string) report {
	t.Helper()
	return runChildWith(t, uid, gid, &syscall.SysProcAttr{Credential: start}, nil, rootFile)
}

// runChildWith is runChild with the child's process attributes and extra
// environment given.
func runChildWith(t *testing.T, uid, gid int, attr *syscall.SysProcAttr, env []string, rootFile string) report {
	t.Helper()
	start := attr.Credential
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if start != nil {
		exe = reachableCopy(t, exe)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	// Under -race a child sleeps a second at exit unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%d", childEnv, uid, gid),
		"MAILROOM_PRIVS_ROOTFILE="+rootFile, "GORACE="+gorace)
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = attr
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstderr: %s", err, errb.String())
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("child's report %q: %v\nstderr: %s", out.String(), err, errb.String())
	}
	return r
}

// reachableCopy copies the test binary where a child started as another
// uid can run it: go test builds it in a directory private to root.
func reachableCopy(t *testing.T, exe string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(exe))
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// requireRoot applies the interop rule to running as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(testutil.RequireInteropEnv) == "1" {
		t.Fatalf("dropping privileges needs root (%s=1)", testutil.RequireInteropEnv)
	}
	t.Skipf("dropping privileges needs root; set %s=1 to make this a failure", testutil.RequireInteropEnv)
}

// rootOnlyFile is a file only root may read, in a directory anyone may
// search.
func rootOnlyFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The temp dir's parent was made by the testing package, 0700.
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDropToAsRoot(t *testing.T) {
	requireRoot(t)
	secret := rootOnlyFile(t)
	tests := []struct {
		name     string
		uid, gid int
		wantErr  string // substring; "" for success
	}{
		{name: "nobody", uid: nobody, gid: nobody},
		{name: "uid and gid differ", uid: nobody, gid: 100},
		{name: "to root refused", uid: 0, gid: 0, wantErr: "that is root"},
		{name: "group root refused", uid: nobody, gid: 0, wantErr: "that is root"},
		{name: "negative refused", uid: -1, gid: nobody, wantErr: "invalid uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runChild(t, tt.uid, tt.gid, nil, secret)
			if tt.wantErr != "" {
				if !strings.Contains(r.Err, tt.wantErr) {
					t.Errorf("DropTo(%d, %d) = %q, want an error with %q", tt.uid, tt.gid, r.Err, tt.wantErr)
				}
				if r.UID != 0 || r.EUID != 0 {
					t.Errorf("a refused DropTo changed the ids: uid %d euid %d", r.UID, r.EUID)
				}
				return
			}
			if r.Err != "" {
				t.Fatalf("DropTo(%d, %d): %s", tt.uid, tt.gid, r.Err)
			}
			if r.UID != tt.uid || r.EUID != tt.uid || r.GID != tt.gid || r.EGID != tt.gid {
				t.Errorf("ids uid %d euid %d gid %d egid %d, want %d and %d", r.UID, r.EUID, r.GID, r.EGID, tt.uid, tt.gid)
			}
			if len(r.Groups) != 0 {
				t.Errorf("supplementary groups %v, want none", r.Groups)
			}
			want := fmt.Sprintf("%d,%d,%d,%d", tt.uid, tt.uid, tt.gid, tt.gid)
			for i, c := range r.ThreadCreds {
				if c != want {
					t.Errorf("pinned thread %d has uid,euid,gid,egid %s, want %s", i, c, want)
				}
			}
			// Every thread: real, effective, saved and fs ids all the
			// targets, no groups.
			wantUID := fmt.Sprintf("Uid: %d %d %d %d", tt.uid, tt.uid, tt.uid, tt.uid)
			wantGID := fmt.Sprintf("Gid: %d %d %d %d", tt.gid, tt.gid, tt.gid, tt.gid)
			if len(r.ProcStatus) == 0 {
				t.Fatal("no thread status read from /proc")
			}
			for _, l := range r.ProcStatus {
				if strings.HasPrefix(l, "Uid:") && l != wantUID || strings.HasPrefix(l, "Gid:") && l != wantGID ||
					strings.HasPrefix(l, "Groups:") && l != "Groups:" {
					t.Errorf("a thread's /proc status has %q, want %q, %q and no groups", l, wantUID, wantGID)
				}
			}
			if r.RootFileReadable {
				t.Error("after DropTo the child still read a root-only file")
			}
		})
	}
}

// DropTo must leave no capability: a process keeping CAP_DAC_OVERRIDE or
// CAP_SETUID in any set (permitted, effective, ambient) still has root's
// power over files, or can take root back, whatever its ids say.
func TestDropToLeavesNoCapability(t *testing.T) {
	requireRoot(t)
	secret := rootOnlyFile(t)
	// The child is this binary: it can clear other threads' capabilities
	// when AllThreadsSyscall works, that is when cgo is not linked in.
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0)
	canClear := errno != syscall.ENOTSUP
	tests := []struct {
		name string
		attr *syscall.SysProcAttr
		env  []string
	}{
		{"root", &syscall.SysProcAttr{}, nil},
		// systemd's SecureBits=keep-caps: setuid keeps the permitted set.
		{"root with keep-caps", &syscall.SysProcAttr{}, []string{keepCapsEnv + "=1"}},
		// systemd's User=nobody AmbientCapabilities=CAP_DAC_OVERRIDE: no id
		// is 0, so setuid clears nothing.
		{"nobody with an ambient capability", &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: nobody, Gid: nobody},
			AmbientCaps: []uintptr{unix.CAP_DAC_OVERRIDE},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runChildWith(t, nobody, nobody, tt.attr, tt.env, secret)
			if r.Err != "" {
				// Without cgo DropTo clears every thread's sets itself;
				// with cgo (as under -race) it can only refuse.
				if canClear || !strings.Contains(r.Err, "capabilit") {
					t.Fatalf("DropTo: %s", r.Err)
				}
				return
			}
			if len(r.Caps) != 0 {
				t.Errorf("DropTo returned nil with capabilities left: %v", r.Caps)
			}
			if r.RootFileReadable {
				t.Error("DropTo returned nil and the child still read a root-only file")
			}
		})
	}
}

// checkUnprivileged is what DropTo does for a process that is not root:
// to its own ids it succeeds, to anyone else's it fails with EPERM.
func checkUnprivileged(t *testing.T, start *syscall.Credential, uid, gid int) {
	t.Helper()
	if r := runChild(t, uid, gid, start, ""); r.Err != "" {
		t.Errorf("DropTo(own ids %d, %d) as non-root: %s", uid, gid, r.Err)
	} else if r.UID != uid || r.EUID != uid || r.GID != gid || r.EGID != gid {
		t.Errorf("ids uid %d euid %d gid %d egid %d, want %d and %d", r.UID, r.EUID, r.GID, r.EGID, uid, gid)
	}
	other := 1 // daemon on Debian; any id not the caller's will do
	if uid == other {
		other = 2
	}
	for _, ids := range [][2]int{{other, gid}, {uid, other}, {other, other}} {
		r := runChild(t, ids[0], ids[1], start, "")
		if syscall.Errno(r.Errno) != syscall.EPERM {
			t.Errorf("DropTo(%d, %d) as uid %d: error %q (errno %d), want EPERM", ids[0], ids[1], uid, r.Err, r.Errno)
		}
		if r.UID != uid || r.EUID != uid {
			t.Errorf("a failed DropTo changed the uid to %d/%d", r.UID, r.EUID)
		}
	}
}

func TestDropToUnprivileged(t *testing.T) {
	if os.Geteuid() == 0 {
		// The child starts as nobody with no groups, as a daemon would.
		checkUnprivileged(t, &syscall.Credential{Uid: nobody, Gid: nobody}, nobody, nobody)
		return
	}
	if groups, err := syscall.Getgroups(); err != nil {
		t.Fatal(err)
	} else if len(groups) > 0 {
		// setgroups needs privilege, so with groups even one's own ids
		// cannot be dropped to.
		r := runChild(t, os.Getuid(), os.Getgid(), nil, "")
		if syscall.Errno(r.Errno) != syscall.EPERM {
			t.Errorf("DropTo(own ids) with supplementary groups %v: %q, want EPERM", groups, r.Err)
		}
		return
	}
	checkUnprivileged(t, nil, os.Getuid(), os.Getgid())
}

func TestOwner(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	wantUID, wantGID := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		// Root can give the file away: Owner must report the new owner,
		// not the caller.
		wantUID, wantGID = nobody, 100
		if err := os.Chown(file, wantUID, wantGID); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, path       string
		wantUID, wantGID int
		wantErr          error
	}{
		{"file", file, wantUID, wantGID, nil},
		{"symlink followed", link, wantUID, wantGID, nil},
		{"directory", dir, os.Getuid(), os.Getgid(), nil},
		{"missing", filepath.Join(dir, "none"), -1, -1, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, gid, err := Owner(tt.path)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Owner(%s) error %v, want %v", tt.path, err, tt.wantErr)
			}
			if uid != tt.wantUID || gid != tt.wantGID {
				t.Errorf("Owner(%s) = %d, %d, want %d, %d", tt.path, uid, gid, tt.wantUID, tt.wantGID)
			}
		})
	}
}
