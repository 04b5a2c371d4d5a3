package maildir

// Maildir++ folders (Courier's layout, Dovecot's default for Maildir):
//
//	<root>/                 INBOX (tmp/ new/ cur/), maildirsize, subscriptions
//	<root>/.Sent/           folder "Sent"
//	<root>/.Lists.Go/       folder "Lists/Go" (the '.' separates levels)
//	<root>/.Caf&AOk-/       folder "Café" (names in modified UTF-7)
//
// Folders are never nested on disk, and a folder's parent need not exist:
// like Dovecot, CreateFolder("Lists/Go") makes only .Lists.Go, and "Lists"
// is then a \Noselect parent that IMAP derives from the listing. Each folder
// holds tmp/ new/ cur/ and an empty maildirfolder file, which tells a
// delivery agent that maildirsize lives in the parent.
//
// Crash safety: a folder is built under tmp/ of the root (a dot-name
// readers skip) and renamed into place, so a crash never leaves a
// half-made folder; a deleted folder is first renamed under tmp/ and only
// then removed, so a crash never leaves a half-deleted folder visible.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"mailroom/internal/fsx"
)

// DefaultFolders are the folders CreateDefaultFolders makes (RFC 6154
// special-use names as Dovecot's and most clients' defaults spell them).
var DefaultFolders = []string{"Drafts", "Sent", "Trash", "Junk", "Archive"}

// FolderMarkerName is the empty file that marks a Maildir++ folder.
const FolderMarkerName = "maildirfolder"

var (
	// ErrFolderName is returned for a name that cannot be a folder.
	ErrFolderName = errors.New("maildir: invalid folder name")
	// ErrFolderExists is returned when a folder to create or rename to
	// already exists (IMAP ALREADYEXISTS).
	ErrFolderExists = errors.New("maildir: folder already exists")
)

// folderMaxDirName is NAME_MAX: the encoded directory name must fit.
const folderMaxDirName = 255

// FolderPath returns the directory of the folder name under root. "" and
// "INBOX" (in any case) are the root itself; "A/B" is root/.A.B with each
// level in modified UTF-7. The folder need not exist.
func FolderPath(root, name string) (string, error) {
	dir, err := folderDirName(name)
	if err != nil {
		return "", err
	}
	if dir == "" {
		return root, nil
	}
	return filepath.Join(root, dir), nil
}

// folderIsInbox reports whether name means the root.
func folderIsInbox(name string) bool { return name == "" || strings.EqualFold(name, "INBOX") }

// folderDirName maps a folder name to its directory name under the root
// (".A.B"), or "" for INBOX.
func folderDirName(name string) (string, error) {
	if folderIsInbox(name) {
		return "", nil
	}
	comps := strings.Split(name, "/")
	var b strings.Builder
	for i, c := range comps {
		if err := folderCheckComponent(c); err != nil {
			return "", fmt.Errorf("%w %q: %v", ErrFolderName, name, err)
		}
		if i == 0 && strings.EqualFold(c, "INBOX") {
			// Children of INBOX are spelled with INBOX in upper case,
			// as IMAP treats that name case-insensitively (RFC 3501 §5.1).
			c = "INBOX"
		}
		b.WriteByte('.')
		b.WriteString(EncodeMUTF7(c))
	}
	if b.Len() > folderMaxDirName {
		return "", fmt.Errorf("%w %q: too long", ErrFolderName, name)
	}
	return b.String(), nil
}

// folderCheckComponent enforces the rules on one level of a name: no
// empty level ("A//B"), no '.' (the on-disk separator, and ".." could
// escape the root), valid UTF-8, no control characters.
func folderCheckComponent(c string) error {
	switch {
	case c == "":
		return errors.New("empty level")
	case strings.Contains(c, "."):
		return errors.New("'.' in a level")
	case !utf8.ValidString(c):
		return errors.New("not UTF-8")
	}
	for _, r := range c {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

// folderNameFromDir is the inverse of folderDirName for a directory entry
// of the root: ok is false for anything that is not a folder we could have
// made (dot-dot names, empty levels, bad modified UTF-7).
func folderNameFromDir(dir string) (string, bool) {
	if len(dir) < 2 || dir[0] != '.' || dir[1] == '.' {
		return "", false
	}
	comps := strings.Split(dir[1:], ".")
	for i, c := range comps {
		d, err := DecodeMUTF7(c)
		if err != nil || folderCheckComponent(d) != nil {
			return "", false
		}
		comps[i] = d
	}
	return strings.Join(comps, "/"), true
}

// CreateFolder creates the folder name under root (which is created as a
// Maildir if missing). Parents are not created (see the package's folder
// notes). It fails with ErrFolderExists if the folder, or INBOX, exists.
func CreateFolder(root, name string) error {
	if folderIsInbox(name) {
		return fmt.Errorf("%w: INBOX", ErrFolderExists)
	}
	dir, err := folderDirName(name)
	if err != nil {
		return err
	}
	if err := Create(root); err != nil {
		return err
	}
	stage := filepath.Join(root, "tmp", "."+"folder."+UniqueBase(time.Now(), ""))
	if err := folderBuild(stage); err != nil {
		return errors.Join(err, os.RemoveAll(stage))
	}
	final := filepath.Join(root, dir)
	if err := folderRenameNoReplace(stage, final); err != nil {
		err = fmt.Errorf("maildir: create folder %q: %w", name, err)
		return errors.Join(err, os.RemoveAll(stage))
	}
	return fsx.SyncDir(root)
}

// folderBuild makes a complete, synced folder at dir.
func folderBuild(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("maildir: create folder: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, FolderMarkerName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("maildir: create folder: %w", err)
	}
	return fsx.SyncDir(dir)
}

// folderRenameNoReplace renames old to new, failing with ErrFolderExists
// if new exists. rename(2) alone would silently replace an empty directory.
func folderRenameNoReplace(oldPath, newPath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldPath, unix.AT_FDCWD, newPath, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY):
		return fmt.Errorf("%w: %s", ErrFolderExists, newPath)
	case errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS):
		// File system without RENAME_NOREPLACE: check, then rename. The
		// window is only against another creator of the same name.
		if _, err := os.Lstat(newPath); err == nil {
			return fmt.Errorf("%w: %s", ErrFolderExists, newPath)
		}
		if err := os.Rename(oldPath, newPath); err != nil {
			return fmt.Errorf("rename: %w", err)
		}
		return nil
	default:
		return &os.LinkError{Op: "rename", Old: oldPath, New: newPath, Err: err}
	}
}

// folderRename is one directory to move by RenameFolder.
type folderRename struct{ from, to string }

// RenameFolder renames oldName to newName, together with its children
// (.A.x follows .A when A is renamed). A parent that exists only through
// its children may be renamed. INBOX can be neither source nor target
// here: IMAP's RENAME INBOX moves messages, which is the caller's job.
// Subscriptions are left alone (RFC 3501 §6.3.5 leaves them to the client).
func RenameFolder(root, oldName, newName string) error {
	if folderIsInbox(oldName) || folderIsInbox(newName) {
		return fmt.Errorf("%w: INBOX cannot be renamed here", ErrFolderName)
	}
	oldDir, err := folderDirName(oldName)
	if err != nil {
		return err
	}
	newDir, err := folderDirName(newName)
	if err != nil {
		return err
	}
	if newDir == oldDir || strings.HasPrefix(newDir, oldDir+".") {
		return fmt.Errorf("%w: cannot rename %q into itself", ErrFolderName, oldName)
	}
	moves, err := folderPlanRename(root, oldDir, newDir)
	if err != nil {
		return fmt.Errorf("maildir: rename folder %q: %w", oldName, err)
	}
	for i, m := range moves {
		if err := folderRenameNoReplace(m.from, m.to); err != nil {
			err = fmt.Errorf("maildir: rename folder %q: %w", oldName, err)
			return errors.Join(err, folderUndoRenames(moves[:i]), fsx.SyncDir(root))
		}
	}
	return fsx.SyncDir(root)
}

// folderPlanRename lists the directories to move and checks that every
// target is free and short enough, so a rename rarely fails half-way.
func folderPlanRename(root, oldDir, newDir string) ([]folderRename, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNoFolder
		}
		return nil, err
	}
	var moves []folderRename
	for _, e := range ents {
		n := e.Name()
		if n != oldDir && !strings.HasPrefix(n, oldDir+".") {
			continue
		}
		to := newDir + n[len(oldDir):]
		if len(to) > folderMaxDirName {
			return nil, fmt.Errorf("%w: %q too long", ErrFolderName, to)
		}
		if _, err := os.Lstat(filepath.Join(root, to)); err == nil {
			return nil, fmt.Errorf("%w: %s", ErrFolderExists, to)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		moves = append(moves, folderRename{filepath.Join(root, n), filepath.Join(root, to)})
	}
	if len(moves) == 0 {
		return nil, ErrNoFolder
	}
	// ReadDir sorts by name, so the folder itself comes before its children.
	return moves, nil
}

// folderUndoRenames moves back what a failed RenameFolder already moved.
func folderUndoRenames(done []folderRename) error {
	var errs []error
	for i := len(done) - 1; i >= 0; i-- {
		if err := os.Rename(done[i].to, done[i].from); err != nil {
			errs = append(errs, fmt.Errorf("maildir: undo rename: %w", err))
		}
	}
	return errors.Join(errs...)
}

// DeleteFolder removes the folder name and every message in it. Its
// children stay (they become children of a \Noselect parent). The
// directory is first renamed under the root's tmp/, so no half-deleted
// folder is ever visible, then removed; removal never follows symlinks.
func DeleteFolder(root, name string) error {
	if folderIsInbox(name) {
		return fmt.Errorf("%w: INBOX cannot be deleted", ErrFolderName)
	}
	dir, err := folderDirName(name)
	if err != nil {
		return err
	}
	path := filepath.Join(root, dir)
	if _, err := os.Lstat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %q", ErrNoFolder, name)
		}
		return fmt.Errorf("maildir: delete folder %q: %w", name, err)
	}
	if err := Create(root); err != nil {
		return err
	}
	trash := filepath.Join(root, "tmp", ".deleted."+UniqueBase(time.Now(), ""))
	if err := os.Rename(path, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %q", ErrNoFolder, name)
		}
		return fmt.Errorf("maildir: delete folder %q: %w", name, err)
	}
	if err := fsx.SyncDir(root); err != nil {
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("maildir: delete folder %q: %w", name, err)
	}
	return nil
}

// ListFolders returns the names of the folders under root, decoded, with
// "/" between levels, sorted; INBOX is not included. Only real directories
// count (a symlink is not followed: it could lead out of the user's
// Maildir), and entries that are not names we could have made (bad
// modified UTF-7, empty levels, "..x") are left out. A missing root has
// no folders.
func ListFolders(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("maildir: list folders: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		// A ".INBOX" directory would shadow the real INBOX; skip it.
		if n, ok := folderNameFromDir(e.Name()); ok && !folderIsInbox(n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// CreateDefaultFolders creates root and the DefaultFolders that are
// missing, and subscribes the ones it created (clients that show only
// subscribed folders would hide them otherwise). A folder that exists is
// left as it is, subscription included.
func CreateDefaultFolders(root string) error {
	if err := Create(root); err != nil {
		return err
	}
	var created []string
	for _, name := range DefaultFolders {
		err := CreateFolder(root, name)
		if errors.Is(err, ErrFolderExists) {
			continue
		}
		if err != nil {
			return err
		}
		created = append(created, name)
	}
	if len(created) == 0 {
		return nil
	}
	return subsUpdate(root, created, true)
}
