package maildir

// Delivery, maildir(5) with one message fanned out to several Maildirs:
//
//  1. Every target is checked (confinement, folder present) and its root
//     created if missing.
//  2. The message is read once, streamed into tmp/<unique> of the first
//     usable target while S and W are counted, and fsync'd.
//  3. For each target: quota check, link(2) into new/<unique>,S=..,W=..
//     (a copy when the target is on another file system), fsync of new/
//     (group-committed: concurrent deliveries into one new/ share an fsync
//     that started after each of their links), then "<size> 1" appended
//     to maildirsize. The last target gets the
//     tmp file itself by rename(2) with RENAME_NOREPLACE, which, like
//     link(2), never replaces an existing name.
//  4. The tmp file, if it was not moved, is unlinked.
//
// A delivery is done only once new/ has been fsync'd. A target that fails
// at any step has nothing left in its new/. The mtime of the delivered file
// is its IMAP INTERNALDATE: it is set by the write and never touched again.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/internal/fsx"
)

var (
	// ErrQuota: the message would take the target over its quota.
	ErrQuota = errors.New("maildir: quota exceeded")
	// ErrTooBig: the message is larger than Deliverer.MaxSize.
	ErrTooBig = errors.New("maildir: message too big")
	// ErrNoFolder: the folder does not exist (or its name is invalid).
	ErrNoFolder = errors.New("maildir: no such folder")
	// ErrUnsafePath: the Maildir resolves outside Deliverer.Confine.
	ErrUnsafePath = errors.New("maildir: path outside the confinement directory")
)

// Quota is a Maildir++ quota; 0 on an axis means no limit on it.
type Quota struct{ Bytes, Messages int64 }

// Target is one Maildir to deliver into.
type Target struct {
	Root   string // the user's Maildir++ root (its INBOX); maildirsize lives here
	Folder string // "" = INBOX; else a folder name, UTF-8, "/" between levels
	Quota  Quota  // enforced at delivery; the configured limit is authoritative
}

// Deliverer writes messages into Maildirs. Its fields are read-only once
// deliveries start; it is safe for concurrent use.
type Deliverer struct {
	Host    string           // host name for unique names; "" = os.Hostname
	Confine string           // if set, refuse any Root whose resolved path is outside it
	MaxSize int64            // if > 0, a larger message fails with ErrTooBig
	Now     func() time.Time // clock for unique names; nil = time.Now
}

// Result is the outcome of one target.
type Result struct {
	Target Target
	Path   string // the delivered file in new/, when Err is nil
	Err    error
}

// deliverCopyBuffer is the streaming buffer: messages can be 100 MB and
// are never held in memory.
const deliverCopyBuffer = 128 << 10

// deliverBuffers recycles streaming buffers between deliveries.
var deliverBuffers = sync.Pool{New: func() any { return new([deliverCopyBuffer]byte) }}

// deliverHostname caches os.Hostname for Deliverers without Host.
var deliverHostname = sync.OnceValues(os.Hostname)

// Create makes path a Maildir: path/tmp, path/new and path/cur, mode 0700,
// with any missing parents. It is idempotent. Every directory it creates is
// made durable (its parent fsync'd), so a message delivered into it right
// after survives a crash.
func Create(path string) error {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := deliverMkdirAll(filepath.Join(path, sub)); err != nil {
			return fmt.Errorf("maildir: create %s: %w", path, err)
		}
	}
	return nil
}

// deliverMkdirAll is os.MkdirAll(dir, 0700) that fsyncs the parent of
// each directory it creates. Recursion is bounded by the path's depth.
func deliverMkdirAll(dir string) error {
	st, err := os.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := deliverMkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return fsx.SyncDir(parent)
}

// Deliver reads msg once and delivers it to every target. The returned
// error is for failures that hit every target (reading msg, writing the
// tmp file, too big); per-target failures (ErrQuota, ErrNoFolder,
// ErrUnsafePath, I/O on that target) are in the matching Result.Err.
// Results are in the order of targets.
func (d *Deliverer) Deliver(msg io.Reader, targets []Target) ([]Result, error) {
	results := make([]Result, len(targets))
	dirs := make([]string, len(targets))
	var usable []int
	confineAbs, err := d.confineAbs()
	if err != nil {
		return results, err
	}
	confine, resolved := "", false
	for i, t := range targets {
		results[i].Target = t
		if dir, ok := deliverPrepareFast(t, confineAbs); ok {
			dirs[i] = dir
			usable = append(usable, i)
			continue
		}
		if !resolved {
			// Only the slow path needs the confinement resolved.
			if confine, err = d.confineRoot(); err != nil {
				return results, err
			}
			resolved = true
		}
		dirs[i], results[i].Err = deliverPrepare(t, confine)
		if results[i].Err == nil {
			usable = append(usable, i)
		}
	}
	if len(usable) == 0 {
		return results, nil
	}
	host, err := d.host()
	if err != nil {
		return results, err
	}
	base := UniqueBase(d.now(), host)
	src := filepath.Join(dirs[usable[0]], "tmp", base)
	size, err := d.writeTmp(src, msg)
	if err != nil {
		for _, i := range usable {
			results[i].Err = err
		}
		return results, err
	}
	name := WithSizes(base, size.Size, size.VSize)
	moved := false
	for n, i := range usable {
		// The last target takes the tmp file itself: one rename instead of
		// a link and an unlink, one journal operation less per message.
		last := n == len(usable)-1
		results[i].Path, moved, results[i].Err = deliverOne(src, dirs[i], base, name, targets[i], size.Size, last)
	}
	if !moved {
		// The tmp file has served its purpose whatever happened to each
		// target. Failing to unlink it does not undo any delivery; a
		// leftover is swept by readers after 36 hours (maildir(5)).
		os.Remove(src)
	}
	return results, nil
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliverer) host() (string, error) {
	if d.Host != "" {
		return d.Host, nil
	}
	h, err := deliverHostname()
	if err != nil {
		return "", fmt.Errorf("maildir: hostname: %w", err)
	}
	return h, nil
}

// confineAbs is Confine made absolute, lexically ("" if unset).
func (d *Deliverer) confineAbs() (string, error) {
	if d.Confine == "" {
		return "", nil
	}
	abs, err := filepath.Abs(d.Confine)
	if err != nil {
		return "", fmt.Errorf("maildir: confine: %w", err)
	}
	return abs, nil
}

// confineRoot resolves Confine once per delivery ("" if unset).
func (d *Deliverer) confineRoot() (string, error) {
	if d.Confine == "" {
		return "", nil
	}
	abs, err := filepath.Abs(d.Confine)
	if err != nil {
		return "", fmt.Errorf("maildir: confine: %w", err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("maildir: confine: %w", err)
	}
	return resolved, nil
}

// writeTmp streams msg into a new file at path, counting its sizes, and
// fsyncs it. On failure the file is removed.
func (d *Deliverer) writeTmp(path string, msg io.Reader) (SizeCounter, error) {
	var cnt SizeCounter
	f, err := deliverCreate(path)
	if err != nil {
		return cnt, fmt.Errorf("maildir: deliver: %w", err)
	}
	err = d.copyMessage(f, &cnt, msg)
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("maildir: deliver: fsync: %w", err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("maildir: deliver: %w", cerr)
	}
	if err != nil {
		if rerr := os.Remove(path); rerr != nil {
			err = errors.Join(err, fmt.Errorf("maildir: deliver: cleanup: %w", rerr))
		}
		return cnt, err
	}
	return cnt, nil
}

// copyMessage copies msg into f and cnt, enforcing MaxSize.
func (d *Deliverer) copyMessage(f *os.File, cnt *SizeCounter, msg io.Reader) error {
	src := msg
	if d.MaxSize > 0 {
		src = io.LimitReader(msg, d.MaxSize+1)
	}
	bp := deliverBuffers.Get().(*[deliverCopyBuffer]byte)
	defer deliverBuffers.Put(bp)
	buf := bp[:]
	// The first chunk is gathered to at least deliverFirstChunk bytes:
	// the caller's reader is often a MultiReader (trace fields, then the
	// body) whose first Read returns only the short prefix, and a write of
	// its own would be a system call for a few dozen bytes. After that
	// every chunk is written as soon as it is read, so a message arriving
	// slowly on a pipe reaches tmp/ as it comes.
	least := deliverFirstChunk
	for {
		n, rerr := deliverFill(src, buf, least)
		least = 1
		if n > 0 {
			cnt.Write(buf[:n])
			if d.MaxSize > 0 && cnt.Size > d.MaxSize {
				return fmt.Errorf("%w: more than %d bytes", ErrTooBig, d.MaxSize)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return fmt.Errorf("maildir: deliver: write: %w", err)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("maildir: deliver: read message: %w", rerr)
		}
	}
}

// deliverFirstChunk is how much copyMessage gathers before its first write.
const deliverFirstChunk = 4 << 10

// deliverFill reads into buf until it holds at least least bytes (or is
// full), or r reports an error (io.EOF included), returned as r gave it.
func deliverFill(r io.Reader, buf []byte, least int) (int, error) {
	n := 0
	for n < least && n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			// A reader that returns nothing and no error: hand back what
			// there is rather than spin (io.Reader allows it, rarely).
			return n, nil
		}
	}
	return n, nil
}

// deliverPrepare checks a target and returns the Maildir to write into.
func deliverPrepare(t Target, confine string) (string, error) {
	root, err := filepath.Abs(t.Root)
	if err != nil {
		return "", fmt.Errorf("maildir: deliver: %w", err)
	}
	if confine != "" {
		// Before creating anything: MkdirAll must not build a Maildir
		// through a symlink that leads out.
		resolved, err := deliverResolveExisting(root)
		if err != nil {
			return "", err
		}
		if !fsx.Within(resolved, confine) {
			return "", fmt.Errorf("%w: %s resolves to %s", ErrUnsafePath, t.Root, resolved)
		}
	}
	if err := Create(root); err != nil {
		return "", err
	}
	dir, err := FolderPath(root, t.Folder)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoFolder, err)
	}
	if dir != root {
		if err := deliverFolderExists(dir); err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrNoFolder, t.Folder, err)
		}
	}
	if confine != "" {
		if err := deliverCheckConfined(root, dir, confine); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// deliverFolderExists checks that dir is a Maildir (tmp, new and cur).
func deliverFolderExists(dir string) error {
	for _, sub := range []string{"tmp", "new", "cur"} {
		st, err := os.Stat(filepath.Join(dir, sub))
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("%s/%s is not a directory", dir, sub)
		}
	}
	return nil
}

// deliverCheckConfined refuses a Maildir whose root, folder, or any of
// their tmp/new/cur resolves outside confine: a symlink planted inside the
// user's Maildir must not lead deliveries elsewhere.
func deliverCheckConfined(root, dir, confine string) error {
	paths := []string{root}
	if dir != root {
		paths = append(paths, dir)
	}
	for _, p := range paths {
		for _, sub := range []string{"", "tmp", "new", "cur"} {
			path := filepath.Join(p, sub)
			resolved, err := filepath.EvalSymlinks(path)
			if err != nil {
				return deliverResolveError(path, err)
			}
			if !fsx.Within(resolved, confine) {
				return fmt.Errorf("%w: %s resolves to %s", ErrUnsafePath, path, resolved)
			}
		}
	}
	return nil
}

// deliverResolveExisting is fsx.ResolveExisting with the failure
// classified for delivery.
func deliverResolveExisting(path string) (string, error) {
	resolved, err := fsx.ResolveExisting(path)
	switch {
	case err == nil:
		return resolved, nil
	case errors.Is(err, fsx.ErrUnresolvable):
		return "", fmt.Errorf("%w: cannot resolve %s", ErrUnsafePath, path)
	default:
		return "", deliverResolveError(path, err)
	}
}

// deliverResolveError classifies a failure to resolve path. A symlink loop
// is planted, so it is unsafe (permanent); anything else (EACCES, EIO, a file
// where a directory should be) is a fault an admin or a retry can mend, and
// must not bounce the message.
func deliverResolveError(path string, err error) error {
	// filepath.EvalSymlinks counts links itself and reports a loop as a
	// plain "EvalSymlinks: too many links" error, not ELOOP.
	if errors.Is(err, syscall.ELOOP) || strings.Contains(err.Error(), "too many links") {
		return fmt.Errorf("%w: %s: %v", ErrUnsafePath, path, err)
	}
	return fmt.Errorf("maildir: deliver: resolve %s: %w", path, err)
}

// deliverOne puts the message (the fsync'd file src) into the Maildir dir
// of target t under new/name and returns the path. With move set, src
// itself may be renamed into place; moved reports whether it was.
func deliverOne(src, dir, base, name string, t Target, size int64, move bool) (path string, moved bool, err error) {
	root, err := filepath.Abs(t.Root)
	if err != nil {
		return "", false, fmt.Errorf("maildir: deliver: %w", err)
	}
	_, statErr := os.Stat(filepath.Join(root, QuotaFileName))
	tracked := !t.Quota.Unlimited() || statErr == nil
	if !t.Quota.Unlimited() {
		if err := quotaCheck(root, t.Quota, size); err != nil {
			return "", false, err
		}
	}
	newDir := filepath.Join(dir, "new")
	dst := filepath.Join(newDir, name)
	if move {
		moved, err = deliverMove(src, dst)
		if err != nil {
			return "", false, err
		}
	}
	if !moved {
		if err := deliverLink(src, dir, base, dst); err != nil {
			return "", false, err
		}
	}
	// Shared with concurrent deliveries into the same new/: returns after
	// an fsync of new/ that started after the rename or link above.
	if err := newDirSyncers.sync(newDir); err != nil {
		return "", moved, deliverUndo(dst, newDir, fmt.Errorf("maildir: deliver: %w", err))
	}
	if tracked {
		if err := deliverTrackQuota(root, size); err != nil {
			return "", moved, deliverUndo(dst, newDir, err)
		}
	}
	return dst, moved, nil
}

// deliverMove renames src to dst without ever replacing an existing dst:
// maildir(5) asks for link() precisely so that a name clash fails instead
// of overwriting a message, and RENAME_NOREPLACE keeps that promise at the
// cost of one operation. Where the file system lacks it (EINVAL, ENOSYS:
// NFS, older kernels) or dst is on another file system (EXDEV), moved is
// false and the caller falls back to link or copy.
func deliverMove(src, dst string) (moved bool, err error) {
	err = unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EXDEV):
		return false, nil
	default:
		return false, fmt.Errorf("maildir: deliver: %w", &os.LinkError{Op: "rename", Old: src, New: dst, Err: err})
	}
}

// deliverTrackQuota appends the delivery to maildirsize. If that fails the
// file is removed instead, so the next check counts the Maildir (which
// includes this message); only if both fail is the delivery undone, since
// a quota file that silently misses messages would never stop a user.
func deliverTrackQuota(root string, size int64) error {
	err := AddQuotaUsage(root, size, 1)
	if err == nil {
		return nil
	}
	rerr := os.Remove(filepath.Join(root, QuotaFileName))
	if rerr == nil || errors.Is(rerr, fs.ErrNotExist) {
		return nil
	}
	return errors.Join(err, fmt.Errorf("maildir: quota: %w", rerr))
}

// deliverUndo removes a delivered file after a later step failed, so
// nothing is left in new/ for a failed target.
func deliverUndo(dst, newDir string, cause error) error {
	if err := os.Remove(dst); err != nil {
		return errors.Join(cause, fmt.Errorf("maildir: deliver: undo: %w", err))
	}
	if err := fsx.SyncDir(newDir); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// deliverLink hard-links src to dst. Across file systems (EXDEV), or where
// the link count is exhausted (EMLINK), it copies src into dir/tmp first.
func deliverLink(src, dir, base, dst string) error {
	err := os.Link(src, dst)
	if err == nil {
		return nil
	}
	if !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.EMLINK) {
		return fmt.Errorf("maildir: deliver: %w", err)
	}
	tmp := filepath.Join(dir, "tmp", base)
	if err := deliverCopyFile(src, tmp); err != nil {
		return errors.Join(err, deliverRemoveIfExists(tmp))
	}
	lerr := os.Link(tmp, dst)
	if lerr != nil {
		lerr = fmt.Errorf("maildir: deliver: %w", lerr)
	}
	return errors.Join(lerr, deliverRemoveIfExists(tmp))
}

// deliverRemoveIfExists unlinks path, ignoring only "does not exist".
func deliverRemoveIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("maildir: deliver: cleanup: %w", err)
	}
	return nil
}

// deliverCopyFile copies src to a new file dst and fsyncs it.
func deliverCopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("maildir: deliver: copy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("maildir: deliver: copy: %w", err)
	}
	_, err = io.CopyBuffer(out, in, make([]byte, deliverCopyBuffer))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("maildir: deliver: copy: %w", err)
	}
	return nil
}
