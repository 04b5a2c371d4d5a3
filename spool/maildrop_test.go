package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is Debian's nobody/nogroup, the stranger of the root-only tests.
const nobody = 65534

func dropEnvelope() Envelope {
	return Envelope{Origin: OriginLocal, Body: Body8BitMIME, Sender: "alice@example.org",
		Recipients: []Recipient{{Addr: "bob@example.net", Notify: NotifyFailure}}}
}

// drop submits body the way sendmail does and returns the id.
func drop(t *testing.T, s *Spool, body []byte) ID {
	t.Helper()
	w, err := s.Drop(dropEnvelope())
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
	return id
}

// dropText is a complete drop file claiming uid.
func dropText(uid int, body string) string {
	return fmt.Sprintf("mailroom-envelope 1\norigin local\nuid %d\nbody 7bit\nsender <a@example.org>\nrcpt <b@example.org>\n\n%s", uid, body)
}

// plant writes a file straight into maildrop/ with the given mode.
func plant(t *testing.T, s *Spool, content string, mode os.FileMode) (ID, string) {
	t.Helper()
	id := NewID()
	path := s.path(dirMaildrop, string(id))
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return id, path
}

func TestDropAndPickup(t *testing.T) {
	s := newSpool(t)
	body := []byte("Subject: cron\n\nöutput\n")
	before := time.Now().Add(-time.Second)
	id := drop(t, s, body)
	path := s.path(dirMaildrop, string(id))
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != dropModeComplete {
		t.Errorf("committed drop has mode %v", fi.Mode())
	}
	drops, err := s.ListMaildrop()
	if err != nil || len(drops) != 1 || drops[0] != id {
		t.Fatalf("ListMaildrop = %v, %v", drops, err)
	}
	got, err := s.Pickup(id)
	if err != nil || got != id {
		t.Fatalf("Pickup = %s, %v; want %s", got, err, id)
	}
	m, err := s.Message(id)
	if err != nil {
		t.Fatal(err)
	}
	env := m.Envelope
	if env.Origin != OriginLocal || env.UID != uint32(os.Getuid()) || env.Sender != "alice@example.org" {
		t.Errorf("envelope %+v", env)
	}
	if env.Arrived.Before(before) || env.Arrived.After(time.Now()) {
		t.Errorf("arrival %v is not the drop's ctime", env.Arrived)
	}
	if data := readData(t, m); !bytes.Equal(data, body) {
		t.Errorf("data %q, want %q", data, body)
	}
	if n := entries(t, s.path(dirMaildrop)); len(n) != 0 {
		t.Errorf("maildrop/ holds %v after pickup", n)
	}
}

func TestDropNotReadyAndAbort(t *testing.T) {
	s := newSpool(t)
	w, err := s.Drop(dropEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half a message"))
	w.bw.Flush()
	if _, err := s.Pickup(w.ID()); !errors.Is(err, ErrNotReady) {
		t.Errorf("Pickup of a drop being written: %v, want ErrNotReady", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, s.path(dirMaildrop)); len(n) != 0 {
		t.Errorf("maildrop/ holds %v after Abort", n)
	}
	if ids, _ := s.List(); len(ids) != 0 {
		t.Errorf("queue holds %v", ids)
	}
}

// TestPickupAgainAfterCrash: the drop is still there after its queue
// entry was committed (a crash before the unlink); the next pass removes
// it without queueing it twice.
func TestPickupAgainAfterCrash(t *testing.T) {
	s := newSpool(t)
	id := drop(t, s, []byte("once\n"))
	path := s.path(dirMaildrop, string(id))
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pickup(id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, saved, dropModeComplete); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, dropModeComplete)
	if got, err := s.Pickup(id); err != nil || got != id {
		t.Fatalf("second Pickup = %s, %v", got, err)
	}
	if ids, _ := s.List(); len(ids) != 1 {
		t.Errorf("queue holds %v, want the one message", ids)
	}
	if n := entries(t, s.path(dirMaildrop)); len(n) != 0 {
		t.Errorf("maildrop/ holds %v", n)
	}
}

func TestPickupRefuses(t *testing.T) {
	me := os.Getuid()
	tests := []struct {
		name   string
		plant  func(t *testing.T, s *Spool) (ID, string)
		action string // what refuse did
	}{
		{"symlink", func(t *testing.T, s *Spool) (ID, string) {
			target := filepath.Join(t.TempDir(), "target")
			os.WriteFile(target, []byte(dropText(me, "x")), 0o644)
			id := NewID()
			path := s.path(dirMaildrop, string(id))
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			return id, target
		}, "removed"},
		{"hard link", func(t *testing.T, s *Spool) (ID, string) {
			// Someone else's file, linked in to borrow its owner's uid.
			orig := filepath.Join(s.Dir(), "victim")
			if err := os.WriteFile(orig, []byte(dropText(me, "x")), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chmod(orig, 0o644)
			id := NewID()
			if err := os.Link(orig, s.path(dirMaildrop, string(id))); err != nil {
				t.Fatal(err)
			}
			return id, orig
		}, "removed"},
		{"fifo", func(t *testing.T, s *Spool) (ID, string) {
			id := NewID()
			if err := syscall.Mkfifo(s.path(dirMaildrop, string(id)), 0o644); err != nil {
				t.Fatal(err)
			}
			return id, ""
		}, "removed"},
		{"directory", func(t *testing.T, s *Spool) (ID, string) {
			id := NewID()
			if err := os.Mkdir(s.path(dirMaildrop, string(id)), 0o755); err != nil {
				t.Fatal(err)
			}
			return id, ""
		}, "renamed"},
		{"writable by others", func(t *testing.T, s *Spool) (ID, string) {
			id, _ := plant(t, s, dropText(me, "x"), 0o666)
			return id, ""
		}, "moved to corrupt/"},
		{"uid line disagrees", func(t *testing.T, s *Spool) (ID, string) {
			id, _ := plant(t, s, dropText(me+1, "x"), dropModeComplete)
			return id, ""
		}, "moved to corrupt/"},
		{"garbage", func(t *testing.T, s *Spool) (ID, string) {
			id, _ := plant(t, s, "From: x\n\nnot an envelope\n", dropModeComplete)
			return id, ""
		}, "moved to corrupt/"},
		{"claims arrival", func(t *testing.T, s *Spool) (ID, string) {
			text := strings.Replace(dropText(me, "x"), "origin local\n", "origin local\narrived 2099-01-01T00:00:00Z\n", 1)
			id, _ := plant(t, s, text, dropModeComplete)
			return id, ""
		}, "moved to corrupt/"},
		{"no end of envelope", func(t *testing.T, s *Spool) (ID, string) {
			id, _ := plant(t, s, strings.TrimSuffix(dropText(me, ""), "\n"), dropModeComplete)
			return id, ""
		}, "moved to corrupt/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpool(t)
			id, outside := tc.plant(t, s)
			_, err := s.Pickup(id)
			var re *RefusedError
			if !errors.As(err, &re) || !errors.Is(err, ErrRefused) {
				t.Fatalf("Pickup: %v, want a RefusedError", err)
			}
			if re.Action != tc.action {
				t.Errorf("action %q, want %q (%v)", re.Action, tc.action, err)
			}
			if ids, _ := s.List(); len(ids) != 0 {
				t.Errorf("a refused drop was queued: %v", ids)
			}
			if ids, _ := s.ListMaildrop(); len(ids) != 0 {
				t.Errorf("maildrop still offers %v", ids)
			}
			if outside != "" {
				if _, err := os.Stat(outside); err != nil {
					t.Errorf("refusing harmed the file linked to: %v", err)
				}
			}
			if tc.action == "moved to corrupt/" {
				if n := entries(t, s.path(dirCorrupt)); len(n) != 1 || n[0] != string(id) {
					t.Errorf("corrupt/ holds %v", n)
				}
			}
			if n := entries(t, s.path(dirTmp)); len(n) != 0 {
				t.Errorf("tmp/ holds %v", n)
			}
		})
	}
}

// Child side of the tests that drop as another user.
const dropEnvDir = "MAILROOM_SPOOL_DROP_DIR"

// TestDropChild runs as nobody (started by TestDropAsNobody): it may
// write into maildrop/ but not list it, and its forged drop claims root.
func TestDropChild(t *testing.T) {
	dir := os.Getenv(dropEnvDir)
	if dir == "" {
		t.Skip("only run as the child of TestDropAsNobody")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Drop(dropEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: from nobody\n\nhi\n")
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	forged := NewID()
	forgedPath := s.path(dirMaildrop, string(forged))
	if err := os.WriteFile(forgedPath, []byte(dropText(0, "I am root\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(forgedPath, dropModeComplete); err != nil {
		t.Fatal(err)
	}
	_, listErr := s.ListMaildrop()
	fmt.Printf("ids %s %s listerr=%v\n", id, forged, listErr != nil)
}

// TestDropAsNobody: as root, a child running as nobody drops a message;
// the queued envelope carries nobody's uid, taken from the file's owner.
// Its forged drop, whose uid line says root, is refused.
func TestDropAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as nobody")
	}
	shared := sharedTempDir(t)
	dir := filepath.Join(shared, "spool")
	if err := Setup(dir); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	bin := copyTestBinary(t, shared)
	cmd := exec.Command(bin, "-test.run=^TestDropChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), dropEnvDir+"="+dir, "GOCOVERDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd.Dir = shared
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var id, forged ID
	var listErr bool
	line := string(out[bytes.Index(out, []byte("ids ")):])
	if _, err := fmt.Sscanf(line, "ids %s %s listerr=%t", &id, &forged, &listErr); err != nil {
		t.Fatalf("child output: %v\n%s", err, out)
	}
	if !listErr {
		t.Error("nobody could list maildrop/")
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(s.path(dirMaildrop, string(id)), &st); err != nil || st.Uid != nobody {
		t.Fatalf("drop file owner %d (%v), want %d", st.Uid, err, nobody)
	}
	if _, err := s.Pickup(id); err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Envelope.UID != nobody || m.Envelope.Origin != OriginLocal {
		t.Errorf("queued envelope: origin %s uid %d, want local %d", m.Envelope.Origin, m.Envelope.UID, nobody)
	}
	_, err = s.Pickup(forged)
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "uid line 0, file owner 65534") {
		t.Errorf("forged drop: %v, want refused for its uid", err)
	}
	if ids, _ := s.List(); len(ids) != 1 {
		t.Errorf("queue holds %v, want nobody's one message", ids)
	}
}

// TestPickupRefusesOtherOwnersID: a stranger's drop named after a queued
// message of someone else is refused, not merged.
func TestPickupRefusesOtherOwnersID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to nobody")
	}
	s := newSpool(t)
	id := drop(t, s, []byte("mine\n"))
	if _, err := s.Pickup(id); err != nil {
		t.Fatal(err)
	}
	path := s.path(dirMaildrop, string(id))
	if err := os.WriteFile(path, []byte(dropText(nobody, "theirs\n")), dropModeComplete); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, dropModeComplete)
	if _, err := s.Pickup(id); !errors.Is(err, ErrRefused) {
		t.Fatalf("Pickup: %v, want refused", err)
	}
	m, err := s.Message(id)
	if err != nil {
		t.Fatal(err)
	}
	if string(readData(t, m)) != "mine\n" || m.Envelope.UID != 0 {
		t.Errorf("the queued message changed: uid %d", m.Envelope.UID)
	}
}

// sharedTempDir returns a temporary directory that nobody can reach: every
// directory from the system temporary directory down is made searchable
// (0711, never readable).
func sharedTempDir(t *testing.T) string {
	t.Helper()
	tmp, err := filepath.EvalSymlinks(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(tmp, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("%s is not under %s", dir, tmp)
	}
	p := tmp
	for _, elem := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, elem)
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// copyTestBinary copies the running test binary where nobody can run it.
func copyTestBinary(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "spool.test")
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestDropSweptWhileWriting: a drop whose writer idled past the sweep is
// gone; its Commit must fail (sendmail exits 75), not report success for
// a file nobody will ever pick up.
func TestDropSweptWhileWriting(t *testing.T) {
	s := newSpool(t)
	w, err := s.Drop(dropEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("slow\n"))
	w.bw.Flush()
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(w.path, old, old); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SweepTmp(24 * time.Hour); err != nil || n != 1 {
		t.Fatalf("SweepTmp = %d, %v; want the stale drop removed", n, err)
	}
	if _, err := w.Commit(); err == nil {
		t.Fatal("Commit of a swept drop succeeded")
	}
}
