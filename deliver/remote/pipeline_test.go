package remote

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// connCommands is the transcript of connection n, without the "n: ".
func connCommands(s *fakeServer, n int) []string {
	var out []string
	prefix := strconv.Itoa(n) + ": "
	for _, c := range s.commands() {
		if rest, ok := strings.CutPrefix(c, prefix); ok {
			out = append(out, rest)
		}
	}
	return out
}

// waitEnded waits for the fake server to finish connection n's session.
func waitEnded(t *testing.T, s *fakeServer, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-s.ended:
			if got == n {
				return
			}
		case <-deadline:
			t.Fatalf("connection %d still open after 10s", n)
		}
	}
}

// A pipelining peer gets MAIL, every RCPT and DATA in one write, before
// it has answered any of them (RFC 2920 §3.1); a refused recipient is
// still decided by its own reply.
func TestPipelinedTranscript(t *testing.T) {
	srv := newFakeServer(t)
	srv.holdGroup = true
	srv.rcpt = func(addr string) string {
		if strings.HasPrefix(addr, "nobody") {
			return "550 5.1.1 no such user"
		}
		return "250 2.1.5 ok"
	}
	srv.start()
	h := newHarness(t, Options{})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net", "nobody@example.net", "c@example.net"))
	wantResult(t, res[0], sent, "2.0.0")
	wantResult(t, res[1], perm, "5.1.1")
	wantResult(t, res[2], sent, "2.0.0")
	if res[1].Reply != "550 5.1.1 no such user" {
		t.Errorf("refused recipient's reply %q", res[1].Reply)
	}
	srv.mu.Lock()
	groups := slices.Clone(srv.groups)
	srv.mu.Unlock()
	wantGroup := []string{"MAIL FROM:<a@sender.test> BODY=8BITMIME SIZE=" + strconv.Itoa(len(testBody)), "RCPT TO:<b@example.net>",
		"RCPT TO:<nobody@example.net>", "RCPT TO:<c@example.net>", "DATA"}
	if len(groups) != 1 || !slices.Equal(groups[0].cmds, wantGroup) {
		t.Fatalf("groups %+v, want one: %q", groups, wantGroup)
	}
	if !groups[0].oneRead {
		t.Error("the group did not arrive in one segment")
	}
	msgs := srv.messages()
	if len(msgs) != 1 || msgs[0].data != testBody || len(msgs[0].rcpts) != 2 {
		t.Errorf("messages %+v", msgs)
	}
}

// A peer without PIPELINING gets one command at a time: the client never
// writes before it has the reply to the command before.
func TestNonPipeliningTranscript(t *testing.T) {
	srv := newFakeServer(t)
	srv.ext = []string{"8BITMIME", "ENHANCEDSTATUSCODES"}
	srv.start()
	h := newHarness(t, Options{})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net", "c@example.net"))
	wantResult(t, res[0], sent, "2.0.0")
	wantResult(t, res[1], sent, "2.0.0")
	h.tr.Close()
	waitEnded(t, srv, 1)
	want := []string{"EHLO client.test", "MAIL FROM:<a@sender.test> BODY=8BITMIME", "RCPT TO:<b@example.net>",
		"RCPT TO:<c@example.net>", "DATA", "QUIT"}
	if got := connCommands(srv, 1); !slices.Equal(got, want) {
		t.Errorf("transcript %q, want %q", got, want)
	}
	srv.mu.Lock()
	early := srv.early
	srv.mu.Unlock()
	if early != 0 {
		t.Errorf("%d commands written before the reply to the one before", early)
	}
	if msgs := srv.messages(); len(msgs) != 1 || msgs[0].data != testBody {
		t.Errorf("messages %+v", msgs)
	}
}

// A reused connection gets RSET, not a second EHLO: the extensions
// still hold (RFC 5321 §4.1.1.5), so the second MAIL still has them.
func TestReuseWithoutSecondEHLO(t *testing.T) {
	srv := newFakeServer(t).start()
	h := newHarness(t, Options{IdleTimeout: time.Minute})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	for range 2 {
		wantResult(t, h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))[0], sent, "2.0.0")
	}
	h.tr.Close()
	waitEnded(t, srv, 1)
	mail := "MAIL FROM:<a@sender.test> BODY=8BITMIME SIZE=" + strconv.Itoa(len(testBody))
	want := []string{"EHLO client.test", mail, "RCPT TO:<b@example.net>", "DATA",
		"RSET", mail, "RCPT TO:<b@example.net>", "DATA", "QUIT"}
	if got := connCommands(srv, 1); !slices.Equal(got, want) {
		t.Errorf("transcript %q, want %q", got, want)
	}
	if n := srv.connCount(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// Every recipient refused in a pipelined group: the peer refuses DATA
// (RFC 2920 §3.1), no message is sent, and the session stays usable; a
// peer that takes DATA anyway gets a lone ".".
func TestPipelinedAllRecipientsRefused(t *testing.T) {
	for _, dataAlways := range []bool{false, true} {
		srv := newFakeServer(t)
		srv.dataAlways = dataAlways
		srv.rcpt = func(string) string { return "550 5.1.1 no such user" }
		srv.start()
		h := newHarness(t, Options{IdleTimeout: time.Minute})
		exampleNet(h)
		h.route("192.0.2.1:25", srv)
		res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "x@example.net", "y@example.net"))
		wantResult(t, res[0], perm, "5.1.1")
		wantResult(t, res[1], perm, "5.1.1")
		for _, m := range srv.messages() {
			if m.data != "" {
				t.Errorf("dataAlways %v: message data sent: %+v", dataAlways, m)
			}
		}
		if h.tr.pool.idleCount() != 1 {
			t.Errorf("dataAlways %v: session not kept for reuse", dataAlways)
		}
		cmds := connCommands(srv, 1)
		if len(cmds) < 5 || cmds[4] != "DATA" || !slices.Contains(cmds, "RSET") {
			t.Errorf("dataAlways %v: transcript %q", dataAlways, cmds)
		}
	}
}
