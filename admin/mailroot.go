package admin

import (
	"errors"
	"fmt"
	"path/filepath"

	"mailroom/internal/fsx"
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
	root, err := fsx.ResolveExisting(mailRoot)
	if err != nil {
		return fmt.Errorf("mail_root: %w", err)
	}
	resolved, err := fsx.ResolveExisting(dir)
	if err != nil {
		return err
	}
	if resolved == root || !fsx.Within(resolved, root) {
		where := resolved
		if resolved != filepath.Clean(dir) {
			where = fmt.Sprintf("%s (resolves to %s)", dir, resolved)
		}
		return fmt.Errorf("%s is %w %s: deliver would refuse every message for it (exit 77)",
			where, errOutsideMailRoot, mailRoot)
	}
	return nil
}
