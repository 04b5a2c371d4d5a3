package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxHead bounds what is read of a queue file's head, an old-layout
// envelope file or a state file.
const maxHead = 64 << 20

// firstHeadRead is how much of a queue file is read at first to find the
// end of its head: a usual envelope is a few hundred bytes.
const firstHeadRead = 4 << 10

// Message is one acknowledged message as read from queue/.
type Message struct {
	ID       ID
	Envelope Envelope
	States   []RcptState // one per Envelope.Recipients, in order
	entry    entry
	// hasState: a state file was read. Only the one consumer writes state
	// files, so for the consumer that read it this stays true until it
	// writes one (see RemoveMessage).
	hasState bool
}

// entry is where a queued message's content is: after the head of the
// queue file, or in the data file of an old-layout directory.
type entry struct {
	path    string // queue/<id>
	legacy  bool   // an old-layout directory (envelope, data, state)
	dataOff int64  // new layout: the length of the head
}

// dataPath is the file that holds the content.
func (e entry) dataPath() string {
	if e.legacy {
		return filepath.Join(e.path, fileData)
	}
	return e.path
}

// Finished reports whether every recipient is delivered or failed, so the
// message may be removed.
func (m *Message) Finished() bool {
	for _, st := range m.States {
		if !st.Status.Final() {
			return false
		}
	}
	return true
}

// Data is a queued message's content opened for reading. Read, ReadAt and
// Seek see only the content, with offsets counted from its first byte (the
// envelope before it in the queue file is out of reach), and Size is
// Envelope.Size. Close it when done.
type Data struct {
	f  io.Closer
	sr *io.SectionReader
}

// Read reads the content sequentially.
func (d *Data) Read(p []byte) (int, error) { return d.sr.Read(p) }

// ReadAt reads the content at offset off, as io.ReaderAt.
func (d *Data) ReadAt(p []byte, off int64) (int, error) { return d.sr.ReadAt(p, off) }

// Seek moves the offset of Read, as io.Seeker.
func (d *Data) Seek(offset int64, whence int) (int64, error) { return d.sr.Seek(offset, whence) }

// Size returns the number of bytes of content.
func (d *Data) Size() int64 { return d.sr.Size() }

// Close closes the file.
func (d *Data) Close() error { return d.f.Close() }

// OpenData opens the message content for reading.
func (m *Message) OpenData() (*Data, error) {
	fd, err := openFd(m.entry.dataPath(), unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", m.ID, err)
	}
	return m.data(&rawFile{fd: fd, path: m.entry.dataPath()}), nil
}

// data is the content of m in the opened data file f.
func (m *Message) data(f *rawFile) *Data {
	off := m.entry.dataOff
	if m.entry.legacy {
		off = 0
	}
	return &Data{f: f, sr: io.NewSectionReader(f, off, m.Envelope.Size)}
}

// Message reads the message id: its envelope and its recipients' states.
// The content's size is the queue file's length less its head (in the old
// layout: checked against the envelope's size line).
func (s *Spool) Message(id ID) (*Message, error) {
	m, f, err := s.message(id)
	if f != nil {
		f.Close()
	}
	return m, err
}

// OpenMessage is Message and OpenData in one: the queue file is opened and
// read once (an old-layout entry's data file is opened separately). The
// caller closes the Data.
func (s *Spool) OpenMessage(id ID) (*Message, *Data, error) {
	m, f, err := s.message(id)
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, nil, err
	}
	if m.entry.legacy {
		d, err := m.OpenData()
		if err != nil {
			return nil, nil, err
		}
		return m, d, nil
	}
	return m, m.data(f), nil
}

// message reads message id and returns it with its queue file still open
// (nil for an old-layout entry), also on some errors; the caller closes it.
func (s *Spool) message(id ID) (*Message, *rawFile, error) {
	if _, err := ParseID(string(id)); err != nil {
		return nil, nil, err
	}
	env, e, f, err := s.readEntry(id)
	if err != nil {
		return nil, f, err
	}
	m, err := s.readStates(id, env, e)
	return m, f, err
}

// readStates completes a message read by readEntry with its states.
func (s *Spool) readStates(id ID, env Envelope, e entry) (*Message, error) {
	m := &Message{ID: id, Envelope: env, entry: e}
	if e.legacy {
		fi, err := os.Stat(e.dataPath())
		if err != nil {
			return nil, fmt.Errorf("spool %s: %w", id, err)
		}
		if fi.Size() != env.Size {
			return nil, fmt.Errorf("spool %s: %w: data has %d bytes, envelope says %d", id, ErrCorrupt, fi.Size(), env.Size)
		}
	}
	data, err := readSmallFile(s.statePath(id, e))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m.States = pendingStates(len(env.Recipients))
	case err != nil:
		return nil, fmt.Errorf("spool %s: %w", id, err)
	default:
		if m.States, err = parseStates(data, len(env.Recipients)); err != nil {
			return nil, fmt.Errorf("spool %s: %w: %w", id, ErrCorrupt, err)
		}
		m.hasState = true
	}
	return m, nil
}

// statePath is where the states of a message are: state/<id>, or the
// state file inside an old-layout directory.
func (s *Spool) statePath(id ID, e entry) string {
	if e.legacy {
		return filepath.Join(e.path, fileState)
	}
	return s.path(dirState, string(id))
}

// readEntry reads the envelope of queue/<id>, of either layout. For the
// new one, Size is the file's length less the head, and the queue file is
// returned open (nil for an old-layout directory); the caller closes it,
// also when an error comes with it.
func (s *Spool) readEntry(id ID) (Envelope, entry, *rawFile, error) {
	e := entry{path: s.path(dirQueue, string(id))}
	// O_NONBLOCK: whatever sits in queue/, opening it has no effect (a
	// FIFO would otherwise block); reads of regular files ignore the flag.
	fd, err := openFd(e.path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Envelope{}, e, nil, fmt.Errorf("spool %s: %w", id, ErrNotFound)
	}
	if errors.Is(err, unix.ELOOP) {
		return Envelope{}, e, nil, fmt.Errorf("spool %s: %w: a symbolic link", id, ErrCorrupt)
	}
	if err != nil {
		return Envelope{}, e, nil, fmt.Errorf("spool %s: %w", id, err)
	}
	f := &rawFile{fd: fd, path: e.path}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Envelope{}, e, f, fmt.Errorf("spool %s: %w", id, &fs.PathError{Op: "fstat", Path: e.path, Err: err})
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		f.Close()
		e.legacy = true
		env, err := readLegacyEnvelope(e.path)
		if err != nil {
			return Envelope{}, e, nil, fmt.Errorf("spool %s: %w", id, err)
		}
		return env, e, nil, nil
	case unix.S_IFREG:
	default:
		return Envelope{}, e, f, fmt.Errorf("spool %s: %w: not a regular file (mode %#o)", id, ErrCorrupt, st.Mode)
	}
	env, off, err := readHead(f, st.Size)
	if errors.Is(err, ErrSyntax) {
		return Envelope{}, e, f, fmt.Errorf("spool %s: %w: %w", id, ErrCorrupt, err)
	}
	if err != nil {
		return Envelope{}, e, f, fmt.Errorf("spool %s: %w", id, err)
	}
	e.dataOff = off
	env.Size = st.Size - off
	return env, e, f, nil
}

// readEnvelope is readEntry for callers that need no content.
func (s *Spool) readEnvelope(id ID) (Envelope, entry, error) {
	env, e, f, err := s.readEntry(id)
	if f != nil {
		f.Close()
	}
	return env, e, err
}

// readHead parses the head of a queue file of size bytes and returns the
// envelope and the head's length (the offset of the content). The head
// ends at the first empty line: no envelope line is empty, so the first
// "\n\n" is its end whatever the content holds.
func readHead(r io.ReaderAt, size int64) (Envelope, int64, error) {
	n := min(size, firstHeadRead)
	for {
		buf := make([]byte, n)
		if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
			return Envelope{}, 0, err
		}
		if end := bytes.Index(buf, []byte("\n\n")); end >= 0 {
			env, err := parseEnvelope(buf[:end+1], kindQueue)
			return env, int64(end) + 2, err
		}
		if n == size {
			return Envelope{}, 0, fmt.Errorf("%w: envelope not ended by an empty line", ErrSyntax)
		}
		if n >= maxHead {
			return Envelope{}, 0, fmt.Errorf("%w: envelope larger than %d bytes", ErrSyntax, maxHead)
		}
		n = min(2*n, size, maxHead)
	}
}

// readLegacyEnvelope reads dir/envelope of an old-layout directory, which
// must be a version 1 queue envelope.
func readLegacyEnvelope(dir string) (Envelope, error) {
	data, err := readSmallFile(filepath.Join(dir, fileEnvelope))
	if errors.Is(err, fs.ErrNotExist) {
		// A directory is renamed into queue/ only with its envelope.
		return Envelope{}, fmt.Errorf("%w: directory without an envelope", ErrCorrupt)
	}
	if err != nil {
		return Envelope{}, err
	}
	env, kind, err := parseEnvelopeFile(data)
	if err == nil && kind != kindQueueDir {
		err = fmt.Errorf("%w: a version 2 envelope in an old-layout directory", ErrSyntax)
	}
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return env, nil
}

// readSmallFile reads a file of at most maxHead bytes.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxHead {
		return nil, fmt.Errorf("%s: %d bytes is too large", path, fi.Size())
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, err
	}
	return data, nil
}
