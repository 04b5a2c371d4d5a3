package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
)

// The crash tests re-run this test binary as a child that works on a spool
// and dies by SIGKILL: at a named step (crashPoint), or when the parent
// kills it mid-write. The parent then looks at what a restarted consumer
// would see.
const (
	crashEnvDir  = "MAILROOM_SPOOL_CRASH_DIR"
	crashEnvStep = "MAILROOM_SPOOL_CRASH_STEP"
)

// crashBody is what the child writes; big enough to span buffer flushes.
var crashBody = bytes.Repeat([]byte("0123456789abcdef\r\n"), 8<<10)

// TestCrashChild is the child's side; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir, step := os.Getenv(crashEnvDir), os.Getenv(crashEnvStep)
	if dir == "" {
		t.Skip("only run as the child of a crash test")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	crashPoint = func(at string) {
		if at == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never returns: the signal is on its way
		}
	}
	if step == "mid-write" {
		crashChildMidWrite(t, s)
		return
	}
	if step == "drop-synced" {
		w, err := s.Drop(dropEnvelope())
		if err != nil {
			t.Fatal(err)
		}
		w.Write(crashBody)
		w.Commit()
		t.Fatal("not killed at drop-synced")
	}
	w, err := s.Create(smtpEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(crashBody)
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if step == "remove-unlinked" {
		// The consumer's usual removal: no state file was ever written.
		m, err := s.Message(id)
		if err != nil {
			t.Fatal(err)
		}
		s.RemoveMessage(m)
		t.Fatal("not killed at remove-unlinked")
	}
	final := []RcptState{
		{Status: StatusDelivered, Attempts: 1, Last: arrived},
		{Status: StatusDelivered, Attempts: 1, Last: arrived},
		{Status: StatusFailed, Attempts: 1, Last: arrived, Reason: "550 5.1.1 unknown"},
	}
	if err := s.SetState(id, final); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(id); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("not killed at %q", step)
}

// crashChildMidWrite streams stdin into a message until killed.
func crashChildMidWrite(t *testing.T, s *Spool) {
	w, err := s.Create(smtpEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := os.Stdin.Read(buf)
		w.Write(buf[:n])
		w.bw.Flush() // so the parent can see the bytes land
		if err != nil {
			break
		}
	}
	t.Fatal("stdin ended before the kill")
}

// runCrashChild starts the child for step and returns once it died of
// SIGKILL. For "mid-write" it feeds half a message and kills the child
// once those bytes are on disk.
func runCrashChild(t *testing.T, s *Spool, step string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+s.Dir(), crashEnvStep+"="+step)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if step == "mid-write" {
		half := crashBody[:len(crashBody)/2]
		if _, err := stdin.Write(half); err != nil {
			t.Fatalf("writing to the child: %v\n%s", err, out.String())
		}
		if !testutil.WaitFor(10*time.Second, func() bool { return tmpDataBytes(s) >= int64(len(half)) }) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the child never wrote half the message\n%s", out.String())
		}
		cmd.Process.Kill()
	}
	err = cmd.Wait()
	stdin.Close()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child at %q was not killed by SIGKILL (%v)\n%s", step, err, out.String())
	}
}

// tmpDataBytes totals the content (what follows the head) of the files
// under tmp/.
func tmpDataBytes(s *Spool) int64 {
	var n int64
	ents, _ := os.ReadDir(s.path(dirTmp))
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(s.path(dirTmp), e.Name()))
		if end := bytes.Index(data, []byte("\n\n")); err == nil && end >= 0 {
			n += int64(len(data) - end - 2)
		}
	}
	return n
}

// TestCrash kills a writer, a state change and a removal at every step and
// checks what is visible afterwards: nothing before the commit's rename,
// the whole message after it, the old or the new states, never a pending
// message after its removal started. A restart's SweepTmp then leaves no
// debris.
func TestCrash(t *testing.T) {
	tests := []struct {
		step    string
		visible bool   // a message is in queue/ afterwards
		status  Status // the state of recipient 1, if visible
	}{
		{"mid-write", false, ""},
		{"commit-data-written", false, ""},
		{"commit-before-rename", false, ""},
		{"commit-after-rename", true, StatusPending},
		{"commit-done", true, StatusPending},
		{"state-before", true, StatusPending},
		{"state-after", true, StatusDelivered},
		{"remove-renamed", false, ""},
		{"remove-unlinking", false, ""},
		{"remove-unlinked", false, ""},
		{"drop-synced", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.step, func(t *testing.T) {
			s := newSpool(t)
			runCrashChild(t, s, tc.step)
			if err := checkAfterCrash(s, tc.visible, tc.status); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SweepTmp(0); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{dirTmp, dirTrash, dirMaildrop} {
				if n := entries(t, s.path(d)); len(n) != 0 {
					t.Errorf("%s/ holds %v after a sweep", d, n)
				}
			}
			// A state file stays exactly while its message does.
			if n := entries(t, s.path(dirState)); len(n) != 0 && !(tc.visible && tc.status == StatusDelivered) {
				t.Errorf("state/ holds %v after a sweep", n)
			}
			if err := checkAfterCrash(s, tc.visible, tc.status); err != nil {
				t.Fatalf("after the sweep: %v", err)
			}
		})
	}
}

// checkAfterCrash is what a restarted consumer sees.
func checkAfterCrash(s *Spool, visible bool, status Status) error {
	ids, err := s.List()
	if err != nil {
		return err
	}
	drops, err := s.ListMaildrop()
	if err != nil {
		return err
	}
	for _, id := range drops {
		if _, err := s.Pickup(id); !errors.Is(err, ErrNotReady) {
			return fmt.Errorf("pickup of an interrupted drop: %v, want ErrNotReady", err)
		}
	}
	if !visible {
		if len(ids) != 0 {
			return fmt.Errorf("queue holds %v, want nothing", ids)
		}
		return nil
	}
	if len(ids) != 1 {
		return fmt.Errorf("queue holds %v, want one message", ids)
	}
	m, err := s.Message(ids[0])
	if err != nil {
		return err
	}
	f, err := m.OpenData()
	if err != nil {
		return err
	}
	defer f.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(f); err != nil {
		return err
	}
	if !bytes.Equal(got.Bytes(), crashBody) {
		return fmt.Errorf("data is %d bytes, want the %d written", got.Len(), len(crashBody))
	}
	if m.States[0].Status != status {
		return fmt.Errorf("recipient 1 is %s, want %s", m.States[0].Status, status)
	}
	return nil
}
