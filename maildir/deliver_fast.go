package maildir

// The cheap paths of delivery: checking a Maildir that already exists
// with one openat2 per directory, creating the tmp file without the Go
// runtime's poller set-up, and sharing new/ fsyncs between concurrent
// deliveries. Each falls back to, or is equivalent to, the plain path in
// deliver.go; measured in docs/benchmarks.md (SMTP).

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"mailroom/internal/fsx"
)

// deliverPrepareFast is deliverPrepare for the usual case: a Maildir
// (and folder) whose tmp/, new/ and cur/ exist under confine. The kernel
// resolves each of them beneath confine (openat2 with RESOLVE_BENEATH,
// which fails rather than leave confine by a symlink or "..", even for a
// moment), one call per directory instead of a stat per path component.
// Anything else reports !ok, and deliverPrepare decides: a directory to
// create, an absolute symlink that may still lead inside (RESOLVE_BENEATH
// refuses those outright), a kernel without openat2 (Linux < 5.6).
// Without confinement there is nothing to save, and it reports !ok too.
func deliverPrepareFast(t Target, confine string) (string, bool) {
	if confine == "" {
		return "", false
	}
	root, err := filepath.Abs(t.Root)
	if err != nil {
		return "", false
	}
	dir, err := FolderPath(root, t.Folder)
	if err != nil {
		return "", false
	}
	cfd, err := unix.Open(confine, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(cfd)
	paths := []string{root}
	if dir != root {
		paths = append(paths, dir)
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	for _, p := range paths {
		rel, err := filepath.Rel(confine, p)
		if err != nil || !filepath.IsLocal(rel) {
			return "", false
		}
		for _, sub := range []string{"tmp", "new", "cur"} {
			fd, err := unix.Openat2(cfd, filepath.Join(rel, sub), &how)
			if err != nil {
				return "", false
			}
			unix.Close(fd)
		}
	}
	return dir, true
}

// deliverCreate creates the tmp file (O_EXCL, mode 0600). It opens with
// open(2) and wraps the descriptor, because os.OpenFile spends five more
// system calls per file trying to register a regular file with the
// runtime's poller, which never accepts one.
func deliverCreate(path string) (*os.File, error) {
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// newDirSyncers shares one fsx.DirSyncer per new/ directory among the
// deliveries in flight in this process: the queue daemon's workers
// delivering into one Maildir then share fsyncs of its new/ instead of
// queueing one each, and each still returns only after an fsync that
// started after its own link (fsx.DirSyncer's guarantee). An entry lives
// while some delivery uses it, so the map stays as small as the number of
// Maildirs being delivered to at once.
var newDirSyncers = dirSyncers{m: map[string]*sharedSyncer{}}

type dirSyncers struct {
	mu sync.Mutex
	m  map[string]*sharedSyncer
}

type sharedSyncer struct {
	syncer *fsx.DirSyncer
	users  int
}

// sync returns once an fsync of dir that started after the call is done.
func (r *dirSyncers) sync(dir string) error {
	r.mu.Lock()
	ss := r.m[dir]
	if ss == nil {
		ss = &sharedSyncer{syncer: fsx.NewDirSyncer(dir)}
		r.m[dir] = ss
	}
	ss.users++
	r.mu.Unlock()
	err := ss.syncer.Sync()
	r.mu.Lock()
	ss.users--
	if ss.users == 0 {
		delete(r.m, dir)
	}
	r.mu.Unlock()
	return err // fsx.SyncDir's error names the directory
}
