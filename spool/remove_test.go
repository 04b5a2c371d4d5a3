package spool

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenMessage: one open serves envelope, states and content, and
// reads exactly what Message and OpenData read.
func TestOpenMessage(t *testing.T) {
	s := newSpool(t)
	body := bytes.Repeat([]byte("line of the body\r\n"), 500)
	id := commit(t, s, smtpEnvelope(), body)
	m, d, err := s.OpenMessage(id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("content is %d bytes, want %d", len(got), len(body))
	}
	if d.Size() != int64(len(body)) || m.Envelope.Size != int64(len(body)) {
		t.Errorf("sizes %d and %d, want %d", d.Size(), m.Envelope.Size, len(body))
	}
	mid := make([]byte, 10)
	if _, err := d.ReadAt(mid, 18); err != nil || string(mid) != "line of th" {
		t.Errorf("ReadAt = %q, %v", mid, err)
	}
	if _, err := d.ReadAt(mid, d.Size()-4); !errors.Is(err, io.EOF) {
		t.Errorf("ReadAt past the end: %v, want io.EOF", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("second Close: %v, want fs.ErrClosed", err)
	}
	plain, err := s.Message(id)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Envelope.Sender != m.Envelope.Sender || len(plain.States) != len(m.States) {
		t.Errorf("OpenMessage read %+v, Message %+v", m.Envelope, plain.Envelope)
	}
	if _, _, err := s.OpenMessage(NewID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenMessage of a missing id: %v, want ErrNotFound", err)
	}
}

// TestRemoveMessage: without a state file the message goes by one unlink
// and nothing is left in trash/ or state/; with one, state and file both
// go; a message removed meanwhile is ErrNotFound.
func TestRemoveMessage(t *testing.T) {
	tests := []struct {
		name      string
		withState bool
	}{
		{"no state file", false},
		{"state file", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpool(t)
			id := commit(t, s, smtpEnvelope(), []byte("Subject: x\r\n\r\nbody\r\n"))
			if tc.withState {
				m, err := s.Message(id)
				if err != nil {
					t.Fatal(err)
				}
				states := append([]RcptState(nil), m.States...)
				states[0] = RcptState{Status: StatusDeferred, Attempts: 1, Last: time.Unix(1, 0).UTC(), Next: time.Unix(2, 0).UTC()}
				if err := s.SetState(id, states); err != nil {
					t.Fatal(err)
				}
			}
			m, err := s.Message(id)
			if err != nil {
				t.Fatal(err)
			}
			if m.hasState != tc.withState {
				t.Fatalf("hasState = %v, want %v", m.hasState, tc.withState)
			}
			if err := s.RemoveMessage(m); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{dirQueue, dirState, dirTrash} {
				if n := entries(t, s.path(d)); len(n) != 0 {
					t.Errorf("%s/ holds %v after the removal", d, n)
				}
			}
			if err := s.RemoveMessage(m); !errors.Is(err, ErrNotFound) {
				t.Errorf("second removal: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestRemoveMessageLegacy: an old-layout directory is removed whole.
func TestRemoveMessageLegacy(t *testing.T) {
	s := newSpool(t)
	id := NewID()
	dir := s.path(dirQueue, string(id))
	if err := os.Mkdir(dir, 0o770); err != nil {
		t.Fatal(err)
	}
	m := &Message{ID: id, entry: entry{path: dir, legacy: true}}
	if err := os.WriteFile(filepath.Join(dir, fileData), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMessage(m); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, s.path(dirQueue)); len(n) != 0 {
		t.Errorf("queue/ holds %v", n)
	}
}
