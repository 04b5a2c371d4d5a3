package sendmail

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailroom/spool"
)

// queueMessage puts a message straight into queue/ with the given states.
func (e *testEnv) queueMessage(sender string, size int, rcpts []string, states []spool.RcptState) spool.ID {
	e.t.Helper()
	sp, err := spool.Open(e.spool)
	if err != nil {
		e.t.Fatal(err)
	}
	env := spool.Envelope{Origin: spool.OriginSMTP, Body: spool.Body7Bit, Sender: sender,
		Arrived: time.Date(2025, 11, 23, 21, 56, 0, 0, time.UTC)}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: r})
	}
	w, err := sp.Create(env)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Write([]byte(strings.Repeat("x", size))); err != nil {
		e.t.Fatal(err)
	}
	id, err := w.Commit()
	if err != nil {
		e.t.Fatal(err)
	}
	if states != nil {
		if err := sp.SetState(id, states); err != nil {
			e.t.Fatal(err)
		}
	}
	return id
}

func TestMailq(t *testing.T) {
	e := newTestEnv(t, "")
	r := e.run("mailq", "")
	r.want(t, 0)
	if r.stdout != "Mail queue is empty\n" {
		t.Errorf("empty queue: %q", r.stdout)
	}

	last := time.Date(2025, 11, 23, 22, 0, 0, 0, time.UTC)
	id1 := e.queueMessage("alice@example.org", 1500, []string{"bob@example.net", "carol@example.com", "dave@example.com"},
		[]spool.RcptState{
			{Status: spool.StatusDeferred, Attempts: 2, Last: last, Next: last.Add(time.Hour), Reason: "451 4.4.1 no answer"},
			{Status: spool.StatusDelivered, Attempts: 1, Last: last},
			{Status: spool.StatusDeferred, Attempts: 2, Last: last, Next: last.Add(time.Hour), Reason: "451 4.4.1 no answer"},
		})
	id2 := e.queueMessage("", 100, []string{"root@example.org"}, nil)

	r = e.run("/usr/bin/mailq", "")
	r.want(t, 0)
	arrived := time.Date(2025, 11, 23, 21, 56, 0, 0, time.UTC).Local().Format("Mon Jan _2 15:04:05")
	indent := strings.Repeat(" ", queueIndent)
	want := "-Queue ID-           --Size-- ----Arrival Time---- -Sender/Recipient-------\n" +
		fmt.Sprintf("%s     1500 %s  alice@example.org\n", id1, arrived) +
		indent + "(451 4.4.1 no answer)\n" +
		indent + "bob@example.net\n" +
		indent + "dave@example.com\n" +
		"\n" +
		fmt.Sprintf("%s      100 %s  MAILER-DAEMON\n", id2, arrived) +
		indent + "root@example.org\n" +
		"\n" +
		"-- 2 Kbytes in 2 Requests.\n"
	if r.stdout != want {
		t.Errorf("mailq\n got:\n%s\nwant:\n%s", r.stdout, want)
	}
	// check_mailq's Postfix parser reads the last line.
	if !regexp.MustCompile(`Kbytes in (\d+) Request`).MatchString(r.stdout) {
		t.Error("no check_mailq trailer")
	}

	r = e.run("sendmail", "", "-bp", "--json")
	r.want(t, 0)
	var entries []queueEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if len(entries) != 2 || entries[0].ID != string(id1) || len(entries[0].Recipients) != 3 ||
		entries[0].Recipients[0].Status != "deferred" || entries[0].Recipients[0].Next == nil ||
		entries[0].Recipients[1].Status != "delivered" || entries[1].Sender != "" || entries[1].Size != 100 {
		t.Errorf("--json: %+v", entries)
	}

	// A drop not yet picked up is listed too (this test owns the spool).
	e.run("sendmail", "x\n", "-i", "root").want(t, 0)
	r = e.run("mailq", "")
	r.want(t, 0)
	if !strings.Contains(r.stdout, "(submitted, not yet picked up)") || !strings.HasSuffix(r.stdout, "in 3 Requests.\n") {
		t.Errorf("mailq with a drop:\n%s", r.stdout)
	}
}

func TestMailqErrors(t *testing.T) {
	e := newTestEnv(t, "")
	e.spool += "-gone"
	e.writeConfig("")
	r := e.run("mailq", "")
	r.want(t, 75)
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "mailq: ") {
		t.Errorf("stderr %q", r.stderr)
	}
	e.run("mailq", "", "root").want(t, 64)
}

func TestNewaliases(t *testing.T) {
	e := newTestEnv(t, "")
	// No file: an empty table, fine.
	r := e.run("newaliases", "")
	r.want(t, 0)
	if !strings.Contains(r.stdout, "0 aliases; no database to build") {
		t.Errorf("stdout %q", r.stdout)
	}
	os.WriteFile(e.alias, []byte("postmaster: root\nroot: alice@example.org\n"), 0o644)
	r = e.run("sendmail", "", "-bi")
	r.want(t, 0)
	if !strings.Contains(r.stdout, "2 aliases") {
		t.Errorf("stdout %q", r.stdout)
	}
	os.WriteFile(e.alias, []byte("postmaster: root\n# fine\nbroken line without colon\n"), 0o644)
	r = e.run("/usr/bin/newaliases", "")
	r.want(t, 65)
	if !strings.Contains(r.stderr, e.alias+":3") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line naming %s:3", r.stderr, e.alias)
	}
}

func TestVerify(t *testing.T) {
	e := newTestEnv(t, "")
	os.WriteFile(e.passwd, []byte("alice@example.org:{PLAIN}x::::::\n"), 0o600)
	os.WriteFile(e.alias, []byte("postmaster: alice\nlist: alice, nobody-here\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"alice@example.org", "postmaster"}, 0, []string{"address alice@example.org", "address postmaster@example.org", "mailbox  alice@example.org"}},
		{[]string{"bob@elsewhere.example"}, 0, []string{"remote"}},
		{[]string{"alice", "ghost"}, 67, []string{"address ghost@example.org", "unknown"}},
		{[]string{"list"}, 67, []string{"nobody-here@example.org"}},
	} {
		r := e.run("sendmail", "", append([]string{"-bv"}, tc.args...)...)
		r.want(t, tc.code)
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("-bv %v: output lacks %q:\n%s", tc.args, w, r.stdout)
			}
		}
	}
	r := e.run("sendmail", "", "-bv", "--json", "alice")
	r.want(t, 0)
	var res []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 1 || res[0]["address"] != "alice@example.org" {
		t.Errorf("-bv --json: %v %s", err, r.stdout)
	}
	os.Remove(e.passwd)
	e.run("sendmail", "", "-bv", "alice").want(t, 75)
}

func TestRunQueueAndConfig(t *testing.T) {
	e := newTestEnv(t, "")
	for _, args := range [][]string{{"-q"}, {"-q30m"}, {"-qRexample.org"}} {
		r := e.run("sendmail", "", args...)
		r.want(t, 0)
		if r.stdout != "" || r.stderr != "" {
			t.Errorf("%v printed %q %q, want silence", args, r.stdout, r.stderr)
		}
	}
	if r := e.run("sendmail", "", "-q", "-v"); !strings.Contains(r.stderr, "delivers continuously") {
		t.Errorf("-q -v: %q", r.stderr)
	}
	r := e.run("sendmail", "", "--check-config")
	r.want(t, 0)
	r = e.run("sendmail", "", "--print-config")
	r.want(t, 0)
	if !strings.Contains(r.stdout, "origin = example.org") {
		t.Errorf("--print-config: %s", r.stdout)
	}
	r = e.run("sendmail", "", "-bd")
	r.want(t, 64)
	if !strings.Contains(r.stderr, "smtpd(8)") {
		t.Errorf("-bd: %q", r.stderr)
	}
	os.RemoveAll(e.spool)
	e.run("sendmail", "", "-q").want(t, 75)
}
