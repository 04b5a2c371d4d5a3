//go:build !linux

package maildir

import (
	"fmt"
	"os"
)

// syncReadDir returns the names in dir, without stat; hint is for the
// Linux version.
func syncReadDir(dir string, _ int) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	names, err := f.Readdirnames(-1)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: read %s: %w", dir, err)
	}
	return names, nil
}
