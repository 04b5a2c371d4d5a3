package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// ErrUnresolvable is returned by ResolveExisting when no ancestor of the
// path could be resolved at all.
var ErrUnresolvable = errors.New("fsx: cannot resolve path")

// ResolveExisting makes path absolute and resolves the symbolic links of
// its deepest existing ancestor, keeping the components that do not exist
// yet: the directory a program is about to create, as it will really lie.
// Confinement checks (deliver's, and mailroom's own checks of what deliver
// would accept) both use this, so they cannot disagree. An error other
// than "does not exist" from resolving is returned as it is (wrapped).
func ResolveExisting(path string) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("fsx: resolve %s: %w", path, err)
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
			return "", fmt.Errorf("fsx: resolve %s: %w", path, err)
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		missing = append(missing, filepath.Base(p))
		p = parent
	}
	return "", fmt.Errorf("%w: %s", ErrUnresolvable, path)
}

// Within reports whether the clean, resolved path is dir or lies below it.
func Within(path, dir string) bool {
	if path == dir || dir == "/" {
		return true
	}
	return strings.HasPrefix(path, dir+string(filepath.Separator))
}
