package deliver

import (
	"errors"
	"strings"
	"testing"

	"mailroom/internal/config"
)

// TestQueueIDOption: --queue-id takes an MTA's queue id for one message
// and refuses what a log search would have to quote, and --queue.
func TestQueueIDOption(t *testing.T) {
	tests := []struct {
		args []string
		want string // QueueID, or "" with usage set
		bad  bool
	}{
		{[]string{"--queue-id", "4FZ2Xs1Qx3z9sQ", "a@example.test"}, "4FZ2Xs1Qx3z9sQ", false},
		{[]string{"--queue-id=1rKcXy-0007Qk-2F", "a@example.test"}, "1rKcXy-0007Qk-2F", false},
		{[]string{"a@example.test", "--queue-id", "A1B2C3"}, "A1B2C3", false},
		{[]string{"--queue-id", "", "a@example.test"}, "", true},
		{[]string{"--queue-id", "id with space", "a@example.test"}, "", true},
		{[]string{"--queue-id", "x=y", "a@example.test"}, "", true},
		{[]string{"--queue-id", "a\nb", "a@example.test"}, "", true},
		{[]string{"--queue-id", strings.Repeat("a", maxQueueID+1), "a@example.test"}, "", true},
		{[]string{"--queue-id", strings.Repeat("a", maxQueueID), "a@example.test"}, strings.Repeat("a", maxQueueID), false},
		{[]string{"--queue", "--queue-id", "X1"}, "", true},
		{[]string{"--queue-id"}, "", true},
	}
	for _, tc := range tests {
		o, err := ParseArgs(tc.args)
		if tc.bad {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("ParseArgs(%q): err %v, want a usage error", tc.args, err)
			}
			continue
		}
		if err != nil || o.QueueID != tc.want {
			t.Errorf("ParseArgs(%q) = %q, %v; want %q", tc.args, o.QueueID, err, tc.want)
		}
	}
}

// TestQueueIDLogged: every line of a run given --queue-id carries it as
// msgid=, right after msg=, on success and on failure alike; without the
// option no line has msgid=.
func TestQueueIDLogged(t *testing.T) {
	e := newMDAEnv(t)
	r := e.runString(simpleMsg, "-f", "s@sender.test", "--queue-id", "4FZ2Xs1Qx3z9sQ", "a@example.test", "nobody@example.test")
	if r.code == ExitOK {
		t.Fatalf("exit 0 with an unknown recipient; stderr %q", r.stderr)
	}
	r = e.runWithLogger(nil, simpleMsg, "-v", "-f", "s@sender.test", "--queue-id", "4FZ2Xs1Qx3z9sQ", "a@example.test", "nobody@example.test")
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "msg=") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("want a sent and a bounced delivery line, got:\n%s", r.stderr)
	}
	for _, l := range lines {
		if !strings.Contains(l, " msg=delivery msgid=4FZ2Xs1Qx3z9sQ from=s@sender.test ") {
			t.Errorf("line lacks msgid=4FZ2Xs1Qx3z9sQ after msg=delivery: %s", l)
		}
	}
	r = e.runString(simpleMsg, "-f", "s@sender.test", "a@example.test")
	if r.code != ExitOK || !strings.Contains(r.stderr, "msg=delivery") || strings.Contains(r.stderr, "msgid=") {
		t.Errorf("without --queue-id: exit %d, log %q: want a delivery line without msgid", r.code, r.stderr)
	}
}

// TestRelayOf: every queue delivery line has relay=: the server that
// answered, local for a local domain's recipient, none for a remote one
// no server answered for.
func TestRelayOf(t *testing.T) {
	cfg := config.Default()
	cfg.Domains = []string{"example.test"}
	q := &Queue{}
	q.conf.Store(cfg)
	tests := []struct {
		rcpt string
		a    rcptAttempt
		want string
	}{
		{"a@example.test", rcptAttempt{mailbox: "a@example.test"}, "local"},
		{"nobody@Example.TEST", rcptAttempt{}, "local"},             // unknown user: refused locally
		{"list@example.test", rcptAttempt{expanded: true}, "local"}, // an alias passed on
		{"x@example.test.", rcptAttempt{}, "local"},
		{"b@far.test", rcptAttempt{relay: "mx.far.test[192.0.2.1]:25"}, "mx.far.test[192.0.2.1]:25"},
		{"b@far.test", rcptAttempt{}, "none"},
		{"alias@other.test", rcptAttempt{mailbox: "a@example.test"}, "local"},
	}
	for _, tc := range tests {
		if got := q.relayOf(tc.rcpt, tc.a); got != tc.want {
			t.Errorf("relayOf(%q, %+v) = %q, want %q", tc.rcpt, tc.a, got, tc.want)
		}
	}
}
