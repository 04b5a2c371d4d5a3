package imapd

import (
	"strings"
	"testing"

	"mailroom/imapd/wire"
	"mailroom/internal/message"
	"mailroom/internal/message/messagetest"
)

// structureKnownDifferences are ENVELOPE, BODYSTRUCTURE and BODY answers
// where we differ from Dovecot on purpose, by message and item, with the
// reason; the test checks that the difference is still the one described,
// so each entry stays true. (internal/message's TestDovecotAgrees has
// those of the sections.)
var structureKnownDifferences = map[string]map[string]string{
	"groups-and-routes": {
		// Subject: RFC 5322 §2.2.3 unfolding removes only the line break:
		// "Hello\n  world" is "Hello  world"; Dovecot drops one space.
		// Sender: "a, , b" has a null member (obs-addr-list, RFC 5322
		// §4.4), which is no address; Dovecot makes it MISSING_MAILBOX.
		"ENVELOPE": `("Mon, 1 Jan 2024 10:00:00 +0000" "Hello  world =?utf-8?q?x?=" (("Joe" NIL "joe" "example.com")) (("Mary Smith" "@node.test" "mary" "example.net") (NIL NIL "jdoe" "test.example")) (("Pete" NIL "pete" "silly.test")) ((NIL NIL "undisclosed-recipients" NIL) (NIL NIL NIL NIL)) (("Doe, J" NIL "j" "x.org") ("Bob Comment" NIL "bob" "y.org") (NIL "@a.net,@b.net" "r" "c.org") (NIL NIL "team" NIL) (NIL NIL "a" "b.c") ("q\"x" NIL "d" "e.f") (NIL NIL NIL NIL)) ((NIL NIL "A Group" NIL) ("Ed Jones" NIL "c" "a.test") (NIL NIL "joe" "where.test") ("John" NIL "jdoe" "one.test") (NIL NIL NIL NIL)) "<p@q> <r@s>" "<abc@x>  (c)")`,
	},
	"obsolete": {
		// Cc has a null member, as above.
		"ENVELOPE": `("Thu,      13        Feb          1969      23:32               -0330 (Newfoundland Time)" "=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=" (("John Doe" NIL "jdoe" "machine.example")) (("John Doe" NIL "jdoe" "machine.example")) (("John Doe" NIL "jdoe" "machine.example")) (("Mary Smith" NIL "mary" "example.net")) (("Joe Q. Public" NIL "john.q.public" "example.com") ("Mary Smith" "@machine.tld" "mary" "example.net") (NIL NIL "jdoe" "test.example")) NIL NIL "<testabcd.1234@silly.test>")`,
	},
	"broken-headers": {
		// To: null member, as above.
		"ENVELOPE": `("x" "" NIL ((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) NIL ((NIL NIL "a" "b") (NIL NIL "c" "d")) NIL NIL NIL NIL)`,
		// "Content-Type: text" has no subtype: RFC 2045 §5.2 says to
		// treat it as text/plain; Dovecot sends an empty subtype.
		"BODYSTRUCTURE": `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)`,
		"BODY":          `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)`,
	},
	"quoted-local-part": {
		// The quotes of a quoted local-part are part of the address (RFC
		// 5322 §3.4.1): a client joining mailbox "@" host must get an
		// address that works. Dovecot strips them ("john doe").
		"ENVELOPE": `(NIL NIL ((NIL NIL "\"john doe\"" "example.com")) ((NIL NIL "\"john doe\"" "example.com")) ((NIL NIL "\"john doe\"" "example.com")) (("a\\b" NIL "x" "[127.0.0.1]") ("Pete" NIL "pete" "silly.example")) (("=?utf-8?b?w7Y=?=" NIL "q" "r")) NIL NIL NIL)`,
	},
}

// TestDovecotAgreesStructure parses every corpus message and compares
// ENVELOPE, BODYSTRUCTURE and BODY as written here with what Dovecot's
// imap answers for the same Maildir file.
func TestDovecotAgreesStructure(t *testing.T) {
	requireTool(t, messagetest.DovecotIMAP)
	msgs := map[string]string{}
	for i, m := range messagetest.Corpus {
		msgs[messagetest.GUID(i)] = m.Text
	}
	o := messagetest.StartOracle(t, msgs)
	got := o.FetchItems("ENVELOPE BODYSTRUCTURE BODY")
	for i, m := range messagetest.Corpus {
		d, ok := got[messagetest.GUID(i)]
		if !ok {
			t.Errorf("%s: dovecot did not answer", m.Name)
			continue
		}
		s, err := message.Parse(strings.NewReader(m.Text))
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		ours := map[string]string{
			"ENVELOPE":      render(t, func(w *wire.Writer) { writeEnvelope(w, s.Envelope()) }),
			"BODYSTRUCTURE": render(t, func(w *wire.Writer) { writeBodyStructure(w, s, true) }),
			"BODY":          render(t, func(w *wire.Writer) { writeBodyStructure(w, s, false) }),
		}
		for _, item := range []string{"ENVELOPE", "BODYSTRUCTURE", "BODY"} {
			messagetest.CompareItem(t, structureKnownDifferences, m.Name, item, d[item], ours[item])
		}
	}
}
