package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const (
	writerEnvDir = "MAILROOM_SPOOL_WRITER_DIR"
	writerEnvN   = "MAILROOM_SPOOL_WRITER_N"
)

// TestWriterChild commits messages (every third through the maildrop, as
// sendmail would) and prints "<id> <body>" for each, as soon as it is
// acknowledged.
func TestWriterChild(t *testing.T) {
	dir := os.Getenv(writerEnvDir)
	if dir == "" {
		t.Skip("only run as a child of TestConcurrentWritersOneConsumer")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := os.Getenv(writerEnvN)
	for i := 0; i < writerMessages; i++ {
		body := fmt.Sprintf("writer-%s-message-%d", name, i)
		var id ID
		if i%3 == 2 {
			w, err := s.Drop(dropEnvelope())
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(body))
			id, err = w.Commit()
			if err != nil {
				t.Fatal(err)
			}
		} else {
			id = commit(t, s, smtpEnvelope(), []byte(body))
		}
		fmt.Printf("ack %s %s\n", id, body)
	}
}

const (
	writerProcs    = 4
	writerMessages = 30
)

// TestConcurrentWritersOneConsumer runs several writer processes at once
// while this process consumes, as deliver will: pick up drops, read each
// message, mark it delivered, remove it. Every acknowledged message must
// be consumed exactly once, with the body its writer wrote.
func TestConcurrentWritersOneConsumer(t *testing.T) {
	s := newSpool(t)
	type child struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	children := make([]*child, writerProcs)
	for i := range children {
		c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestWriterChild$", "-test.count=1")}
		c.cmd.Env = append(os.Environ(), writerEnvDir+"="+s.Dir(), fmt.Sprintf("%s=%d", writerEnvN, i))
		c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = c
	}
	exited := make(chan error, writerProcs)
	for _, c := range children {
		go func() { exited <- c.cmd.Wait() }()
	}

	consumed := map[string]int{} // body -> times seen
	ids := map[ID]bool{}
	running := writerProcs
	deadline := time.Now().Add(60 * time.Second)
	for pass := 0; ; pass++ {
		if time.Now().After(deadline) || pass > 100000 {
			t.Fatalf("consumer gave up; %d writers still running", running)
		}
		// Decide whether this pass is the last one before looking, so
		// nothing acknowledged after the look can be missed.
		for done := false; !done && running > 0; {
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("a writer failed: %v", err)
				}
				running--
			default:
				done = true
			}
		}
		last := running == 0
		n := consumeOnce(t, s, consumed, ids)
		if last && n == 0 {
			break
		}
		if n == 0 {
			time.Sleep(2 * time.Millisecond) // nothing yet: poll, as without inotify
		}
	}
	// Every acknowledged message was consumed once, as it was written.
	acked := 0
	for _, c := range children {
		sc := bufio.NewScanner(bytes.NewReader(c.out.Bytes()))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ack" {
				continue
			}
			acked++
			if consumed[f[2]] != 1 {
				t.Errorf("message %s (%s) consumed %d times", f[1], f[2], consumed[f[2]])
			}
			if !ids[ID(f[1])] {
				t.Errorf("acknowledged id %s never consumed", f[1])
			}
		}
	}
	if want := writerProcs * writerMessages; acked != want || len(consumed) != want {
		t.Errorf("%d acknowledged, %d consumed, want %d", acked, len(consumed), want)
	}
	for _, d := range []string{dirTmp, dirQueue, dirState, dirTrash, dirMaildrop} {
		if n := entries(t, s.path(d)); len(n) != 0 {
			t.Errorf("%s/ holds %v at the end", d, n)
		}
	}
}

// consumeOnce does one consumer pass and returns how many messages it
// finished.
func consumeOnce(t *testing.T, s *Spool, consumed map[string]int, ids map[ID]bool) int {
	t.Helper()
	drops, err := s.ListMaildrop()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range drops {
		if _, err := s.Pickup(id); err != nil && !errors.Is(err, ErrNotReady) {
			t.Fatalf("pickup %s: %v", id, err)
		}
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range list {
		m, err := s.Message(id)
		if err != nil {
			t.Fatalf("message %s: %v", id, err)
		}
		consumed[string(readData(t, m))]++
		ids[id] = true
		states := make([]RcptState, len(m.States))
		for i := range states {
			states[i] = RcptState{Status: StatusDelivered, Attempts: 1, Last: time.Now()}
		}
		if err := s.SetState(id, states); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(id); err != nil {
			t.Fatal(err)
		}
	}
	return len(list)
}
