package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newSpool makes a spool in a fresh temporary directory.
func newSpool(t testing.TB) *Spool {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool")
	if err := Setup(dir); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// commit writes one message and returns its id.
func commit(t testing.TB, s *Spool, env Envelope, body []byte) ID {
	t.Helper()
	w, err := s.Create(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if id != w.ID() {
		t.Fatalf("Commit returned %s, Writer.ID %s", id, w.ID())
	}
	return id
}

// readData returns a queued message's content.
func readData(t testing.TB, m *Message) []byte {
	t.Helper()
	f, err := m.OpenData()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// entries lists the names in dir.
func entries(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestSetupModes(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	s := newSpool(t)
	want := map[string]fs.FileMode{
		"":         fs.ModeDir | 0o711,
		"tmp":      fs.ModeDir | fs.ModeSetgid | 0o770,
		"queue":    fs.ModeDir | fs.ModeSetgid | 0o770,
		"state":    fs.ModeDir | fs.ModeSetgid | 0o770,
		"trash":    fs.ModeDir | fs.ModeSetgid | 0o770,
		"maildrop": fs.ModeDir | fs.ModeSticky | 0o733,
		"corrupt":  fs.ModeDir | fs.ModeSetgid | 0o770,
	}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(s.Dir(), name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s/: mode %v, want %v", name, fi.Mode(), mode)
		}
	}
	// Again, after someone loosened a mode: Setup restores it.
	if err := os.Chmod(filepath.Join(s.Dir(), "queue"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := Setup(s.Dir()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(s.Dir(), "queue")); fi.Mode() != want["queue"] {
		t.Errorf("queue/ after a second Setup: %v", fi.Mode())
	}
	if _, err := Open(filepath.Join(s.Dir(), "missing")); err == nil {
		t.Error("Open of a missing directory succeeded")
	}
}

func TestCommitAndRead(t *testing.T) {
	s := newSpool(t)
	env := smtpEnvelope()
	env.Arrived = time.Time{}
	body := []byte("Subject: hi\r\n\r\nhello\r\n")
	id := commit(t, s, env, body)

	ids, err := s.List()
	if err != nil || !reflect.DeepEqual(ids, []ID{id}) {
		t.Fatalf("List = %v, %v; want [%s]", ids, err, id)
	}
	m, err := s.Message(id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Envelope.Size != int64(len(body)) {
		t.Errorf("size %d, want %d", m.Envelope.Size, len(body))
	}
	if !m.Envelope.Arrived.Equal(id.Time()) {
		t.Errorf("arrived %v, want the id's time %v", m.Envelope.Arrived, id.Time())
	}
	if got := readData(t, m); !bytes.Equal(got, body) {
		t.Errorf("data %q, want %q", got, body)
	}
	if len(m.States) != 3 || m.Finished() {
		t.Errorf("states %+v: want 3 pending", m.States)
	}
	for _, st := range m.States {
		if st.Status != StatusPending {
			t.Errorf("state %+v, want pending", st)
		}
	}
	if n := entries(t, s.path(dirTmp)); len(n) != 0 {
		t.Errorf("tmp/ holds %v after a commit", n)
	}
	// One regular file: the version 2 head, then the content.
	fi, err := os.Lstat(s.path(dirQueue, string(id)))
	if err != nil || fi.Mode() != modeFile {
		t.Fatalf("queue file: %v, %v; want a regular file of mode %v", fi.Mode(), err, fs.FileMode(modeFile))
	}
	raw, err := os.ReadFile(s.path(dirQueue, string(id)))
	if err != nil {
		t.Fatal(err)
	}
	env.Arrived = id.Time()
	head, _ := env.MarshalText()
	if want := append(head, body...); !bytes.Equal(raw, want) {
		t.Errorf("queue file:\n%q\nwant\n%q", raw, want)
	}
	if n := entries(t, s.path(dirState)); len(n) != 0 {
		t.Errorf("state/ holds %v before any SetState", n)
	}
}

// TestOpenDataSection: the content reads as a file of its own, whatever
// the head before it.
func TestOpenDataSection(t *testing.T) {
	s := newSpool(t)
	body := []byte("0123456789")
	m, err := s.Message(commit(t, s, smtpEnvelope(), body))
	if err != nil {
		t.Fatal(err)
	}
	d, err := m.OpenData()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != int64(len(body)) {
		t.Errorf("Size %d, want %d", d.Size(), len(body))
	}
	buf := make([]byte, 3)
	if n, err := d.ReadAt(buf, 7); n != 3 || string(buf) != "789" {
		t.Errorf("ReadAt(7) = %d %q, %v", n, buf, err)
	}
	if _, err := d.ReadAt(buf, 8); err != io.EOF {
		t.Errorf("ReadAt past the end: %v, want EOF", err)
	}
	if pos, err := d.Seek(-4, io.SeekEnd); err != nil || pos != 6 {
		t.Errorf("Seek = %d, %v", pos, err)
	}
	if rest, err := io.ReadAll(d); err != nil || string(rest) != "6789" {
		t.Errorf("read after Seek: %q, %v", rest, err)
	}
	if err := d.Close(); err != nil {
		t.Error(err)
	}
}

func TestCreateRefusesBadEnvelope(t *testing.T) {
	s := newSpool(t)
	env := smtpEnvelope()
	env.Recipients = nil
	if _, err := s.Create(env); err == nil {
		t.Fatal("Create accepted an envelope without recipients")
	}
	if n := entries(t, s.path(dirTmp)); len(n) != 0 {
		t.Errorf("a refused Create left %v in tmp/", n)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	s := newSpool(t)
	w, err := s.Create(smtpEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("x"), 100<<10))
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("more")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	for _, d := range []string{dirTmp, dirQueue} {
		if n := entries(t, s.path(d)); len(n) != 0 {
			t.Errorf("%s/ holds %v after Abort", d, n)
		}
	}
}

func TestCommitFailureLeavesNothing(t *testing.T) {
	s := newSpool(t)
	w, err := s.Create(smtpEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello\r\n"))
	// Take the queue away: the rename must fail and the message vanish.
	if err := os.Rename(s.path(dirQueue), s.path("queue.gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(); err == nil {
		t.Fatal("Commit into a missing queue/ succeeded")
	}
	if n := entries(t, s.path(dirTmp)); len(n) != 0 {
		t.Errorf("a failed Commit left %v in tmp/", n)
	}
}

func TestCommitNeverReplaces(t *testing.T) {
	s := newSpool(t)
	first := commit(t, s, smtpEnvelope(), []byte("first\n"))
	env := smtpEnvelope()
	w, err := s.create(env, first) // force the same id
	if err == nil {
		w.Write([]byte("second\n"))
		_, err = w.Commit()
	}
	if !errors.Is(err, ErrIDTaken) {
		t.Fatalf("committing a taken id: %v, want ErrIDTaken", err)
	}
	m, err := s.Message(first)
	if err != nil {
		t.Fatal(err)
	}
	if got := readData(t, m); string(got) != "first\n" {
		t.Errorf("the first message was replaced: %q", got)
	}
}

func TestStateAndRemove(t *testing.T) {
	s := newSpool(t)
	id := commit(t, s, smtpEnvelope(), []byte("body\n"))
	later := arrived.Add(time.Hour)
	states := []RcptState{
		{Status: StatusDelivered, Attempts: 1, Last: arrived},
		{Status: StatusDeferred, Attempts: 1, Last: arrived, Next: later, Reason: "451 4.4.1 no answer"},
		{Status: StatusFailed, Attempts: 1, Last: arrived, Reason: "550 5.1.1 unknown"},
	}
	if err := s.SetState(id, states); err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.States, states) || m.Finished() {
		t.Fatalf("states %+v, finished %v", m.States, m.Finished())
	}
	if err := s.SetState(id, states[:2]); err == nil {
		t.Error("SetState with too few states succeeded")
	}
	states[1] = RcptState{Status: StatusDelivered, Attempts: 2, Last: later}
	if err := s.SetState(id, states); err != nil {
		t.Fatal(err)
	}
	if m, err = s.Message(id); err != nil || !m.Finished() {
		t.Fatalf("after final states: %v, %+v", err, m)
	}
	if got := entries(t, s.path(dirState)); !reflect.DeepEqual(got, []string{string(id)}) {
		t.Errorf("state/ holds %v, want the message's state file", got)
	}
	if err := s.Remove(id); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dirQueue, dirTrash, dirState} {
		if n := entries(t, s.path(d)); len(n) != 0 {
			t.Errorf("%s/ holds %v after Remove", d, n)
		}
	}
	if _, err := s.Message(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Message after Remove: %v, want ErrNotFound", err)
	}
	if err := s.Remove(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	if err := s.SetState(id, states); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetState after Remove: %v, want ErrNotFound", err)
	}
}

func TestBadIDsNeverTouchTheFileSystem(t *testing.T) {
	s := newSpool(t)
	for _, id := range []ID{"", "..", "../tmp", ID(strings.Repeat("0", 19) + "/")} {
		if _, err := s.Message(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Message(%q): %v", id, err)
		}
		if err := s.SetState(id, nil); !errors.Is(err, ErrBadID) {
			t.Errorf("SetState(%q): %v", id, err)
		}
		if err := s.Remove(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Remove(%q): %v", id, err)
		}
		if _, err := s.Pickup(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Pickup(%q): %v", id, err)
		}
	}
}

func TestCorruptMessages(t *testing.T) {
	s := newSpool(t)
	env := smtpEnvelope()
	head, _ := env.MarshalText()
	tests := []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"head cut short", head[:len(head)/2]},
		{"head without its empty line", head[:len(head)-1]},
		{"version 1 head", []byte(legacyEnvelopeText)},
		{"garbage", bytes.Repeat([]byte("x\n"), 3*firstHeadRead)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := NewID()
			if err := os.WriteFile(s.path(dirQueue, string(id)), tc.content, 0o640); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Message(id); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Message: %v, want ErrCorrupt", err)
			}
			if err := s.SetState(id, pendingStates(3)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("SetState: %v, want ErrCorrupt", err)
			}
		})
	}
	id := commit(t, s, smtpEnvelope(), []byte("x"))
	if err := os.WriteFile(s.path(dirState, string(id)), []byte("mailroom-state 1\nrcpt 0 pending attempts=0\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Message(id); !errors.Is(err, ErrCorrupt) {
		t.Errorf("state for 1 of 3 recipients: %v, want ErrCorrupt", err)
	}
	link := NewID()
	if err := os.Symlink(string(id), s.path(dirQueue, string(link))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Message(link); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a symbolic link in queue/: %v, want ErrCorrupt", err)
	}
}

// TestLongHead: a head longer than the first read is found all the same.
func TestLongHead(t *testing.T) {
	s := newSpool(t)
	env := smtpEnvelope()
	for i := 0; i < 500; i++ {
		env.Recipients = append(env.Recipients, Recipient{Addr: fmt.Sprintf("rcpt%d@example.org", i)})
	}
	body := []byte("body\n\nwith an empty line\n")
	m, err := s.Message(commit(t, s, env, body))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Envelope.Recipients) != 503 || m.Envelope.Size != int64(len(body)) {
		t.Errorf("%d recipients, size %d", len(m.Envelope.Recipients), m.Envelope.Size)
	}
	if got := readData(t, m); !bytes.Equal(got, body) {
		t.Errorf("data %q", got)
	}
}

func TestListIgnoresStrangers(t *testing.T) {
	s := newSpool(t)
	a := commit(t, s, smtpEnvelope(), []byte("a"))
	b := commit(t, s, smtpEnvelope(), []byte("b"))
	os.WriteFile(s.path(dirQueue, "README"), nil, 0o600)
	os.Mkdir(s.path(dirQueue, ".hidden"), 0o700)
	ids, err := s.List()
	if err != nil || !reflect.DeepEqual(ids, []ID{a, b}) {
		t.Errorf("List = %v, %v; want [%s %s]", ids, err, a, b)
	}
}

func TestSweepTmp(t *testing.T) {
	s := newSpool(t)
	// A writer that died long ago, one still writing, and a half removal.
	dead, err := s.Create(smtpEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	dead.Write([]byte("half"))
	dead.bw.Flush()
	live, err := s.Create(smtpEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(dead.path, old, old); err != nil {
		t.Fatal(err)
	}
	// Two old-layout leftovers: a dead writer's directory, and one whose
	// directory is old but whose data a writer still appends to.
	oldDead, oldLive := s.path(dirTmp, string(NewID())), s.path(dirTmp, string(NewID()))
	for _, d := range []string{oldDead, oldLive} {
		mustMkdir(t, d)
		mustWrite(t, filepath.Join(d, fileData), "x")
	}
	for _, p := range []string{oldDead, filepath.Join(oldDead, fileData), oldLive} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	trashed := s.path(dirTrash, string(NewID()))
	mustWrite(t, trashed, "x")
	trashedDir := s.path(dirTrash, string(NewID()))
	mustMkdir(t, trashedDir)
	mustWrite(t, filepath.Join(trashedDir, fileData), "x")
	// In state/: the state of a queued message (kept whatever its age),
	// an orphan from an interrupted removal and a SetState's temporary
	// file, both old (swept), and a fresh orphan (kept for now).
	queued := commit(t, s, smtpEnvelope(), []byte("queued\n"))
	if err := s.SetState(queued, pendingStates(3)); err != nil {
		t.Fatal(err)
	}
	orphan, fresh := s.path(dirState, string(NewID())), s.path(dirState, string(NewID()))
	temp := s.path(dirState, "."+string(NewID())+".tmp123")
	for _, p := range []string{orphan, fresh, temp} {
		mustWrite(t, p, "mailroom-state 1\n")
	}
	for _, p := range []string{orphan, temp, s.path(dirState, string(queued))} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}

	n, err := s.SweepTmp(24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("swept %d entries, want 6", n)
	}
	wantTmp := []string{string(live.ID()), filepath.Base(oldLive)}
	sort.Strings(wantTmp)
	if got := entries(t, s.path(dirTmp)); !reflect.DeepEqual(got, wantTmp) {
		t.Errorf("tmp/ after sweep: %v, want only the live writers %v", got, wantTmp)
	}
	if got := entries(t, s.path(dirTrash)); len(got) != 0 {
		t.Errorf("trash/ after sweep: %v", got)
	}
	wantState := []string{string(queued), filepath.Base(fresh)}
	sort.Strings(wantState)
	if got := entries(t, s.path(dirState)); !reflect.DeepEqual(got, wantState) {
		t.Errorf("state/ after sweep: %v, want %v", got, wantState)
	}
	live.Write([]byte("still here"))
	if _, err := live.Commit(); err != nil {
		t.Errorf("the live writer could not commit after a sweep: %v", err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o770); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestLockConsumer(t *testing.T) {
	s := newSpool(t)
	release, err := s.LockConsumer()
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files, so a second open in this process
	// conflicts just as another process would.
	if _, err := s.LockConsumer(); err == nil {
		t.Fatal("a second consumer got the lock")
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	release, err = s.LockConsumer()
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	release()
}

// BenchmarkCommit measures one acknowledged 5 KB message: what smtpd pays
// per 250 (two fsyncs: the file, queue/).
func BenchmarkCommit(b *testing.B) {
	s := newSpool(b)
	body := bytes.Repeat([]byte("x"), 5<<10)
	env := smtpEnvelope()
	for b.Loop() {
		commit(b, s, env, body)
	}
}

// BenchmarkCommitParallel is the same with many writers at once, as
// smtpd with many clients: they share the fsyncs of queue/, and the file
// system groups their journal commits.
func BenchmarkCommitParallel(b *testing.B) {
	s := newSpool(b)
	body := bytes.Repeat([]byte("x"), 5<<10)
	env := smtpEnvelope()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			commit(b, s, env, body)
		}
	})
}
