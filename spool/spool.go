package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"

	"mailroom/internal/fsx"
)

// Names and modes of the layout (see the package comment).
const (
	dirTmp      = "tmp"
	dirQueue    = "queue"
	dirState    = "state"
	dirTrash    = "trash"
	dirCorrupt  = "corrupt"
	dirMaildrop = "maildrop"

	fileLock = "consumer.lock"

	// The files of an old-layout message directory, queue/<id>/.
	fileEnvelope = "envelope"
	fileData     = "data"
	fileState    = "state"

	modeRoot     = 0o711
	modeDir      = os.ModeSetgid | 0o770
	modeMaildrop = os.ModeSticky | 0o733
	modeFile     = 0o640
)

// ErrNotFound is wrapped when a queue id names no message in queue/.
var ErrNotFound = errors.New("spool: no such message")

// ErrCorrupt is wrapped when a queued message is inconsistent (a head that
// does not parse, state for another number of recipients, an old-layout
// data file whose size differs from its envelope's).
var ErrCorrupt = errors.New("spool: corrupt message")

// crashPoint is called at each step of a commit, a state change and a
// removal. Tests set it, in a child process, to die at that step; in
// production it does nothing.
var crashPoint = func(step string) {}

// Spool is an opened spool directory. Its methods are safe for concurrent
// use by any number of writers; only one consumer (LockConsumer) may call
// SetState, Remove, Pickup and SweepTmp.
type Spool struct {
	dir string
	// queueSync group-commits the fsyncs of queue/ after commits: the
	// writers of one process (smtpd's sessions) share them.
	queueSync *fsx.DirSyncer
}

// Setup creates the layout under dir with the modes of the package comment,
// whatever the umask, and sets the modes of directories that exist. Run it
// as the spool's owner (the queue daemon's user) before anything else
// opens the spool; running it again changes nothing.
func Setup(dir string) error {
	if err := ensureDir(dir, modeRoot); err != nil {
		return err
	}
	dirs := []struct {
		name string
		mode os.FileMode
	}{{dirTmp, modeDir}, {dirQueue, modeDir}, {dirState, modeDir}, {dirTrash, modeDir}, {dirCorrupt, modeDir}, {dirMaildrop, modeMaildrop}}
	for _, d := range dirs {
		if err := ensureDir(filepath.Join(dir, d.name), d.mode); err != nil {
			return err
		}
	}
	return fsx.SyncDir(dir)
}

// SetOwner gives the spool directory, its layout directories and the
// consumer lock (not the messages) to uid and gid: run by root after
// Setup, before the queue daemon drops to uid, so that Setup's work
// belongs to the spool's owner (gid is the group smtpd's user is in).
// Symbolic links are not followed.
func SetOwner(dir string, uid, gid int) error {
	paths := []string{dir}
	for _, d := range []string{dirTmp, dirQueue, dirState, dirTrash, dirCorrupt, dirMaildrop, fileLock} {
		paths = append(paths, filepath.Join(dir, d))
	}
	for _, p := range paths {
		err := os.Lchown(p, uid, gid)
		if errors.Is(err, fs.ErrNotExist) && filepath.Base(p) == fileLock {
			continue
		}
		if err != nil {
			return fmt.Errorf("spool setup: %w", err)
		}
	}
	// chown clears the setgid bit of a directory on some systems: restore.
	return Setup(dir)
}

// ensureDir makes dir with mode, or gives an existing one that mode.
func ensureDir(dir string, mode os.FileMode) error {
	err := os.Mkdir(dir, mode)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("spool setup: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("spool setup: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("spool setup: %s is not a directory", dir)
	}
	// Chmod, not the Mkdir mode, because the umask may have removed bits
	// (the maildrop's write bits for others are the point of it).
	if fi.Mode()&(fs.ModePerm|os.ModeSetgid|os.ModeSticky) != mode&(fs.ModePerm|os.ModeSetgid|os.ModeSticky) {
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("spool setup: %w", err)
		}
	}
	return nil
}

// Open returns the spool at dir, which must exist (see Setup). It creates
// nothing, so that sendmail, running as any user, can use it.
func Open(dir string) (*Spool, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("spool: %s is not a directory", dir)
	}
	return &Spool{dir: dir, queueSync: fsx.NewDirSyncer(filepath.Join(dir, dirQueue))}, nil
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

func (s *Spool) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// List returns the ids of the acknowledged messages, oldest first. Entries
// whose names are not ids are ignored.
func (s *Spool) List() ([]ID, error) {
	return listIDs(s.path(dirQueue))
}

// listIDs reads the names of dir that are well-formed ids, sorted.
func listIDs(dir string) ([]ID, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	ids := make([]ID, 0, len(ents))
	for _, e := range ents {
		if id, err := ParseID(e.Name()); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// SetState records the state of every recipient of message id, replacing
// the previous states at once (write, fsync, rename, fsync directory).
// Record a delivery only after it is durable; record a permanent failure
// only after its bounce is committed to the spool.
func (s *Spool) SetState(id ID, states []RcptState) error {
	if _, err := ParseID(string(id)); err != nil {
		return err
	}
	env, e, err := s.readEnvelope(id)
	if err != nil {
		return err
	}
	if len(states) != len(env.Recipients) {
		return fmt.Errorf("spool %s: %d states for %d recipients", id, len(states), len(env.Recipients))
	}
	data, err := marshalStates(states)
	if err != nil {
		return fmt.Errorf("spool %s: %w", id, err)
	}
	crashPoint("state-before")
	if err := fsx.WriteFileAtomic(s.statePath(id, e), data, modeFile); err != nil {
		return fmt.Errorf("spool %s: %w", id, err)
	}
	crashPoint("state-after")
	return nil
}

// Remove deletes message id. It first renames queue/<id> to trash/<id>,
// the one step that takes the message out of sight, without an fsync of
// queue/; then it unlinks state/<id> and the trashed file. Call it once
// every recipient is final. If SetState recorded that, a crash that undoes
// the rename brings the message back finished and it is removed again; if
// not, it comes back with its old states and is delivered again (at least
// once).
func (s *Spool) Remove(id ID) error {
	if _, err := ParseID(string(id)); err != nil {
		return err
	}
	from, to := s.path(dirQueue, string(id)), s.path(dirTrash, string(id))
	err := os.Rename(from, to)
	if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) ||
		errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTDIR) {
		// A removal of this id was interrupted before, and its leftover
		// (an old-layout directory, or a file in the way of one) cannot
		// be replaced: finish it first.
		if err := os.RemoveAll(to); err != nil {
			return fmt.Errorf("spool %s: %w", id, err)
		}
		err = os.Rename(from, to)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("spool %s: remove: %w", id, err)
	}
	crashPoint("remove-renamed")
	// No fsync of queue/: the rename is visible to every process at once
	// (kill -9 cannot undo it), and only a power loss in the next few
	// seconds can, bringing the message back with its last recorded
	// states. Postfix does not fsync its removals either; the fsync would
	// cost a disk flush per message for a duplicate after a power loss.
	// The state goes after the rename, never before: a message must not
	// be visible without the states recorded for it.
	if err := os.Remove(s.path(dirState, string(id))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool %s: %w", id, err)
	}
	crashPoint("remove-unlinking")
	// Nothing reads trash/, so no fsync: leftovers are swept. RemoveAll
	// also takes an old-layout directory with its files.
	if err := os.RemoveAll(to); err != nil {
		return fmt.Errorf("spool %s: %w", id, err)
	}
	return nil
}

// RemoveMessage removes m, read by this consumer, once every recipient is
// final. A message for which no state file was ever written (the usual
// case: one pass delivered everything, see deliver's record) has nothing
// beside its queue file, so one unlink(2) of queue/<id> takes it out of
// sight in one step and leaves nothing behind: no rename into trash/, no
// unlink of a state file that is not there. Only the consumer writes
// state files, so none can have appeared since m was read. Anything else
// (a state file, an old-layout directory) goes through Remove.
func (s *Spool) RemoveMessage(m *Message) error {
	if m.hasState || m.entry.legacy {
		return s.Remove(m.ID)
	}
	if _, err := ParseID(string(m.ID)); err != nil {
		return err
	}
	err := unix.Unlink(s.path(dirQueue, string(m.ID)))
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("spool %s: %w", m.ID, ErrNotFound)
	case errors.Is(err, unix.EISDIR), errors.Is(err, unix.EPERM):
		// A directory where a file was read: let Remove sort it out.
		return s.Remove(m.ID)
	case err != nil:
		return fmt.Errorf("spool %s: remove: %w", m.ID, err)
	}
	crashPoint("remove-unlinked")
	return nil
}

// LockConsumer takes the consumer lock (flock on <spool_dir>/consumer.lock)
// without waiting: only one queue daemon may pick up, change states and
// remove at a time. The lock goes with the process, so a crashed consumer
// never leaves it held. Call release to drop it.
func (s *Spool) LockConsumer() (release func() error, err error) {
	f, err := os.OpenFile(s.path(fileLock), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, modeFile)
	if err != nil {
		return nil, fmt.Errorf("spool: consumer lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: consumer lock %s: another consumer runs: %w", f.Name(), err)
	}
	return f.Close, nil
}
