package account

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/internal/fsx"
)

// Errors of the editing functions, for callers that map them to exit codes.
var (
	ErrUserExists  = errors.New("user already exists")
	ErrNoSuchUser  = errors.New("no such user")
	ErrLockTimeout = errors.New("timed out waiting for the passwd lock")
)

// LockTimeout bounds how long an edit waits for "<path>.lock".
var LockTimeout = 10 * time.Second

// lockPollInterval: flock(2) has no timeout, so a waiting edit retries a
// non-blocking lock at this pace until LockTimeout.
const lockPollInterval = 20 * time.Millisecond

// newFileMode is the mode of a passwd-file AddUser creates: hashes are
// secrets, readable by root and the file's group only.
const newFileMode = 0o640

// AddUser appends u as a new line. It refuses an invalid address and a user
// that already exists (compared case-insensitively). A missing file is
// created.
func AddUser(path string, u User) error {
	if err := ValidAddress(u.Address); err != nil {
		return err
	}
	if err := checkFields(u); err != nil {
		return fmt.Errorf("user %s: %w", u.Address, err)
	}
	line := formatLine(u)
	// Belt and braces: the line must read back as exactly u, so that no
	// field can shift another or add a line.
	if back, ok, err := parseLine(line); err != nil || !ok || !sameUser(back, u) {
		return fmt.Errorf("user %s: %w", u.Address, errors.Join(err, errors.New("does not form a valid line")))
	}
	return edit(path, true, func(lines []string) ([]string, error) {
		if i := findUser(lines, u.Address); i >= 0 {
			return nil, fmt.Errorf("%w: %s", ErrUserExists, u.Address)
		}
		return append(lines, line), nil
	})
}

// SetPassword replaces address's password field with hash, leaving the
// rest of its line as it was.
func SetPassword(path, address, hash string) error {
	if err := checkHash(hash); err != nil {
		return err
	}
	return edit(path, false, func(lines []string) ([]string, error) {
		i := findUser(lines, address)
		if i < 0 {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchUser, address)
		}
		f := splitFields(lines[i])
		f[fieldPass] = hash
		lines[i] = strings.Join(f, ":")
		return lines, nil
	})
}

// DeleteUser removes address's line. Its mail is not touched.
func DeleteUser(path, address string) error {
	return edit(path, false, func(lines []string) ([]string, error) {
		i := findUser(lines, address)
		if i < 0 {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchUser, address)
		}
		return append(lines[:i], lines[i+1:]...), nil
	})
}

// checkHash refuses a password field that would end the field or the line.
// The hash itself is never quoted: it is a secret.
func checkHash(hash string) error {
	if strings.ContainsAny(hash, ":\n\r\x00") {
		return errors.New("hash contains ':', a line break or NUL")
	}
	return nil
}

// checkFields refuses a User whose fields cannot be written as one line of
// the file: a ':' outside extra_fields shifts the fields after it, a line
// break starts a new user, blanks or '=' in extra fields make other keys.
func checkFields(u User) error {
	if err := checkHash(u.Hash); err != nil {
		return err
	}
	if err := ValidHome(u.Home); err != nil {
		return err
	}
	for k, v := range u.Extra {
		if k == "" || hasControl(k+v) || strings.ContainsAny(k, ":= \t") || strings.ContainsAny(v, " \t") {
			return fmt.Errorf("extra field %q=%q: want a key without blanks, ':' or '=' and a value without blanks", k, v)
		}
	}
	return nil
}

// ValidHome refuses a home field the passwd-file cannot carry: a ':'
// would shift the fields after it, a line break start another user. ""
// (no home) is valid; whether the path is absolute is the caller's check.
func ValidHome(home string) error {
	if hasControl(home) || strings.ContainsRune(home, ':') {
		return fmt.Errorf("home %q contains ':' or a control character", home)
	}
	return nil
}

// hasControl reports whether s holds an ASCII control character.
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}

// sameUser reports whether a and b hold the same fields.
func sameUser(a, b User) bool {
	return a.Address == b.Address && a.Hash == b.Hash && a.UID == b.UID && a.GID == b.GID &&
		a.Home == b.Home && maps.Equal(a.Extra, b.Extra)
}

// findUser returns the index of address's line, or -1.
func findUser(lines []string, address string) int {
	want := normalize(address)
	for i, l := range lines {
		u, ok, err := parseLine(l)
		if err == nil && ok && normalize(u.Address) == want {
			return i
		}
	}
	return -1
}

// edit runs change on the file's lines under the lock and writes the result
// atomically with the old file's mode and owner. The whole file must parse:
// an edit never builds on a file Load would refuse.
func edit(path string, create bool, change func([]string) ([]string, error)) error {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()

	mode := fs.FileMode(newFileMode)
	uid, gid := -1, -1
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("passwd file: %w", err)
		}
		mode = st.Mode().Perm()
		// os.Stat's Sys is a *syscall.Stat_t (never x/sys/unix's type).
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	case create && errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("passwd file: %w", err)
	}
	if _, err := parseFile(path, data); err != nil {
		return err
	}
	lines, err := change(splitLines(data))
	if err != nil {
		return err
	}
	out := strings.Join(lines, "\n")
	if len(lines) > 0 {
		out += "\n"
	}
	if err := fsx.WriteFileAtomic(path, []byte(out), mode); err != nil {
		return err
	}
	return keepOwner(path, uid, gid)
}

// keepOwner gives the rewritten file the old file's owner when the writer
// is someone else (root editing a root:dovecot 0640 file, say).
func keepOwner(path string, uid, gid int) error {
	if uid < 0 || (uid == os.Geteuid() && gid == os.Getegid()) {
		return nil
	}
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("passwd file: keep owner: %w", err)
	}
	return nil
}

// lockFile takes an exclusive flock on path (creating it), waiting at most
// LockTimeout.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("passwd lock: %w", err)
	}
	deadline := time.Now().Add(LockTimeout)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				// Closing the descriptor releases the lock.
				f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("passwd lock %s: %w", path, err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w %s", ErrLockTimeout, path)
		}
		time.Sleep(lockPollInterval)
	}
}
