package imapd

import (
	"slices"
	"testing"

	"mailroom/maildir"
)

// TestStoreUnchangedSinceRace: two imapd processes (two Servers) on one
// Maildir. Server b stores a flag on message 2 after a's session last
// synced and just before a's conditional STORE reaches the engine (the
// test hook runs there, where the old check-then-rename let it slip in).
// a's STORE must report [MODIFIED 2] and leave b's change alone
// (RFC 7162 §3.1.3).
func TestStoreUnchangedSinceRace(t *testing.T) {
	e := condstoreEnv(t)
	a, b := e.login(), e.otherProcess().login()
	h0 := grab(t, a.cmd("s", "SELECT INBOX (CONDSTORE)"), highestRe)
	b.cmd("s", "SELECT INBOX")
	var hooked []string
	storeIfHook = func() {
		if hooked == nil {
			hooked = b.cmd("b1", `STORE 2 +FLAGS (\Flagged)`)
		}
	}
	t.Cleanup(func() { storeIfHook = nil })
	replay(t, a, []step{
		{"a1 STORE 1:3 (UNCHANGEDSINCE " + itoa(h0) + `) +FLAGS (\Seen)`, []string{
			`* 1 FETCH (UID 1 FLAGS (\Seen \Recent) MODSEQ (<*>))`,
			`* 3 FETCH (UID 3 FLAGS (\Seen \Recent) MODSEQ (<*>))`,
			"a1 OK [MODIFIED 2] conditional STORE failed"}},
	})
	if len(hooked) == 0 || !slices.Contains(hooked, "b1 OK STORE completed") {
		t.Fatalf("b's STORE: %q", hooked)
	}
	// On disk: a's \Seen on 1 and 3, b's \Flagged alone on 2.
	mb, err := maildir.OpenMailbox(e.root())
	if err != nil {
		t.Fatal(err)
	}
	want := []maildir.Flags{maildir.FlagSeen, maildir.FlagFlagged, maildir.FlagSeen}
	for i, m := range mb.Messages() {
		if m.Name.Flags != want[i] {
			t.Errorf("uid %d flags %v, want %v", m.UID, m.Name.Flags, want[i])
		}
	}
	// a learns of b's change as an ordinary update.
	replay(t, a, []step{
		{"a2 NOOP", []string{`* 2 FETCH (UID 2 FLAGS (\Flagged \Recent) MODSEQ (<*>))`, "a2 OK NOOP completed"}},
	})
}
