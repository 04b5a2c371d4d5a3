package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// The mail-root rule: every Maildir lies below mail_root. deliver confines
// each delivery to mail_root (resolving symlinks, maildir.Deliverer's
// Confine) and refuses anything else with 5.7.0, exit 77, so a user whose
// Maildir is elsewhere could log in but never receive mail. "user add
// --home" refuses such a directory and "check" reports such users, so the
// mistake cannot be made silently.

// errOutsideMailRoot is wrapped by belowMailRoot's refusals.
var errOutsideMailRoot = errors.New("outside mail_root")

// belowMailRoot returns nil when dir, with symlinks in its existing part
// resolved the way deliver resolves them, lies strictly below mailRoot.
func belowMailRoot(mailRoot, dir string) error {
	root, err := resolveExisting(mailRoot)
	if err != nil {
		return fmt.Errorf("mail_root: %w", err)
	}
	resolved, err := resolveExisting(dir)
	if err != nil {
		return err
	}
	if root != "/" && !strings.HasPrefix(resolved, root+string(filepath.Separator)) || resolved == root {
		where := resolved
		if resolved != filepath.Clean(dir) {
			where = fmt.Sprintf("%s (resolves to %s)", dir, resolved)
		}
		return fmt.Errorf("%s is %w %s: deliver would refuse every message for it (exit 77)",
			where, errOutsideMailRoot, mailRoot)
	}
	return nil
}

// resolveExisting makes path absolute and resolves the symlinks of its
// deepest existing ancestor, keeping the components that do not exist yet
// (a Maildir that "user add" is about to create).
func resolveExisting(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var missing []string
	// Bounded: each step drops one component, and "/" always exists.
	for i := 0; i < 4096; i++ {
		resolved, err := filepath.EvalSymlinks(p)
		if err == nil {
			for j := len(missing) - 1; j >= 0; j-- {
				resolved = filepath.Join(resolved, missing[j])
			}
			return resolved, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		missing = append(missing, filepath.Base(p))
		p = parent
	}
	return "", fmt.Errorf("cannot resolve %s", path)
}
