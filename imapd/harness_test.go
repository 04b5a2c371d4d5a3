package imapd

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchHarness runs the steps of scripts/bench-imap.sh against an
// in-process Server on a copy of the Maildir named by
// MAILROOM_HARNESS_MAILDIR (e.g. a `mailbench mkmaildir` fixture), so that
// `go test -cpuprofile` shows where imapd's time goes without bcrypt,
// process start-up or another server in the profile. Skipped without the
// variable.
func TestBenchHarness(t *testing.T) {
	src := os.Getenv("MAILROOM_HARNESS_MAILDIR")
	if src == "" {
		t.Skip("MAILROOM_HARNESS_MAILDIR not set")
	}
	e := newTestEnv(t, nil)
	if out, err := exec.Command("cp", "-a", src+"/.", e.root()).CombinedOutput(); err != nil {
		t.Fatalf("copy fixture: %v: %s", err, out)
	}
	c := e.login()
	r := &harnessReader{t: t, br: bufio.NewReaderSize(c.conn, 64<<10)}
	// CPU time (user+system, the whole test process: server and this
	// client) says more than wall time on a shared machine.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	// Allocations (server and client) do not depend on the load at all.
	var ms runtime.MemStats
	allocs := func() (uint64, uint64) {
		runtime.ReadMemStats(&ms)
		return ms.Mallocs, ms.TotalAlloc
	}
	step := func(name, tag, cmd string) int {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		m0, b0 := allocs()
		start, startCPU := time.Now(), cpu()
		c.send(tag + " " + cmd + "\r\n")
		n := r.until(tag)
		wall, used := time.Since(start), cpu()-startCPU
		m1, b1 := allocs()
		t.Logf("%-40s %8.4f s wall %8.4f s cpu %9d allocs %7.1f MB  %d responses", name, wall.Seconds(), used.Seconds(), m1-m0, float64(b1-b0)/1e6, n)
		return n
	}
	step("SELECT (cold)", "s1", "SELECT INBOX")
	step("UNSELECT", "u", "UNSELECT")
	step("SELECT (warm)", "s2", "SELECT INBOX")
	n := step("FETCH 1:* (UID FLAGS)", "f1", "FETCH 1:* (UID FLAGS)") - 1
	step("UID FETCH 1:* (ENVELOPE) first", "f2", "UID FETCH 1:* (ENVELOPE)")
	step("UID FETCH 1:* (ENVELOPE) second", "f3", "UID FETCH 1:* (ENVELOPE)")
	step("HEADER.FIELDS (FROM SUBJECT DATE)", "f4", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])")
	step("UID SEARCH SUBJECT invoice", "s", `UID SEARCH SUBJECT "invoice"`)
	step("UID STORE 1:* +FLAGS (\\Seen)", "st1", `UID STORE 1:* +FLAGS (\Seen)`)
	var spread []string
	for i := 0; i < 1000; i++ {
		spread = append(spread, strconv.Itoa(1+i*n/1000))
	}
	step("UID FETCH 1000 BODY.PEEK[]", "f5", "UID FETCH "+strings.Join(spread, ",")+" (BODY.PEEK[])")
	var del []string
	for i := 0; i < 1000; i++ {
		del = append(del, strconv.Itoa(2+i*n/1000))
	}
	step("UID STORE 1000 +FLAGS.SILENT (\\Deleted)", "st2", "UID STORE "+strings.Join(del, ",")+` +FLAGS.SILENT (\Deleted)`)
	step("EXPUNGE", "x", "EXPUNGE")
	step("LOGOUT", "z", "LOGOUT")
}

// harnessReader reads responses without keeping them, following literals.
type harnessReader struct {
	t  *testing.T
	br *bufio.Reader
}

// until reads up to the response tagged tag, which must be OK, and
// returns how many responses came.
func (r *harnessReader) until(tag string) int {
	for n := 1; n < 10_000_000; n++ {
		line, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		for {
			size, ok := literalSize(strings.TrimRight(line, "\r\n"))
			if !ok {
				break
			}
			if _, err := io.CopyN(io.Discard, r.br, int64(size)); err != nil {
				r.t.Fatalf("literal: %v", err)
			}
			if line, err = r.br.ReadString('\n'); err != nil {
				r.t.Fatalf("read: %v", err)
			}
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				r.t.Fatalf("%s", line)
			}
			return n
		}
	}
	r.t.Fatal("too many responses")
	return 0
}
