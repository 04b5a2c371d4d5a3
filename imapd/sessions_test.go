package imapd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStoreCanonicalAndExpungeOrder(t *testing.T) {
	e := newTestEnv(t, nil)
	for i := 0; i < 5; i++ {
		deliver(t, e.root(), "", fixture1)
	}
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	replay(t, c, []step{
		{`a STORE 1 +FLAGS (\seen \FLAGGED)`, []string{`* 1 FETCH (FLAGS (\Flagged \Seen \Recent))`, "a OK STORE completed"}},
		{`b UID STORE 2 FLAGS.SILENT (\deleted $Todo)`, []string{`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Todo)`, `* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Todo \*)] flags permitted`, "b OK STORE completed"}},
		{`c STORE 3:4 +FLAGS (\Deleted)`, []string{`* 3 FETCH (FLAGS (\Deleted \Recent))`, `* 4 FETCH (FLAGS (\Deleted \Recent))`, "c OK STORE completed"}},
		{`d STORE 1 +FLAGS (\Recent)`, []string{`d BAD \Recent cannot be stored`}},
		// Without CONDSTORE, only the messages the STORE changed get a
		// FETCH (as Dovecot answers): 1 was \Seen already.
		{`d2 STORE 1,5 +FLAGS (\Seen)`, []string{`* 5 FETCH (FLAGS (\Seen \Recent))`, "d2 OK STORE completed"}},
		{`d3 STORE 1,5 +FLAGS (\Seen)`, []string{"d3 OK STORE completed"}},
		{`d4 STORE 5 -FLAGS.SILENT (\Seen)`, []string{"d4 OK STORE completed"}},
		{"e EXPUNGE", []string{"* 2 EXPUNGE", "* 2 EXPUNGE", "* 2 EXPUNGE", "e OK EXPUNGE completed"}},
		{"f FETCH 1:* UID", []string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 5)", "f OK FETCH completed"}},
		{`g SEARCH SEEN`, []string{"* SEARCH 1", "g OK SEARCH completed"}},
		{`h UID SEARCH RETURN (MIN MAX COUNT ALL) NOT SEEN`, []string{`* ESEARCH (TAG "h") UID MIN 5 MAX 5 COUNT 1 ALL 5`, "h OK SEARCH completed"}},
		{`i SEARCH SUBJECT "HELLO" BODY "second" LARGER 100`, []string{"* SEARCH 1 2", "i OK SEARCH completed"}},
		{`j SEARCH OR FROM nobody TEXT "no such text"`, []string{"* SEARCH", "j OK SEARCH completed"}},
		{`k SEARCH CHARSET KOI8-R ALL`, []string{"k NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"}},
	})
	// \Seen is stored as the S flag of the file name.
	var seen int
	for _, d := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(e.root(), d))
		for _, de := range ents {
			if strings.HasSuffix(de.Name(), ",FS") {
				seen++
			}
		}
	}
	if seen != 1 {
		t.Errorf("%d files with F and S flags", seen)
	}
}

// TestTwoSessions: a change in one session reaches the other at the
// points the protocol allows; EXPUNGE waits during FETCH.
func TestTwoSessions(t *testing.T) {
	e := newTestEnv(t, nil)
	for i := 0; i < 3; i++ {
		deliver(t, e.root(), "", fixture1)
	}
	a, b := e.login(), e.login()
	a.cmd("s", "SELECT INBOX")
	b.cmd("s", "SELECT INBOX")
	replay(t, a, []step{{`a1 STORE 1,2 +FLAGS.SILENT (\Deleted)`, []string{"a1 OK STORE completed"}}})
	replay(t, b, []step{{"b1 FETCH 3 UID", []string{
		"* 3 FETCH (UID 3)",
		`* 1 FETCH (UID 1 FLAGS (\Deleted))`, `* 2 FETCH (UID 2 FLAGS (\Deleted))`,
		"b1 OK FETCH completed"}}})
	replay(t, a, []step{{"a2 EXPUNGE", []string{"* 1 EXPUNGE", "* 1 EXPUNGE", "a2 OK EXPUNGE completed"}}})
	// RFC 9051 §7.5.1: no EXPUNGE in answer to FETCH; sequence numbers hold.
	replay(t, b, []step{{"b2 FETCH 3 UID", []string{"* 3 FETCH (UID 3)", "b2 OK FETCH completed"}}})
	replay(t, b, []step{{"b3 NOOP", []string{"* 1 EXPUNGE", "* 1 EXPUNGE", "b3 OK NOOP completed"}}})
	deliver(t, e.root(), "", fixture2)
	replay(t, a, []step{{"a3 NOOP", []string{"* 2 EXISTS", "* 2 RECENT", "a3 OK NOOP completed"}}})
}

// TestIdleSeesDelivery: a delivery by the engine (as deliver, another
// process, would do it) wakes an IDLE session through inotify.
func TestIdleSeesDelivery(t *testing.T) {
	e := newTestEnv(t, nil)
	deliver(t, e.root(), "", fixture1)
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	c.send("i IDLE\r\n")
	must(t, c.line(), "+ ")
	start := time.Now()
	deliver(t, e.root(), "", fixture2)
	must(t, c.line(), "* 2 EXISTS")
	if d := time.Since(start); d > time.Second {
		t.Errorf("IDLE took %v to report a delivery", d)
	}
	must(t, c.line(), "* 2 RECENT")
	// A flag change by another session arrives during IDLE too.
	o := e.login()
	o.cmd("s", "SELECT INBOX")
	o.cmd("x", `STORE 1 +FLAGS (\Flagged)`)
	must(t, c.line(), `* 1 FETCH (UID 1 FLAGS (\Flagged \Recent))`)
	c.send("DONE\r\n")
	must(t, c.line(), "i OK IDLE completed")
}

func TestShutdownSendsBye(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	c.send("i IDLE\r\n")
	must(t, c.line(), "+ ")
	i := e.dial()
	i.line()
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(t.Context()) }()
	must(t, c.line(), "* BYE")
	must(t, i.line(), "* BYE shutting down")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMailboxCommands(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.login()
	replay(t, c, []step{
		{"a CREATE Lists.Go", []string{"a OK CREATE completed"}},
		{"b CREATE Lists.Go", []string{"b NO [ALREADYEXISTS] mailbox already exists"}},
		{`c LIST "" Lists*`, []string{`* LIST (\Noselect \HasChildren) "." Lists`, `* LIST (\HasNoChildren) "." Lists.Go`, "c OK LIST completed"}},
		{`d LIST "" %`, []string{
			`* LIST (\HasNoChildren) "." INBOX`,
			`* LIST (\HasNoChildren \Archive) "." Archive`,
			`* LIST (\HasNoChildren \Drafts) "." Drafts`,
			`* LIST (\HasNoChildren \Junk) "." Junk`,
			`* LIST (\Noselect \HasChildren) "." Lists`,
			`* LIST (\HasNoChildren \Sent) "." Sent`,
			`* LIST (\HasNoChildren \Trash) "." Trash`,
			"d OK LIST completed"}},
		{"e RENAME Lists.Go Lists.Rust", []string{"e OK RENAME completed"}},
		{"f SUBSCRIBE Lists.Rust", []string{"f OK SUBSCRIBE completed"}},
		{`g LIST (SUBSCRIBED) "" Lists.* RETURN (STATUS (MESSAGES UIDNEXT))`, []string{`* LIST (\HasNoChildren \Subscribed) "." Lists.Rust`, `* STATUS Lists.Rust (MESSAGES 0 UIDNEXT 1)`, "g OK LIST completed"}},
		{`h LSUB "" *`, []string{`* LSUB () "." Archive`, `* LSUB () "." Drafts`, `* LSUB () "." Junk`, `* LSUB () "." Lists.Rust`, `* LSUB () "." Sent`, `* LSUB () "." Trash`, "h OK LSUB completed"}},
		{"i STATUS inbox (MESSAGES UNSEEN SIZE RECENT)", []string{`* STATUS INBOX (MESSAGES 0 UNSEEN 0 SIZE 0 RECENT 0)`, "i OK STATUS completed"}},
		{"j DELETE Lists.Rust", []string{"j OK DELETE completed"}},
		{"k DELETE INBOX", []string{"k NO [CANNOT] INBOX cannot be deleted"}},
		{"l RENAME INBOX Old", []string{"l NO [CANNOT] renaming INBOX is not supported"}},
		{"m CREATE &AOk-t&AOk-", []string{"m OK CREATE completed"}},
		{`n LIST "" &AOk-*`, []string{`* LIST (\HasNoChildren) "." &AOk-t&AOk-`, "n OK LIST completed"}},
		{`o ENABLE UTF8=ACCEPT`, []string{"* ENABLED UTF8=ACCEPT", "o OK ENABLE completed"}},
		{`p LIST "" "été"`, []string{`* LIST (\HasNoChildren) "." "été"`, "p OK LIST completed"}},
	})
}

// TestMailboxNameEscapes: no name reaches outside the user's Maildir.
func TestMailboxNameEscapes(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.login()
	for i, name := range []string{`".."`, `"../x"`, `"a/../../b"`, `"/etc"`, `"a..b"`, `".a"`, `"a."`, `"a\\b"`, "{3+}\r\na\x00b", `"a%"`, `"&Jjo"`, `"~root"`} {
		tag := string(rune('a' + i))
		r := c.cmd(tag, "CREATE "+name)
		if strings.HasPrefix(last(r), tag+" OK") && name != `"a."` && name != `"~root"` {
			t.Errorf("CREATE %q: %q", name, r)
		}
	}
	ents, err := os.ReadDir(filepath.Dir(e.root()))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("the domain directory holds %d entries, want only the user's Maildir", len(ents))
	}
}

// TestSearchAddressesAndSubject: SUBJECT, FROM, TO, CC and BCC are answered
// from the cached envelope: display names, addresses, group names, folded
// subjects; case-insensitive; no match on another field's text.
func TestSearchAddressesAndSubject(t *testing.T) {
	e := newTestEnv(t, nil)
	deliver(t, e.root(), "", "From: \"Alice Example\" <alice@example.org>\nTo: undisclosed-recipients:;\n"+
		"Cc: Carol <carol@example.net>\nBcc: dave@example.com\nSubject: Quarterly\n invoice for May\n\nbody\n")
	deliver(t, e.root(), "", "From: bob@example.com\nTo: Alice <alice@example.org>\nSubject: lunch\n\ninvoice in the body only\n")
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	replay(t, c, []step{
		{`a SEARCH SUBJECT "INVOICE"`, []string{"* SEARCH 1", "a OK SEARCH completed"}},
		{`b SEARCH SUBJECT "quarterly invoice"`, []string{"* SEARCH 1", "b OK SEARCH completed"}},
		{`c SEARCH FROM "alice example"`, []string{"* SEARCH 1", "c OK SEARCH completed"}},
		{`d SEARCH FROM "@EXAMPLE.COM"`, []string{"* SEARCH 2", "d OK SEARCH completed"}},
		{`e SEARCH TO "undisclosed"`, []string{"* SEARCH 1", "e OK SEARCH completed"}},
		{`f SEARCH TO "alice@"`, []string{"* SEARCH 2", "f OK SEARCH completed"}},
		{`g SEARCH CC "carol <carol@"`, []string{"* SEARCH 1", "g OK SEARCH completed"}},
		{`h SEARCH BCC "dave"`, []string{"* SEARCH 1", "h OK SEARCH completed"}},
		{`i SEARCH CC "alice"`, []string{"* SEARCH", "i OK SEARCH completed"}},
	})
}
