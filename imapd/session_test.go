package imapd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestShutdownFinishesArrivingCommand: on Shutdown an APPEND whose
// literal is still arriving is read to its end and stored, then the
// session gets BYE; an IDLE session gets BYE at once.
func TestShutdownFinishesArrivingCommand(t *testing.T) {
	e := newTestEnv(t, nil)
	idle := e.login()
	must(t, last(idle.cmd("s", "SELECT INBOX")), "s OK")
	idle.send("i IDLE\r\n")
	must(t, idle.line(), "+ ")

	app := e.login()
	body := "Subject: arriving\r\n\r\n" + strings.Repeat("x", 40<<10) + "\r\n"
	app.send(fmt.Sprintf("a APPEND INBOX {%d}\r\n", len(body)))
	must(t, app.line(), "+ ")
	app.send(body[:len(body)/2])
	// Shutdown must find the session blocked in the literal's read, so
	// that its interrupt cuts that read.
	waitGoroutine(t, "wire.(*LiteralReader).Read", "[IO wait")

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- e.srv.Shutdown(ctx) }()
	must(t, idle.line(), "* BYE")
	// The IDLE session's BYE means Shutdown has begun: the rest of the
	// literal arrives after it.
	app.send(body[len(body)/2:] + "\r\n")
	r := app.until("a")
	must(t, last(r), "a OK")
	must(t, app.line(), "* BYE")
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	// Stored: a new session would see it, but the server is gone; the
	// Maildir holds it.
	if n := countMessages(t, e.root()); n != 1 {
		t.Fatalf("%d messages in the Maildir after the APPEND, want 1", n)
	}
}

// countMessages counts the files in a Maildir's new/ and cur/.
func countMessages(t *testing.T, root string) int {
	t.Helper()
	n := 0
	for _, d := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		n += len(ents)
	}
	return n
}

// waitGoroutine waits (bounded) until some goroutine's stack holds frame
// and its header state (such as "[IO wait"): a goroutine parked there.
func waitGoroutine(t *testing.T, frame, state string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(ioTimeout)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, state) && strings.Contains(g, frame) {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine parked in %s (%s) within %v", frame, state, ioTimeout)
}
