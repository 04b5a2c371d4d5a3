package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// plantLegacy makes queue/<id>/ as the previous version committed it:
// a directory holding envelope (version 1, with the size) and data, and
// a state file when states is not nil.
func plantLegacy(t *testing.T, s *Spool, body []byte, states []RcptState) ID {
	t.Helper()
	id := NewID()
	env := smtpEnvelope()
	env.Size = int64(len(body))
	text, err := env.marshal(kindQueueDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := s.path(dirQueue, string(id))
	if err := os.Mkdir(dir, modeDir); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, fileEnvelope), string(text))
	mustWrite(t, filepath.Join(dir, fileData), string(body))
	if states != nil {
		data, err := marshalStates(states)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(dir, fileState), string(data))
	}
	return id
}

// TestLegacyLayout: a spool written by the previous version (a directory
// per message) is read, its states changed and its messages removed, side
// by side with new queue files.
func TestLegacyLayout(t *testing.T) {
	s := newSpool(t)
	deferred := []RcptState{
		{Status: StatusDelivered, Attempts: 1, Last: arrived},
		{Status: StatusDeferred, Attempts: 1, Last: arrived, Next: arrived.Add(time.Hour), Reason: "451 later"},
		{Status: StatusPending},
	}
	old := plantLegacy(t, s, []byte("old body\r\n"), deferred)
	oldPending := plantLegacy(t, s, []byte("pending\r\n"), nil)
	fresh := commit(t, s, smtpEnvelope(), []byte("new body\r\n"))
	ids, err := s.List()
	if want := []ID{old, oldPending, fresh}; err != nil || !reflect.DeepEqual(ids, want) {
		t.Fatalf("List = %v, %v; want %v", ids, err, want)
	}
	m, err := s.Message(old)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.States, deferred) || m.Envelope.Size != 10 || m.Envelope.Recipients[1].Addr != "jörg@bücher.example" {
		t.Errorf("old message: %+v", m)
	}
	if got := readData(t, m); string(got) != "old body\r\n" {
		t.Errorf("old data %q", got)
	}
	if m, err := s.Message(oldPending); err != nil || m.States[2].Status != StatusPending || string(readData(t, m)) != "pending\r\n" {
		t.Errorf("old pending message: %+v, %v", m, err)
	}

	// Its state stays inside its directory; state/ is for queue files.
	final := []RcptState{
		{Status: StatusDelivered, Attempts: 1, Last: arrived},
		{Status: StatusDelivered, Attempts: 2, Last: arrived},
		{Status: StatusFailed, Attempts: 1, Last: arrived, Reason: "550 no"},
	}
	if err := s.SetState(old, final); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Message(old); err != nil || !m.Finished() {
		t.Fatalf("after SetState: %+v, %v", m, err)
	}
	if n := entries(t, s.path(dirState)); len(n) != 0 {
		t.Errorf("state/ holds %v for an old-layout message", n)
	}
	for _, id := range []ID{old, oldPending, fresh} {
		if err := s.Remove(id); err != nil {
			t.Fatalf("Remove %s: %v", id, err)
		}
	}
	for _, d := range []string{dirQueue, dirTrash, dirState} {
		if n := entries(t, s.path(d)); len(n) != 0 {
			t.Errorf("%s/ holds %v after the removals", d, n)
		}
	}
}

func TestLegacyCorrupt(t *testing.T) {
	s := newSpool(t)
	short := plantLegacy(t, s, []byte("twelve bytes"), nil)
	mustWrite(t, filepath.Join(s.path(dirQueue, string(short)), fileData), "short")
	if _, err := s.Message(short); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated old data: %v, want ErrCorrupt", err)
	}
	v2 := plantLegacy(t, s, []byte("x"), nil)
	env := smtpEnvelope()
	head, _ := env.MarshalText()
	mustWrite(t, filepath.Join(s.path(dirQueue, string(v2)), fileEnvelope), string(head))
	if _, err := s.Message(v2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a version 2 envelope in a directory: %v, want ErrCorrupt", err)
	}
	empty := NewID()
	mustMkdir(t, s.path(dirQueue, string(empty)))
	if _, err := s.Message(empty); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a directory without an envelope: %v, want ErrCorrupt", err)
	}
}

// TestCommitNeverReplacesLegacy: an id taken by an old-layout directory
// is taken for a new queue file too.
func TestCommitNeverReplacesLegacy(t *testing.T) {
	s := newSpool(t)
	old := plantLegacy(t, s, []byte("old\n"), nil)
	w, err := s.create(smtpEnvelope(), old)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("new\n"))
	if _, err := w.Commit(); !errors.Is(err, ErrIDTaken) {
		t.Fatalf("Commit over an old-layout directory: %v, want ErrIDTaken", err)
	}
	m, err := s.Message(old)
	if err != nil || string(readData(t, m)) != "old\n" {
		t.Fatalf("the old message: %v", err)
	}
	if n := entries(t, s.path(dirTmp)); len(n) != 0 {
		t.Errorf("tmp/ holds %v", n)
	}
}

// TestRemoveOverLeftovers: an interrupted removal left trash/<id> behind
// (a file, or an old-layout directory); removing a message of that id
// again still works.
func TestRemoveOverLeftovers(t *testing.T) {
	s := newSpool(t)
	fileID := commit(t, s, smtpEnvelope(), []byte("a"))
	mustWrite(t, s.path(dirTrash, string(fileID)), "leftover")
	dirID := commit(t, s, smtpEnvelope(), []byte("b"))
	mustMkdir(t, s.path(dirTrash, string(dirID)))
	mustWrite(t, filepath.Join(s.path(dirTrash, string(dirID)), fileData), "leftover")
	legacyID := plantLegacy(t, s, []byte("c"), nil)
	mustWrite(t, s.path(dirTrash, string(legacyID)), "leftover")
	for _, id := range []ID{fileID, dirID, legacyID} {
		if err := s.Remove(id); err != nil {
			t.Errorf("Remove %s: %v", id, err)
		}
	}
	for _, d := range []string{dirQueue, dirTrash} {
		if n := entries(t, s.path(d)); len(n) != 0 {
			t.Errorf("%s/ holds %v", d, n)
		}
	}
}

func FuzzReadHead(f *testing.F) {
	env := smtpEnvelope()
	head, _ := env.MarshalText()
	f.Add(append(head, "body\n\nmore\n"...))
	f.Add(head)
	f.Add([]byte(legacyEnvelopeText + "data"))
	f.Add([]byte("mailroom-envelope 2\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, off, err := readHead(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error without ErrSyntax: %v", err)
			}
			return
		}
		if off < 2 || off > int64(len(data)) {
			t.Fatalf("head length %d of %d bytes", off, len(data))
		}
		// Strictness: the head is exactly what MarshalText writes.
		again, err := env.MarshalText()
		if err != nil || !bytes.Equal(again, data[:off]) {
			t.Fatalf("not canonical (%v):\n in %q\nout %q", err, data[:off], again)
		}
	})
}

// TestPickupOverLeftoverTmp: an interrupted pickup left tmp/<id> behind
// (a file, or an old-layout directory); the next pickup of the drop
// replaces it and queues the drop once.
func TestPickupOverLeftoverTmp(t *testing.T) {
	s := newSpool(t)
	asFile := drop(t, s, []byte("one\n"))
	mustWrite(t, s.path(dirTmp, string(asFile)), "half a copy")
	asDir := drop(t, s, []byte("two\n"))
	mustMkdir(t, s.path(dirTmp, string(asDir)))
	mustWrite(t, filepath.Join(s.path(dirTmp, string(asDir)), fileData), "half")
	for id, body := range map[ID]string{asFile: "one\n", asDir: "two\n"} {
		got, err := s.Pickup(id)
		if err != nil || got != id {
			t.Fatalf("Pickup %s = %s, %v", id, got, err)
		}
		m, err := s.Message(id)
		if err != nil {
			t.Fatal(err)
		}
		if string(readData(t, m)) != body || m.Envelope.Origin != OriginLocal || m.Envelope.UID != uint32(os.Getuid()) {
			t.Errorf("picked up %s: %+v", id, m.Envelope)
		}
	}
	for _, d := range []string{dirTmp, dirMaildrop} {
		if n := entries(t, s.path(d)); len(n) != 0 {
			t.Errorf("%s/ holds %v", d, n)
		}
	}
}
