// Package privs changes the process's credentials for programs that may be
// started as root but must not write as root (docs/security.md).
//
// The contract:
//
//   - DropTo(uid, gid) leaves every thread of the process with real,
//     effective and saved uid = uid and gid = gid, no supplementary
//     groups and no capabilities (inheritable, permitted, effective and
//     ambient sets empty), for good: it returns nil only after checking
//     that the ids are the targets, that no thread holds a capability and
//     that setuid(0) now fails. Capabilities matter because setuid clears
//     them only when leaving uid 0 without keep-caps: a process started
//     as root with SecureBits=keep-caps, or as an ordinary user with
//     AmbientCapabilities=, would otherwise keep root's powers. DropTo
//     empties those sets on every thread itself; a program linked with cgo
//     cannot (AllThreadsSyscall is unavailable), so there it returns an
//     error if any thread kept a capability. Any error means the
//     credentials are not what was asked for and the caller must stop
//     before doing the work it wanted to do unprivileged.
//   - DropTo refuses uid 0 and gid 0: dropping "to root" is a
//     configuration mistake, never a drop.
//   - Owner(path) is the uid and gid owning what path names, symbolic
//     links followed: the directory a program will write into.
//
// On Linux, Go (since 1.16) applies setgroups, setgid and setuid to all of
// the process's threads, with or without cgo, so no goroutine keeps the
// old credentials. Nothing here is setuid or setgid: these functions only
// ever lower privileges.
package privs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DropTo sets the process's supplementary groups to none, then its gid,
// then its uid (in that order: once the uid is no longer root, the groups
// and gid can no longer be changed), and verifies the result.
//
// A process that is not root can "drop" only to its own ids, and only if
// it has no supplementary groups; anything else fails with EPERM.
func DropTo(uid, gid int) error {
	if uid == 0 || gid == 0 {
		return fmt.Errorf("privs: refusing to drop to uid %d, gid %d: that is root", uid, gid)
	}
	if uid < 0 || gid < 0 {
		return fmt.Errorf("privs: invalid uid %d or gid %d", uid, gid)
	}
	groups, err := syscall.Getgroups()
	if err != nil {
		return fmt.Errorf("privs: getgroups: %w", err)
	}
	// setgroups needs CAP_SETGID even to set what is already there, so an
	// unprivileged process with no groups skips it.
	if len(groups) > 0 {
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("privs: clearing supplementary groups: %w", err)
		}
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("privs: setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("privs: setuid %d: %w", uid, err)
	}
	if err := clearCapabilities(); err != nil {
		return err
	}
	return verify(uid, gid)
}

// verify checks the credentials after DropTo: trust the kernel's answer,
// not the absence of an error.
func verify(uid, gid int) error {
	ids := []struct {
		name      string
		got, want int
	}{
		{"uid", syscall.Getuid(), uid},
		{"euid", syscall.Geteuid(), uid},
		{"gid", syscall.Getgid(), gid},
		{"egid", syscall.Getegid(), gid},
	}
	for _, id := range ids {
		if id.got != id.want {
			return fmt.Errorf("privs: after dropping privileges %s is %d, want %d", id.name, id.got, id.want)
		}
	}
	groups, err := syscall.Getgroups()
	if err != nil {
		return fmt.Errorf("privs: getgroups: %w", err)
	}
	if len(groups) > 0 {
		return fmt.Errorf("privs: after dropping privileges the supplementary groups are %v, want none", groups)
	}
	if err := checkNoCapabilities(); err != nil {
		return err
	}
	// The saved set-user-ID is not visible through getuid/geteuid: if it
	// were still 0, setuid(0) would succeed and give root back.
	if err := syscall.Setuid(0); err == nil {
		return errors.New("privs: setuid(0) succeeded after dropping privileges")
	}
	return nil
}

// clearCapabilities empties the ambient, then the inheritable, permitted
// and effective capability sets of every thread (capabilities are per
// thread, so the calls go through AllThreadsSyscall as Go's setuid does).
// Lowering capabilities needs no privilege. A program linked with cgo
// cannot use AllThreadsSyscall; there the kernel's clearing on leaving
// uid 0 has to have done it, and checkNoCapabilities finds out.
func clearCapabilities() error {
	_, _, errno := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0)
	switch errno {
	case 0, syscall.EINVAL: // EINVAL: a kernel before 4.3 has no ambient set
	case syscall.ENOTSUP:
		return nil
	default:
		return fmt.Errorf("privs: clearing ambient capabilities: %w", errno)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData // version 3: two 32-bit words per set
	_, _, errno = syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&none[0])), 0)
	if errno != 0 && errno != syscall.ENOTSUP {
		return fmt.Errorf("privs: clearing capabilities: %w", errno)
	}
	return nil
}

// checkNoCapabilities reads every thread's capability sets from /proc and
// fails if any but the bounding set (which only limits what execve may
// grant) is not empty. Without /proc it checks the calling thread.
func checkNoCapabilities() error {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) == 0 {
		return checkThreadCapabilities()
	}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread has exited
		}
		for _, line := range strings.Split(string(b), "\n") {
			name, val, _ := strings.Cut(line, ":")
			switch name {
			case "CapInh", "CapPrm", "CapEff", "CapAmb":
				if strings.Trim(strings.TrimSpace(val), "0") != "" {
					return fmt.Errorf("privs: after dropping privileges a thread still has capabilities (%s %s)", name, strings.TrimSpace(val))
				}
			}
		}
	}
	return nil
}

// checkThreadCapabilities is checkNoCapabilities for the calling thread
// alone, through capget(2).
func checkThreadCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var sets [2]unix.CapUserData
	if err := unix.Capget(&hdr, &sets[0]); err != nil {
		return fmt.Errorf("privs: capget: %w", err)
	}
	for _, d := range sets {
		if d.Effective|d.Permitted|d.Inheritable != 0 {
			return fmt.Errorf("privs: after dropping privileges capabilities remain (%+v)", sets)
		}
	}
	return nil
}

// Owner returns the uid and gid owning path (symbolic links followed).
func Owner(path string) (uid, gid int, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return -1, -1, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, -1, fmt.Errorf("privs: %s: no owner in %T", path, fi.Sys())
	}
	return int(st.Uid), int(st.Gid), nil
}
