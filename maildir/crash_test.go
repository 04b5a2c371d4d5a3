package maildir

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mailroom/internal/testutil"
)

// crashEnvRoot, when set, turns TestCrashMidDelivery into the child that
// delivers its stdin into the Maildir named by the variable.
const crashEnvRoot = "MAILROOM_CRASH_CHILD_ROOT"

// TestCrashMidDelivery kills a delivering process with SIGKILL while the
// message is half written: no reader may ever see the half message. The
// partial file may stay in tmp/ (maildir(5) leaves those to a 36-hour
// sweep), but new/ and cur/ stay empty and a Mailbox sync reports nothing.
func TestCrashMidDelivery(t *testing.T) {
	if root := os.Getenv(crashEnvRoot); root != "" {
		crashChild(t, root)
		return
	}
	root := filepath.Join(t.TempDir(), "u")
	if err := Create(root); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidDelivery$")
	cmd.Env = append(os.Environ(), crashEnvRoot+"="+root)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	half := append([]byte("Subject: half\n\n"), bytes.Repeat([]byte("x"), 64<<10)...)
	if _, err := stdin.Write(half); err != nil {
		t.Fatalf("write to child: %v\n%s", err, out.String())
	}
	// Wait, bounded, until the half message is on disk in tmp/: the kill
	// must land mid-delivery, not before it started.
	if !testutil.WaitFor(10*time.Second, func() bool { return tmpBytes(t, root) >= int64(len(half)) }) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child never wrote the half message to tmp/\n%s", out.String())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, sub := range []string{"new", "cur"} {
		if ents, _ := os.ReadDir(filepath.Join(root, sub)); len(ents) != 0 {
			t.Errorf("%s/ holds %d files after a crash mid-delivery", sub, len(ents))
		}
	}
	mb, err := OpenMailbox(root)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(mb.Messages()); n != 0 {
		t.Errorf("a reader sees %d messages after a crash mid-delivery", n)
	}
}

// crashChild delivers stdin; the parent kills it before stdin ends.
func crashChild(t *testing.T, root string) {
	_, err := (&Deliverer{Host: "crash"}).Deliver(os.Stdin, []Target{{Root: root}})
	t.Fatalf("child was not killed mid-delivery (Deliver returned %v)", err)
}

// tmpBytes is the total size of the files in root/tmp.
func tmpBytes(t *testing.T, root string) int64 {
	ents, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
