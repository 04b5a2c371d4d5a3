package deliver

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
	"mailroom/spool"
)

// crashDaemon is deliver --queue as a child process.
type crashDaemon struct {
	cmd    *exec.Cmd
	stderr *testutil.SyncBuffer
	exited chan error
}

func startDaemon(t *testing.T, bin, conf string) *crashDaemon {
	t.Helper()
	d := &crashDaemon{stderr: &testutil.SyncBuffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(bin, "--config", conf, "--queue")
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	return d
}

// kill stops the daemon with sig and waits for it.
func (d *crashDaemon) kill(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	d.cmd.Process.Signal(sig)
	select {
	case err := <-d.exited:
		return err
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("daemon did not exit on %v; stderr:\n%s", sig, d.stderr.String())
		return nil
	}
}

var seqRE = regexp.MustCompile(`(?m)^X-Seq: (\d+)\r?$`)

// TestQueueCrash runs the built daemon while messages flow in and kills
// it with SIGKILL at random moments. After a last, clean run every
// message must be in the Maildir at least once; without kills, exactly
// once.
func TestQueueCrash(t *testing.T) {
	bin := testutil.BuildBinaries(t, "mailroom/cmd/deliver")["deliver"]
	for _, tc := range []struct {
		name  string
		kills int
	}{{"no kills", 0}, {"kill -9", 12}} {
		t.Run(tc.name, func(t *testing.T) {
			runCrash(t, bin, 150, tc.kills)
		})
	}
}

func runCrash(t *testing.T, bin string, n, kills int) {
	e := newMDAEnv(t)
	uid, gid := testutil.ShareMailRoot(t, e.mailRoot)
	conf := e.writeConfigFile("spool_dir = " + e.cfg.SpoolDir + "\nlog_level = debug\n[deliver]\nqueue_concurrency = 4\n")
	// As the daemon leaves it, before anything is written: the group is
	// what smtpd's files must be readable by.
	if err := spool.Setup(e.cfg.SpoolDir); err != nil {
		t.Fatal(err)
	}
	if err := spool.SetOwner(e.cfg.SpoolDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(e.cfg.SpoolDir)
	if err != nil {
		t.Fatal(err)
	}
	// The producer commits n messages while the daemon is killed and
	// restarted.
	var produced sync.WaitGroup
	produced.Add(1)
	go func() {
		defer produced.Done()
		for i := range n {
			env := spool.Envelope{Origin: spool.OriginSMTP, Body: spool.Body7Bit, Sender: "s@sender.test", Recipients: rcpts("a@example.test")}
			w, err := sp.Create(env)
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(w, "Subject: crash %d\r\nX-Seq: %d\r\n\r\n%s\r\n", i, i, strings.Repeat("body ", 200))
			if _, err := w.Commit(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var logs strings.Builder
	for range kills {
		d := startDaemon(t, bin, conf)
		// Let it get somewhere: a random moment within its first 60 ms.
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond) // the kill's timing, not synchronisation
		d.kill(t, syscall.SIGKILL)
		logs.WriteString(d.stderr.String())
	}
	produced.Wait()
	d := startDaemon(t, bin, conf)
	inbox := filepath.Join(e.maildirOf("a"), "new")
	ok := testutil.WaitFor(60*time.Second, func() bool {
		ids, err := sp.List()
		return err == nil && len(ids) == 0 && len(files(t, inbox)) >= n
	})
	if err := d.kill(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: exit %v", err)
	}
	logs.WriteString(d.stderr.String())
	if !ok {
		t.Fatalf("queue not drained; log:\n%s", tail(logs.String(), 4000))
	}
	seen := make([]int, n)
	total := 0
	for _, f := range files(t, inbox) {
		m := seqRE.FindStringSubmatch(readFile(t, f))
		if m == nil {
			t.Fatalf("%s has no X-Seq", f)
		}
		var i int
		fmt.Sscan(m[1], &i)
		seen[i]++
		total++
	}
	for i, c := range seen {
		if c == 0 {
			t.Errorf("message %d lost", i)
		}
	}
	dups := total - n
	t.Logf("%d messages, %d kills: %d duplicates", n, kills, dups)
	if kills == 0 && dups != 0 {
		t.Errorf("%d duplicates without any crash", dups)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", tail(logs.String(), 4000))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
