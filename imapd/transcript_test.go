package imapd

import (
	"crypto/tls"
	"regexp"
	"strings"
	"testing"
)

// step is one exchange of a golden transcript: what the client sends and
// the lines the server must answer with, in order. In expected lines "<*>"
// matches any text (UIDVALIDITY, dates).
type step struct {
	send string
	want []string
}

// replay runs a transcript on c; the last expected line of each step
// is the tagged response that ends it.
func replay(t *testing.T, c *client, steps []step) {
	t.Helper()
	for _, s := range steps {
		tag, _, _ := strings.Cut(s.send, " ")
		c.send(s.send + "\r\n")
		got := c.until(tag)
		if len(got) != len(s.want) {
			t.Fatalf("%s:\ngot  %q\nwant %q", s.send, got, s.want)
		}
		for i := range got {
			if !golden(s.want[i]).MatchString(got[i]) {
				t.Fatalf("%s: line %d:\ngot  %q\nwant %q", s.send, i, got[i], s.want[i])
			}
		}
	}
}

func golden(pattern string) *regexp.Regexp {
	parts := strings.Split(pattern, "<*>")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^` + strings.Join(parts, `.*`) + `$`)
}

func TestGreetingAndCapability(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.dial()
	must(t, c.line(), "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE STARTTLS AUTH=PLAIN] mailroom ready")
	replay(t, c, []step{
		{"a CAPABILITY", []string{"* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE STARTTLS AUTH=PLAIN", "a OK CAPABILITY completed"}},
		{"b NOOP", []string{"b OK NOOP completed"}},
		{"c ID (\"name\" \"test\")", []string{`* ID ("name" "mailroom")`, "c OK ID completed"}},
		{"d SELECT INBOX", []string{"d BAD SELECT not allowed now"}},
		{"e LOGIN " + testUser + " wrong", []string{"e NO [AUTHENTICATIONFAILED] authentication failed"}},
		{"f LOGIN " + testUser + " " + testPass, []string{"f OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES CONDSTORE QRESYNC STATUS=SIZE UTF8=ACCEPT APPENDLIMIT=52428800 QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE MULTIAPPEND COMPRESS=DEFLATE] logged in"}},
		{"g NAMESPACE", []string{`* NAMESPACE (("" ".")) NIL NIL`, "g OK NAMESPACE completed"}},
		{"h LOGOUT", []string{"* BYE logging out", "h OK LOGOUT completed"}},
	})
	c.expectEOF()
}

func TestLoginDisabledBeforeTLS(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.PlaintextAuthOnLoopback = false })
	c := e.dial()
	must(t, c.line(), "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE STARTTLS LOGINDISABLED]")
	replay(t, c, []step{
		{"a LOGIN " + testUser + " " + testPass, []string{"a NO [PRIVACYREQUIRED] <*>"}},
		{"b AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==", []string{"b NO [PRIVACYREQUIRED] <*>"}},
	})
	// STARTTLS with a pipelined command behind it: the command must be
	// discarded, not run inside the TLS session.
	c.send("c STARTTLS\r\nd LOGIN " + testUser + " " + testPass + "\r\n")
	must(t, c.line(), "c OK")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: e.roots, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn = tc
	c.r.Reset(tc)
	replay(t, c, []step{
		{"e CAPABILITY", []string{"* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE ID IDLE AUTH=PLAIN", "e OK CAPABILITY completed"}},
		{"f AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==", []string{"f OK [CAPABILITY <*>] logged in"}},
	})
}

func TestAuthenticateContinuation(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.dialTLS()
	c.line()
	c.send("a AUTHENTICATE PLAIN\r\n")
	if l := c.line(); l != "+ " {
		t.Fatalf("continuation %q", l)
	}
	c.send("AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\n")
	must(t, c.line(), "a OK [CAPABILITY")
}

func TestBadWithoutDisconnect(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.dial()
	c.line()
	replay(t, c, []step{
		{"a FROB", []string{"a BAD unknown command"}},
		{"b UID LOGIN x y", []string{"b BAD UID LOGIN is not a command"}},
		{"c LOGIN", []string{"c BAD <*>"}},
		{"d NOOP", []string{"d OK NOOP completed"}},
	})
	c.send("\x01\x02garbage\r\n")
	must(t, c.line(), "* BAD")
	replay(t, c, []step{{"e NOOP", []string{"e OK NOOP completed"}}})
	for i := 0; i < DefaultMaxBad; i++ {
		c.send("x FROB\r\n")
		must(t, c.line(), "x BAD")
	}
	must(t, c.line(), "* BYE")
	c.expectEOF()
}

func TestSelectRev1AndRev2(t *testing.T) {
	e := newTestEnv(t, nil)
	deliver(t, e.root(), "", fixture1)
	deliver(t, e.root(), "", fixture2)
	c := e.login()
	replay(t, c, []step{
		{"a SELECT INBOX", []string{
			`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`,
			`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft \*)] flags permitted`,
			"* 2 EXISTS",
			"* 2 RECENT",
			"* OK [UNSEEN 1] first unseen",
			"* OK [UIDVALIDITY <*>] UIDs valid",
			"* OK [UIDNEXT 3] predicted next UID",
			"* OK [HIGHESTMODSEQ <*>] highest",
			"a OK [READ-WRITE] SELECT completed",
		}},
		{"b FETCH 1 FLAGS", []string{`* 1 FETCH (FLAGS (\Recent))`, "b OK FETCH completed"}},
		{"c ENABLE IMAP4rev2", []string{"* ENABLED IMAP4rev2", "c OK ENABLE completed"}},
		{"d EXAMINE inbox", []string{
			"* OK [CLOSED] previous mailbox closed",
			`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)`,
			`* OK [PERMANENTFLAGS ()] read-only mailbox`,
			"* 2 EXISTS",
			"* OK [UIDVALIDITY <*>] UIDs valid",
			"* OK [UIDNEXT 3] predicted next UID",
			"* OK [HIGHESTMODSEQ <*>] highest",
			`* LIST () "." INBOX`,
			"d OK [READ-ONLY] EXAMINE completed",
		}},
		{"e SELECT Nope", []string{"* OK [CLOSED] previous mailbox closed", "e NO [NONEXISTENT] no such mailbox"}},
		{"f FETCH 1 FLAGS", []string{"f BAD FETCH not allowed now"}},
	})
}

func TestFetchItems(t *testing.T) {
	e := newTestEnv(t, nil)
	deliver(t, e.root(), "", fixture1)
	deliver(t, e.root(), "", fixture2)
	c := e.login()
	c.cmd("s", "SELECT INBOX")
	replay(t, c, []step{
		{"a FETCH 1 (UID RFC822.SIZE FLAGS)", []string{`* 1 FETCH (UID 1 RFC822.SIZE 181 FLAGS (\Recent))`, "a OK FETCH completed"}},
		{"b FETCH 1 ENVELOPE", []string{`* 1 FETCH (ENVELOPE ("Mon, 2 Jan 2006 15:04:05 -0700" "hello world" (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) (("Bob" NIL "bob" "example.net")) NIL NIL NIL "<1@example.org>"))`, "b OK FETCH completed"}},
		{"c FETCH 1 BODY.PEEK[TEXT]", []string{"* 1 FETCH (BODY[TEXT] {30}\r\nfirst body line\r\nsecond line\r\n)", "c OK FETCH completed"}},
		{"d FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.10>", []string{"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)]<0> {10}\r\nSubject: h)", "d OK FETCH completed"}},
		{"e FETCH 2 BODYSTRUCTURE", []string{`* 2 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 8 0 NIL NIL NIL NIL)("application" "octet-stream" NIL NIL NIL "base64" 16 NIL NIL NIL NIL) "mixed" ("boundary" "XX") NIL NIL NIL))`, "e OK FETCH completed"}},
		{"f FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])", []string{"* 2 FETCH (BINARY[2] ~{12}\r\nhello binary BINARY.SIZE[2] 12)", "f OK FETCH completed"}},
		{"g FETCH 1 INTERNALDATE", []string{`* 1 FETCH (INTERNALDATE "<*>")`, "g OK FETCH completed"}},
		{"h FETCH 1 FLAGS", []string{`* 1 FETCH (FLAGS (\Recent))`, "h OK FETCH completed"}},
		{"i FETCH 1 RFC822.HEADER", []string{"* 1 FETCH (RFC822.HEADER {151}\r\nFrom: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\nSubject: hello world\r\nDate: Mon, 2 Jan 2006 15:04:05 -0700\r\nMessage-ID: <1@example.org>\r\n\r\n)", "i OK FETCH completed"}},
		{"j FETCH 1 BODY[1]", []string{"* 1 FETCH (BODY[1] {30}\r\nfirst body line\r\nsecond line\r\n FLAGS (\\Seen \\Recent))", "j OK FETCH completed"}},
		{"k UID FETCH 2 (BODY.PEEK[1.MIME] BODY[9])", []string{"* 2 FETCH (UID 2 BODY[1.MIME] {28}\r\nContent-Type: text/plain\r\n\r\n BODY[9] \"\" FLAGS (\\Seen \\Recent))", "k OK FETCH completed"}},
		{"l FETCH 3 FLAGS", []string{"l BAD invalid message sequence number"}},
		{"m UID FETCH 3:* FLAGS", []string{`* 2 FETCH (UID 2 FLAGS (\Seen \Recent))`, "m OK FETCH completed"}},
	})
}
