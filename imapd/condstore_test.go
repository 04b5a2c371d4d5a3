package imapd

import (
	"context"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"mailroom/imapd/wire"
	"mailroom/internal/testutil"
)

var (
	highestRe     = regexp.MustCompile(`\[HIGHESTMODSEQ (\d+)\]`)
	uidValidityRe = regexp.MustCompile(`\[UIDVALIDITY (\d+)\]`)
	modseqRe      = regexp.MustCompile(`MODSEQ \((\d+)\)`)
)

// grab returns the first number captured by re in lines.
func grab(t *testing.T, lines []string, re *regexp.Regexp) uint64 {
	t.Helper()
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, err := strconv.ParseUint(m[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("%v in %q", re, lines)
	return 0
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// modseqs returns the MODSEQ of each message of a FETCH 1:* (MODSEQ).
func modseqs(t *testing.T, c *client, tag string) []uint64 {
	t.Helper()
	r := c.cmd(tag, "FETCH 1:* (MODSEQ)")
	must(t, last(r), tag+" OK")
	var out []uint64
	for _, l := range r[:len(r)-1] {
		if m := modseqRe.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			out = append(out, n)
		}
	}
	return out
}

// condstoreEnv is a server with three messages in INBOX.
func condstoreEnv(t *testing.T) *testEnv {
	e := newTestEnv(t, nil)
	for i := 0; i < 3; i++ {
		deliver(t, e.root(), "", fixture1)
	}
	return e
}

func TestEnableCondStoreQResync(t *testing.T) {
	e := condstoreEnv(t)
	c := e.login()
	replay(t, c, []step{
		{"a ENABLE CONDSTORE", []string{"* ENABLED CONDSTORE", "a OK ENABLE completed"}},
		{"b ENABLE CONDSTORE", []string{"* ENABLED", "b OK ENABLE completed"}},
		{"c ENABLE QRESYNC", []string{"* ENABLED QRESYNC", "c OK ENABLE completed"}},
	})
	d := e.login()
	replay(t, d, []step{
		// QRESYNC implies CONDSTORE; each is listed once.
		{"a ENABLE QRESYNC CONDSTORE QRESYNC X-UNKNOWN", []string{"* ENABLED QRESYNC CONDSTORE", "a OK ENABLE completed"}},
		{"b SELECT INBOX (CONDSTORE)", []string{"<*>", "<*>", "* 3 EXISTS", "* 3 RECENT", "<*>", "<*>", "<*>", "* OK [HIGHESTMODSEQ <*>] highest", "b OK [READ-WRITE] SELECT completed"}},
		// CONDSTORE is on: FETCH FLAGS carries MODSEQ.
		{"c FETCH 1 (FLAGS)", []string{`* 1 FETCH (UID 1 FLAGS (\Recent) MODSEQ (<*>))`, "c OK FETCH completed"}},
		// [CLOSED] after QRESYNC, for an IMAP4rev1 client too.
		{"d EXAMINE INBOX", []string{"* OK [CLOSED] previous mailbox closed", "<*>", "<*>", "* 3 EXISTS", "* 0 RECENT", "<*>", "<*>", "<*>", "* OK [HIGHESTMODSEQ <*>] highest", "d OK [READ-ONLY] EXAMINE completed"}},
	})
	// Without QRESYNC there is no [CLOSED] for IMAP4rev1 and QRESYNC is BAD.
	f := e.login()
	replay(t, f, []step{
		{"a SELECT INBOX (QRESYNC (1 1))", []string{"a BAD QRESYNC is not enabled"}},
		{"b EXAMINE INBOX", []string{"<*>", "<*>", "* 3 EXISTS", "* 0 RECENT", "<*>", "<*>", "<*>", "* OK [HIGHESTMODSEQ <*>] highest", "b OK [READ-ONLY] EXAMINE completed"}},
		{"c FETCH 1 (FLAGS)", []string{`* 1 FETCH (FLAGS ())`, "c OK FETCH completed"}},
		{"d EXAMINE INBOX", []string{"<*>", "<*>", "* 3 EXISTS", "* 0 RECENT", "<*>", "<*>", "<*>", "<*>", "d OK [READ-ONLY] EXAMINE completed"}},
		{"e UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", []string{"e BAD QRESYNC is not enabled"}},
	})
}

// TestCondStoreImplicitEnable: the first CONDSTORE enabling command in
// the selected state gets the HIGHESTMODSEQ; later FETCH FLAGS carry
// MODSEQ.
func TestCondStoreImplicitEnable(t *testing.T) {
	for _, enabling := range []string{"FETCH 1 (MODSEQ)", "FETCH 1 (UID) (CHANGEDSINCE 1)", "SEARCH MODSEQ 1", "STATUS INBOX (HIGHESTMODSEQ)", `STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\Seen)`} {
		t.Run(strings.Fields(enabling)[0], func(t *testing.T) {
			e := condstoreEnv(t)
			c := e.login()
			r := c.cmd("s", "SELECT INBOX")
			h := grab(t, r, highestRe)
			r = c.cmd("a", enabling)
			must(t, last(r), "a OK")
			if r[0] != "* OK [HIGHESTMODSEQ "+itoa(h)+"] highest" {
				t.Fatalf("%s: %q", enabling, r)
			}
			r = c.cmd("b", "FETCH 2 (FLAGS)")
			if !modseqRe.MatchString(r[0]) {
				t.Fatalf("no MODSEQ after %s: %q", enabling, r)
			}
			r = c.cmd("c", enabling)
			if strings.Contains(r[0], "HIGHESTMODSEQ") && !strings.HasPrefix(enabling, "STATUS") {
				t.Fatalf("HIGHESTMODSEQ sent twice: %q", r)
			}
		})
	}
}

func TestCondStoreFetchStore(t *testing.T) {
	e := condstoreEnv(t)
	c := e.login()
	r := c.cmd("s", "SELECT INBOX (CONDSTORE)")
	h0 := grab(t, r, highestRe)
	ms := modseqs(t, c, "f0")
	if len(ms) != 3 || slices.Max(ms) > h0 {
		t.Fatalf("MODSEQs %v, HIGHESTMODSEQ %d", ms, h0)
	}
	// A change moves the message's MODSEQ above HIGHESTMODSEQ.
	r = c.cmd("a", `STORE 2 +FLAGS (\Seen)`)
	must(t, last(r), "a OK STORE completed")
	m2 := grab(t, r, modseqRe)
	if m2 <= h0 || !strings.HasPrefix(r[0], `* 2 FETCH (UID 2 FLAGS (\Seen \Recent) MODSEQ (`) {
		t.Fatalf("STORE: %q (HIGHESTMODSEQ was %d)", r, h0)
	}
	replay(t, c, []step{
		// CHANGEDSINCE implies MODSEQ and keeps the changed messages.
		{"b FETCH 1:* (FLAGS) (CHANGEDSINCE " + itoa(h0) + ")", []string{`* 2 FETCH (UID 2 FLAGS (\Seen \Recent) MODSEQ (` + itoa(m2) + `))`, "b OK FETCH completed"}},
		{"c UID FETCH 1:* (UID) (CHANGEDSINCE " + itoa(m2) + ")", []string{"c OK FETCH completed"}},
		// UNCHANGEDSINCE: message 2 changed after h0; 1 and 3 change.
		{"d STORE 1:3 (UNCHANGEDSINCE " + itoa(h0) + `) +FLAGS (\Flagged)`, []string{
			// RFC 7162 §3.1: UID and MODSEQ once CONDSTORE is on.
			`* 1 FETCH (UID 1 FLAGS (\Flagged \Recent) MODSEQ (<*>))`,
			`* 3 FETCH (UID 3 FLAGS (\Flagged \Recent) MODSEQ (<*>))`,
			"d OK [MODIFIED 2] conditional STORE failed"}},
		// UID STORE lists UIDs; .SILENT still reports MODSEQ of the
		// messages it changed (RFC 7162 §3.1.3), none for a no-op.
		{"e UID STORE 1:3 (UNCHANGEDSINCE " + itoa(m2) + `) -FLAGS.SILENT (\Seen)`, []string{
			"* 2 FETCH (UID 2 MODSEQ (<*>))",
			"e OK [MODIFIED 1,3] conditional STORE failed"}},
		{"f STORE 1:3 +FLAGS.SILENT (\\Answered)", []string{
			"* 1 FETCH (UID 1 MODSEQ (<*>))", "* 2 FETCH (UID 2 MODSEQ (<*>))", "* 3 FETCH (UID 3 MODSEQ (<*>))",
			"f OK STORE completed"}},
		// Already so: no new MODSEQ, but the FETCH (MODSEQ) all the same.
		{"g STORE 1:3 +FLAGS.SILENT (\\Answered)", []string{
			"* 1 FETCH (UID 1 MODSEQ (<*>))", "* 2 FETCH (UID 2 MODSEQ (<*>))", "* 3 FETCH (UID 3 MODSEQ (<*>))",
			"g OK STORE completed"}},
		// UNCHANGEDSINCE 0 always fails.
		{"h STORE 1 (UNCHANGEDSINCE 0) -FLAGS (\\Answered)", []string{"h OK [MODIFIED 1] conditional STORE failed"}},
	})
	after := modseqs(t, c, "f1")
	r = c.cmd("st", "STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
	if h := grab(t, r, regexp.MustCompile(`HIGHESTMODSEQ (\d+) `)); h != slices.Max(after) {
		t.Fatalf("STATUS %q, MODSEQs %v", r, after)
	}
	// A read-only mailbox refuses STORE before anything.
	replay(t, c, []step{{"x EXAMINE INBOX", []string{"<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "x OK [READ-ONLY] EXAMINE completed"}}})
	replay(t, c, []step{{"y STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)", []string{"y NO [READ-ONLY] mailbox is read-only"}}})
}

func TestCondStoreSearchAndStatus(t *testing.T) {
	e := condstoreEnv(t)
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	c.cmd("a", `STORE 2 +FLAGS (\Seen)`)
	ms := modseqs(t, c, "b")
	replay(t, c, []step{
		{"c SEARCH MODSEQ " + itoa(ms[1]), []string{"* SEARCH 2 (MODSEQ " + itoa(ms[1]) + ")", "c OK SEARCH completed"}},
		{"d UID SEARCH MODSEQ \"/flags/\\\\seen\" all " + itoa(ms[1]+1), []string{"* SEARCH", "d OK SEARCH completed"}},
		{"e SEARCH MODSEQ 1 NOT SEEN", []string{"* SEARCH 1 3 (MODSEQ " + itoa(max(ms[0], ms[2])) + ")", "e OK SEARCH completed"}},
		{"f SEARCH RETURN (ALL) MODSEQ 1", []string{`* ESEARCH (TAG "f") ALL 1:3 MODSEQ ` + itoa(slices.Max(ms)), "f OK SEARCH completed"}},
		// RFC 4731 §3.2: MIN alone reports the MODSEQ of that message.
		{"g UID SEARCH RETURN (MIN) MODSEQ 1", []string{`* ESEARCH (TAG "g") UID MIN 1 MODSEQ ` + itoa(ms[0]), "g OK SEARCH completed"}},
		{"h SEARCH RETURN (COUNT) MODSEQ " + itoa(slices.Max(ms)+1), []string{`* ESEARCH (TAG "h") COUNT 0`, "h OK SEARCH completed"}},
		{"i STATUS INBOX (MESSAGES HIGHESTMODSEQ)", []string{"* STATUS INBOX (MESSAGES 3 HIGHESTMODSEQ " + itoa(slices.Max(ms)) + ")", "i OK STATUS completed"}},
		{`j LIST "" "INBOX" RETURN (STATUS (HIGHESTMODSEQ))`, []string{`* LIST (<*>) "." INBOX`, "* STATUS INBOX (HIGHESTMODSEQ " + itoa(slices.Max(ms)) + ")", "j OK LIST completed"}},
		{"k SEARCH MODSEQ x", []string{"k BAD <*>"}},
	})
	// IMAP4rev2 always answers ESEARCH.
	d := e.login()
	replay(t, d, []step{
		{"a ENABLE IMAP4rev2", []string{"* ENABLED IMAP4rev2", "a OK ENABLE completed"}},
		{"b EXAMINE INBOX", []string{"<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "b OK [READ-ONLY] EXAMINE completed"}},
		{"c SEARCH MODSEQ " + itoa(ms[1]), []string{"* OK [HIGHESTMODSEQ <*>] highest", `* ESEARCH (TAG "c") ALL 2 MODSEQ ` + itoa(ms[1]), "c OK SEARCH completed"}},
	})
}

// TestQResyncSessions: a change and an expunge in one session reach a
// QRESYNC session as FETCH (UID FLAGS MODSEQ) and VANISHED, only where
// EXPUNGE would be allowed; its own EXPUNGE and MOVE answer VANISHED.
func TestQResyncSessions(t *testing.T) {
	e := condstoreEnv(t)
	deliver(t, e.root(), "", fixture2)
	a, b := e.login(), e.login()
	replay(t, a, []step{{"e ENABLE QRESYNC", []string{"* ENABLED QRESYNC", "e OK ENABLE completed"}}})
	a.cmd("s", "SELECT INBOX")
	b.cmd("s", "SELECT INBOX")
	b.cmd("b1", `STORE 1 +FLAGS (\Seen)`)
	b.cmd("b2", `STORE 3,4 +FLAGS (\Deleted)`)
	b.cmd("b3", "EXPUNGE")
	replay(t, a, []step{
		// No VANISHED during FETCH (RFC 7162 §3.2.10, RFC 9051 §7.5.1).
		{"a1 FETCH 2 (UID)", []string{
			"* 2 FETCH (UID 2 MODSEQ (<*>))",
			`* 1 FETCH (UID 1 FLAGS (\Seen \Recent) MODSEQ (<*>))`,
			// 3 and 4 are gone from the mailbox: their flags no longer
			// matter, their VANISHED waits, and HIGHESTMODSEQ says a
			// value below it (RFC 7162 §3.2).
			"* OK [HIGHESTMODSEQ <*>] expunges pending",
			"a1 OK FETCH completed"}},
		{"a2 NOOP", []string{"* VANISHED 3:4", "a2 OK NOOP completed"}},
		{`a3 STORE 2 +FLAGS.SILENT (\Deleted)`, []string{"* 2 FETCH (UID 2 MODSEQ (<*>))", "a3 OK STORE completed"}},
		{"a4 EXPUNGE", []string{"* VANISHED 2", "a4 OK [HIGHESTMODSEQ <*>] EXPUNGE completed"}},
		{"a5 CREATE Other", []string{"a5 OK CREATE completed"}},
		{"a6 MOVE 1 Other", []string{"* OK [COPYUID <*> 1 1] moved", "* VANISHED 1", "a6 OK [HIGHESTMODSEQ <*>] MOVE completed"}},
	})
	replay(t, b, []step{{"b4 NOOP", []string{"* 2 EXPUNGE", "* 1 EXPUNGE", "b4 OK NOOP completed"}}})
}

// TestQResyncPendingExpunge: a client that saw MODSEQs while an expunge
// was held back and resyncs from the HIGHESTMODSEQ it was told still
// learns of the expunge (RFC 7162 §3.2).
func TestQResyncPendingExpunge(t *testing.T) {
	e := condstoreEnv(t)
	a, b := e.login(), e.login()
	a.cmd("e", "ENABLE QRESYNC")
	uv := grab(t, a.cmd("s", "SELECT INBOX"), uidValidityRe)
	b.cmd("s", "SELECT INBOX")
	b.cmd("b1", `STORE 3 +FLAGS.SILENT (\Deleted)`)
	b.cmd("b2", "EXPUNGE")
	b.cmd("b3", `STORE 1 +FLAGS (\Seen)`)
	r := a.cmd("a1", "FETCH 1:3 (FLAGS)")
	seen := grab(t, r, modseqRe)
	told := grab(t, r, highestRe)
	if told >= seen {
		t.Fatalf("HIGHESTMODSEQ %d not below the MODSEQ %d sent with the expunge pending: %q", told, seen, r)
	}
	c := e.login()
	c.cmd("e", "ENABLE QRESYNC")
	r = c.cmd("s", "SELECT INBOX (QRESYNC ("+itoa(uv)+" "+itoa(told)+"))")
	if !slices.Contains(r, "* VANISHED (EARLIER) 3") {
		t.Fatalf("resync from %d: %q", told, r)
	}
}

// TestQResyncReconnect: a client records UIDVALIDITY and HIGHESTMODSEQ,
// logs out; changes and expunges happen; its next SELECT (QRESYNC ...)
// gets exactly the vanished UIDs and the changed flags.
func TestQResyncReconnect(t *testing.T) {
	e := condstoreEnv(t)
	for i := 0; i < 3; i++ {
		deliver(t, e.root(), "", fixture1)
	}
	a := e.login()
	a.cmd("e", "ENABLE QRESYNC")
	r := a.cmd("s", "SELECT INBOX")
	uv, h := grab(t, r, uidValidityRe), grab(t, r, highestRe)
	a.cmd("z", "LOGOUT")

	b := e.login()
	b.cmd("s", "SELECT INBOX")
	b.cmd("b1", `STORE 2,5 +FLAGS (\Flagged)`)
	b.cmd("b2", `STORE 3,4 +FLAGS (\Deleted)`)
	b.cmd("b3", "EXPUNGE")
	b.cmd("z", "LOGOUT")

	c := e.login()
	qsel := func(tag, params string) []string {
		r := c.cmd(tag, "SELECT INBOX (QRESYNC ("+params+"))")
		must(t, last(r), tag+" OK [READ-WRITE]")
		var out []string
		for _, l := range r {
			if strings.HasPrefix(l, "* VANISHED") || strings.Contains(l, " FETCH ") {
				out = append(out, l)
			}
		}
		return out
	}
	c.cmd("e", "ENABLE QRESYNC")
	want := []string{
		"* VANISHED (EARLIER) 3:4",
		`* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (<*>))`,
		`* 3 FETCH (UID 5 FLAGS (\Flagged) MODSEQ (<*>))`,
	}
	check := func(got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		for i := range got {
			if !golden(want[i]).MatchString(got[i]) {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
	check(qsel("a", itoa(uint64(uv))+" "+itoa(h)), want)
	// Known UIDs limit both the VANISHED and the FETCH responses.
	check(qsel("b", itoa(uint64(uv))+" "+itoa(h)+" 1:3"), []string{"* VANISHED (EARLIER) 3", `* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (<*>))`})
	check(qsel("c", itoa(uint64(uv))+" "+itoa(h)+" 5:6 (1:2 1:2)"), []string{`* 3 FETCH (UID 5 FLAGS (\Flagged) MODSEQ (<*>))`})
	// Below the engine's record (complete=false): every known UID that
	// is gone, and every message as changed (RFC 7162 §3.2.5.1).
	check(qsel("c2", itoa(uint64(uv))+" 1 1:6"), []string{"* VANISHED (EARLIER) 3:4", "<*> FETCH <*>", "<*> FETCH <*>", "<*> FETCH <*>", "<*> FETCH <*>"})
	// seq-match-data: message 3 is still UID 5, so nothing at or below
	// 5 vanished since the client last looked (§3.2.5.2).
	check(qsel("c3", itoa(uint64(uv))+" 1 1:6 (1,2,3 1,2,5)"), []string{"<*> FETCH <*>", "<*> FETCH <*>", "<*> FETCH <*>", "<*> FETCH <*>"})
	check(qsel("c4", itoa(uint64(uv))+" 1 1:6 (1:3 1:3)"), []string{"* VANISHED (EARLIER) 3:4", "<*> FETCH <*>", "<*> FETCH <*>", "<*> FETCH <*>", "<*> FETCH <*>"})
	// Another UIDVALIDITY: the client's cache is void, nothing is sent.
	check(qsel("d", itoa(uint64(uv)+1)+" "+itoa(h)), nil)
	// The current HIGHESTMODSEQ: nothing changed since. (The highest
	// message MODSEQ would not do: the expunges came after.)
	r = c.cmd("f", "SELECT INBOX")
	check(qsel("g", itoa(uint64(uv))+" "+itoa(grab(t, r, highestRe))), nil)
	// UID FETCH (CHANGEDSINCE VANISHED) answers the same question.
	replay(t, c, []step{{"h UID FETCH 1:* (FLAGS) (CHANGEDSINCE " + itoa(h) + " VANISHED)", []string{
		"* VANISHED (EARLIER) 3:4",
		`* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (<*>))`,
		`* 3 FETCH (UID 5 FLAGS (\Flagged) MODSEQ (<*>))`,
		"h OK FETCH completed"}}})
	replay(t, c, []step{
		{"i UID FETCH 4:5 (FLAGS) (CHANGEDSINCE " + itoa(h) + " VANISHED)", []string{
			"* VANISHED (EARLIER) 4",
			`* 3 FETCH (UID 5 FLAGS (\Flagged) MODSEQ (<*>))`,
			"i OK FETCH completed"}},
		{"j FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", []string{"j BAD VANISHED needs UID FETCH"}},
		{"k UID FETCH 1:* (FLAGS) (VANISHED)", []string{"k BAD VANISHED needs CHANGEDSINCE"}},
	})
}

// TestQResyncTwoServers: two Server instances on one Maildir stand for
// two imapd processes: one's STORE and EXPUNGE reach the other's QRESYNC
// session as FETCH (MODSEQ) and VANISHED, with the same MODSEQs.
func TestQResyncTwoServers(t *testing.T) {
	e := condstoreEnv(t)
	a := e.login()
	b := e.otherProcess().login()
	a.cmd("e", "ENABLE QRESYNC")
	a.cmd("s", "SELECT INBOX")
	b.cmd("s", "SELECT INBOX")
	b.cmd("b2", `STORE 2 +FLAGS (\Answered)`)
	r := b.cmd("b3", "FETCH 2 (MODSEQ)")
	m2 := grab(t, r, modseqRe)
	b.cmd("b4", `STORE 3 +FLAGS.SILENT (\Deleted)`)
	b.cmd("b5", "EXPUNGE")
	replay(t, a, []step{{"a1 NOOP", []string{
		"* VANISHED 3",
		`* 2 FETCH (UID 2 FLAGS (\Answered \Recent) MODSEQ (` + itoa(m2) + `))`,
		"a1 OK NOOP completed"}}})
	ra := a.cmd("a2", "STATUS INBOX (HIGHESTMODSEQ)")
	rb := b.cmd("b6", "STATUS INBOX (HIGHESTMODSEQ)")
	if ra[0] != rb[0] {
		t.Fatalf("two processes disagree: %q, %q", ra[0], rb[0])
	}
}

func TestUIDRanges(t *testing.T) {
	present := []uint32{2, 3, 7, 10}
	for _, tc := range []struct {
		known []uidRange
		want  string
	}{
		{[]uidRange{{1, 10}}, "1,4:6,8:9"},
		{[]uidRange{{2, 3}}, ""},
		{[]uidRange{{1, 4294967295}}, "1,4:6,8:9,11:4294967295"},
		{[]uidRange{{8, 8}, {11, 12}}, "8,11:12"},
	} {
		if got := formatRanges(missingFrom(tc.known, present)); got != tc.want {
			t.Errorf("missingFrom(%v) = %q, want %q", tc.known, got, tc.want)
		}
	}
	if got := formatRanges(rangesOf([]uint32{1, 2, 3, 5, 7, 8})); got != "1:3,5,7:8" {
		t.Errorf("rangesOf: %q", got)
	}
}

// TestQResyncIdle: during IDLE, another session's expunge arrives as
// VANISHED and its flag change as FETCH with MODSEQ.
func TestQResyncIdle(t *testing.T) {
	e := condstoreEnv(t)
	c := e.login()
	c.cmd("e", "ENABLE QRESYNC")
	c.cmd("s", "SELECT INBOX")
	c.send("i IDLE\r\n")
	must(t, c.line(), "+ ")
	o := e.login()
	o.cmd("s", "SELECT INBOX")
	o.cmd("a", `STORE 2 +FLAGS (\Flagged)`)
	must(t, c.line(), `* 2 FETCH (UID 2 FLAGS (\Flagged \Recent) MODSEQ (`)
	o.cmd("b", `STORE 1 +FLAGS.SILENT (\Deleted)`)
	must(t, c.line(), `* 1 FETCH (UID 1 FLAGS (\Deleted \Recent) MODSEQ (`)
	o.cmd("c", "EXPUNGE")
	must(t, c.line(), "* VANISHED 1")
	c.send("DONE\r\n")
	must(t, c.line(), "i OK IDLE completed")
	replay(t, c, []step{
		{"f FETCH 1 (UID)", []string{"* 1 FETCH (UID 2 MODSEQ (<*>))", "f OK FETCH completed"}},
		{`g STORE 1:2 +FLAGS.SILENT (\Deleted)`, []string{"* 1 FETCH (UID 2 MODSEQ (<*>))", "* 2 FETCH (UID 3 MODSEQ (<*>))", "g OK STORE completed"}},
		{"h UID EXPUNGE 3", []string{"* VANISHED 3", "h OK [HIGHESTMODSEQ <*>] EXPUNGE completed"}},
	})
}

// FuzzMissingFrom checks the range arithmetic behind VANISHED (EARLIER)
// against a UID-by-UID count on small numbers.
func FuzzMissingFrom(f *testing.F) {
	f.Add("1:10,15", []byte{2, 3, 7})
	f.Add("5,1:3,2:4", []byte{1, 4, 5, 200})
	f.Add("*", []byte{})
	f.Fuzz(func(t *testing.T, set string, present []byte) {
		s, err := wire.ParseSeqSet(set)
		if err != nil || s.Saved {
			return
		}
		const maxUID = 255
		var uids []uint32
		seen := map[uint32]bool{}
		for _, b := range present {
			if b > 0 && !seen[uint32(b)] {
				seen[uint32(b)] = true
				uids = append(uids, uint32(b))
			}
		}
		slices.Sort(uids)
		got := missingFrom(rangesOfSet(s, maxUID), uids)
		var want []uint32
		for u := uint32(1); u <= maxUID; u++ {
			if s.Contains(u, maxUID) && !seen[u] {
				want = append(want, u)
			}
		}
		if formatRanges(got) != formatRanges(rangesOf(want)) {
			t.Fatalf("missingFrom(%q, %v) = %q, want %q", set, uids, formatRanges(got), formatRanges(rangesOf(want)))
		}
	})
}

// TestCondStoreFetchItems: which FETCH responses carry UID and MODSEQ
// once CONDSTORE is on (RFC 7162 §3.1, §3.2.3), and that a STORE that
// changes nothing leaves the MODSEQ alone (§3.1.1).
func TestCondStoreFetchItems(t *testing.T) {
	e := condstoreEnv(t)
	c := e.login()
	replay(t, c, []step{
		{"a ENABLE CONDSTORE", []string{"* ENABLED CONDSTORE", "a OK ENABLE completed"}},
		{"b SELECT INBOX", []string{"<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "<*>", "b OK [READ-WRITE] SELECT completed"}},
		{"c FETCH 1 (MODSEQ)", []string{"* 1 FETCH (UID 1 MODSEQ (<*>))", "c OK FETCH completed"}},
		{"d FETCH 1 (RFC822.SIZE)", []string{"* 1 FETCH (RFC822.SIZE <*>)", "d OK FETCH completed"}},
		{"e UID FETCH 1 (RFC822.SIZE)", []string{"* 1 FETCH (UID 1 RFC822.SIZE <*>)", "e OK FETCH completed"}},
		// FETCH BODY[] sets \Seen: FLAGS, UID and MODSEQ come with it.
		{"f FETCH 2 (BODY[HEADER.FIELDS (SUBJECT)])", []string{"* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {<*>}\r\nSubject: hello world\r\n\r\n FLAGS (\\Seen \\Recent) UID 2 MODSEQ (<*>))", "f OK FETCH completed"}},
		{"g ENABLE QRESYNC", []string{"* ENABLED QRESYNC", "g OK ENABLE completed"}},
		{"h UID FETCH 1 (RFC822.SIZE)", []string{"* 1 FETCH (UID 1 RFC822.SIZE <*> MODSEQ (<*>))", "h OK FETCH completed"}},
	})
	before := modseqs(t, c, "i")
	must(t, last(c.cmd("j", `STORE 1:3 +FLAGS (\Recent-not) -FLAGS (\Flagged)`)), "j BAD")
	must(t, last(c.cmd("k", `STORE 1:3 -FLAGS.SILENT (\Flagged)`)), "k OK")
	if after := modseqs(t, c, "l"); !slices.Equal(before, after) {
		t.Fatalf("a STORE that changed nothing moved MODSEQs %v → %v", before, after)
	}
}

// TestCondStoreEmptyMailbox: an empty mailbox still has a HIGHESTMODSEQ
// (a mod-sequence-value is never 0), and QRESYNC on it sends nothing.
func TestCondStoreEmptyMailbox(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.login()
	c.cmd("e", "ENABLE QRESYNC")
	r := c.cmd("s", "EXAMINE Trash")
	must(t, last(r), "s OK")
	h := grab(t, r, highestRe)
	uv := grab(t, r, uidValidityRe)
	if h == 0 {
		t.Fatalf("HIGHESTMODSEQ 0: %q", r)
	}
	replay(t, c, []step{
		{"a STATUS Trash (HIGHESTMODSEQ)", []string{"* STATUS Trash (HIGHESTMODSEQ " + itoa(h) + ")", "a OK STATUS completed"}},
		{"b EXAMINE Trash (QRESYNC (" + itoa(uv) + " 1 1:10))", []string{"* OK [CLOSED] previous mailbox closed", "<*>", "<*>", "* 0 EXISTS", "* 0 RECENT", "<*>", "<*>", "* OK [HIGHESTMODSEQ " + itoa(h) + "] highest", "b OK [READ-ONLY] EXAMINE completed"}},
		{"c UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", []string{"c OK FETCH completed"}},
		{"d SEARCH MODSEQ 1", []string{"* SEARCH", "d OK SEARCH completed"}},
	})
}

// otherProcess starts a second Server on the same users and Maildirs, as
// a second imapd process would be, and returns an env to dial it.
func (e *testEnv) otherProcess() *testEnv {
	t := e.t
	other := &Server{Users: e.currentUsers, PlaintextAuthOnLoopback: true, AuthDelay: -1,
		Logger: slog.New(slog.NewTextHandler(&testutil.SyncBuffer{}, nil))}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = other.Serve(l, false) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := other.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testEnv{t: t, addr: l.Addr().String()}
}

// TestCondStoreOtherProcess: a conditional STORE and FETCH CHANGEDSINCE
// see a change another process made since the session's last command,
// without a NOOP in between.
func TestCondStoreOtherProcess(t *testing.T) {
	e := condstoreEnv(t)
	a, b := e.login(), e.otherProcess().login()
	a.cmd("s", "SELECT INBOX (CONDSTORE)")
	m2 := modseqs(t, a, "f")[1]
	b.cmd("s", "SELECT INBOX")
	b.cmd("b1", `STORE 2 +FLAGS (\Flagged)`)
	replay(t, a, []step{
		{"a1 FETCH 1:3 (UID) (CHANGEDSINCE " + itoa(m2) + ")", []string{
			"* 2 FETCH (UID 2 MODSEQ (<*>))",
			`* 2 FETCH (UID 2 FLAGS (\Flagged \Recent) MODSEQ (<*>))`,
			"a1 OK FETCH completed"}},
		{"a2 STORE 2 (UNCHANGEDSINCE " + itoa(m2) + ") +FLAGS (\\Deleted)", []string{"a2 OK [MODIFIED 2] conditional STORE failed"}},
	})
	b.cmd("b2", `STORE 3 +FLAGS (\Seen)`)
	r := a.cmd("a3", `STORE 3 (UNCHANGEDSINCE `+itoa(m2)+`) +FLAGS (\Deleted)`)
	if last(r) != "a3 OK [MODIFIED 3] conditional STORE failed" {
		t.Fatalf("conditional STORE over another process's change: %q", r)
	}
}

// TestVanishedLines: a long set of expunged UIDs goes out as several
// VANISHED responses of bounded length that together name them all.
func TestVanishedLines(t *testing.T) {
	// Restored after the server's shutdown (cleanups run last first).
	old := maxVanishedLine
	t.Cleanup(func() { maxVanishedLine = old })
	maxVanishedLine = 300
	e := newTestEnv(t, nil)
	for i := 0; i < 600; i++ {
		deliver(t, e.root(), "", fixture1)
	}
	c := e.login()
	c.cmd("e", "ENABLE QRESYNC")
	c.cmd("s", "SELECT INBOX")
	var odd []string
	for u := 1; u <= 600; u += 2 {
		odd = append(odd, strconv.Itoa(u))
	}
	must(t, last(c.cmd("a", "UID STORE "+strings.Join(odd, ",")+` +FLAGS.SILENT (\Deleted)`)), "a OK")
	r := c.cmd("b", "EXPUNGE")
	must(t, last(r), "b OK [HIGHESTMODSEQ ")
	var got []string
	for _, l := range r[:len(r)-1] {
		if len(l) > 320 || !strings.HasPrefix(l, "* VANISHED ") {
			t.Fatalf("response of %d octets: %.60q", len(l), l)
		}
		got = append(got, strings.Split(strings.TrimPrefix(l, "* VANISHED "), ",")...)
	}
	if len(r) < 3 || !slices.Equal(got, odd) {
		t.Fatalf("%d responses naming %d UIDs, want all %d odd ones", len(r)-1, len(got), len(odd))
	}
}
