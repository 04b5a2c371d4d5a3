package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateOrphanAge is how old a file in state/ without a message must be
// before SweepTmp removes it, at most: long enough that a SetState or a
// Remove running beside the sweep (another goroutine of the consumer) has
// finished with it.
const stateOrphanAge = 10 * time.Minute

// SweepTmp removes what crashed writers and removals left behind: files
// in tmp/ (and old-layout message directories there) and incomplete
// maildrop files (mode 0600) whose modification time is older than
// olderThan (a day is the usual choice; a writer that has not written for
// that long is dead), everything in trash/, and files in state/ that
// belong to no message (a removal interrupted after its rename, a state
// change interrupted before its rename) once they are older than
// olderThan or ten minutes, whichever is less. It returns how many
// entries it removed.
func (s *Spool) SweepTmp(olderThan time.Duration) (int, error) {
	now := time.Now()
	cutoff := now.Add(-olderThan)
	stateCutoff := now.Add(-min(olderThan, stateOrphanAge))
	var errs []error
	removed := 0
	sweep := func(dir string, stale func(fs.FileInfo) bool) {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) && filepath.Base(dir) == dirState {
			return // a spool not yet Setup by this version: nothing to sweep
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("spool sweep: %w", err))
			return
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			fi, err := os.Lstat(p)
			if err != nil || !stale(fi) {
				continue
			}
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, fmt.Errorf("spool sweep: %w", err))
				continue
			}
			removed++
		}
	}
	sweep(s.path(dirTmp), func(fi fs.FileInfo) bool {
		if fi.IsDir() {
			// An old-layout writer appends to data, which does not touch
			// the directory's own mtime: both must be old.
			data, err := os.Lstat(filepath.Join(s.path(dirTmp), fi.Name(), fileData))
			if err == nil && !data.ModTime().Before(cutoff) {
				return false
			}
		}
		return fi.ModTime().Before(cutoff)
	})
	sweep(s.path(dirTrash), func(fs.FileInfo) bool { return true })
	sweep(s.path(dirMaildrop), func(fi fs.FileInfo) bool {
		return fi.Mode().IsRegular() && fi.Mode().Perm() == dropModeWriting && fi.ModTime().Before(cutoff)
	})
	sweep(s.path(dirState), func(fi fs.FileInfo) bool {
		if !fi.ModTime().Before(stateCutoff) {
			return false
		}
		if _, err := ParseID(fi.Name()); err != nil {
			return true // a temporary file of an interrupted SetState
		}
		_, err := os.Lstat(s.path(dirQueue, fi.Name()))
		return errors.Is(err, fs.ErrNotExist)
	})
	return removed, errors.Join(errs...)
}
