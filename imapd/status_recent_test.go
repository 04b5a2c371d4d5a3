package imapd

import (
	"testing"
)

// TestStatusRecent: STATUS RECENT counts what nobody has claimed, across
// processes (two Servers on one Maildir), without claiming it, plus what
// the asking session claimed itself; IMAP4rev2 has no RECENT item.
func TestStatusRecent(t *testing.T) {
	e := condstoreEnv(t) // three messages in INBOX
	a, b := e.login(), e.otherProcess().login()
	steps := []struct {
		c    *client
		cmd  string
		want []string
		then func()
	}{
		{a, "a1 STATUS INBOX (RECENT MESSAGES)", []string{"* STATUS INBOX (RECENT 3 MESSAGES 3)", "a1 OK STATUS completed"}, nil},
		// Asking does not claim: still 3, and b's SELECT gets all three.
		{a, "a2 STATUS INBOX (RECENT)", []string{"* STATUS INBOX (RECENT 3)", "a2 OK STATUS completed"}, nil},
		{b, "b1 SELECT INBOX", []string{"<*>", "<*>", "* 3 EXISTS", "* 3 RECENT", "<*>", "<*>", "<*>", "<*>", "b1 OK [READ-WRITE] SELECT completed"}, func() {
			deliver(t, e.root(), "", fixture1)
			deliver(t, e.root(), "", fixture1)
		}},
		// b (another process) claimed 1:3; 4 and 5 are nobody's yet.
		{a, "a3 STATUS INBOX (RECENT MESSAGES)", []string{"* STATUS INBOX (RECENT 2 MESSAGES 5)", "a3 OK STATUS completed"}, nil},
		// b's own three and the two unclaimed; then b claims them.
		{b, "b2 STATUS INBOX (RECENT)", []string{"* STATUS INBOX (RECENT 5)", "* 5 EXISTS", "* 5 RECENT", "b2 OK STATUS completed"}, nil},
		{a, "a4 STATUS INBOX (RECENT)", []string{"* STATUS INBOX (RECENT 0)", "a4 OK STATUS completed"}, nil},
		{a, "a5 ENABLE IMAP4rev2", []string{"* ENABLED IMAP4rev2", "a5 OK ENABLE completed"}, nil},
		{a, "a6 STATUS INBOX (RECENT)", []string{"a6 BAD unknown STATUS item RECENT"}, nil},
	}
	for _, st := range steps {
		replay(t, st.c, []step{{st.cmd, st.want}})
		if st.then != nil {
			st.then()
		}
	}
}

// TestExamineRecent: EXAMINE shows as \Recent the messages nobody has
// claimed, without claiming them (RFC 3501 §6.3.2: EXAMINE must not make
// messages lose \Recent), here and in another process.
func TestExamineRecent(t *testing.T) {
	e := condstoreEnv(t) // three messages in INBOX
	a, b := e.login(), e.otherProcess().login()
	examine := func(tag, recent string) step {
		return step{tag + " EXAMINE INBOX", []string{"<*>", "<*>", "<*>", "* " + recent + " RECENT", "<*>", "<*>", "<*>", "<*>", tag + " OK [READ-ONLY] EXAMINE completed"}}
	}
	replay(t, a, []step{
		examine("a1", "3"),
		{"a2 FETCH 1 (FLAGS)", []string{`* 1 FETCH (FLAGS (\Recent))`, "a2 OK FETCH completed"}},
	})
	replay(t, b, []step{{"b1 SELECT INBOX", []string{"<*>", "<*>", "<*>", "* 3 RECENT", "<*>", "<*>", "<*>", "<*>", "b1 OK [READ-WRITE] SELECT completed"}}})
	deliver(t, e.root(), "", fixture1)
	replay(t, a, []step{
		examine("a3", "1"), // b claimed 1:3; 4 is nobody's yet
		{"a4 FETCH 3:4 (FLAGS)", []string{`* 3 FETCH (FLAGS ())`, `* 4 FETCH (FLAGS (\Recent))`, "a4 OK FETCH completed"}},
	})
	replay(t, b, []step{{"b2 NOOP", []string{"* 4 EXISTS", "* 4 RECENT", "b2 OK NOOP completed"}}})
}
