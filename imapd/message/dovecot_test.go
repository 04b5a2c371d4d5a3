package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"mailroom/imapd/wire"
)

// knownDifferences are answers where we differ from Dovecot on purpose,
// by message and item, with the reason; the test checks that the
// difference is still the one described, so each entry stays true.
var knownDifferences = map[string]map[string]string{
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
	"alternative": {
		// RFC 9051 §6.4.5: only multiparts and message/rfc822 parts have
		// subparts; Dovecot answers part 1 of a text/plain part as the
		// part itself.
		"BODY.PEEK[1.1]":            noSection,
		"BODY.PEEK[1.1]<0.5>":       noSection,
		"BODY.PEEK[1.1]<3.1048576>": noSection,
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

// TestDovecotAgrees parses every corpus message and compares ENVELOPE,
// BODYSTRUCTURE, BODY, RFC822.SIZE and BODY[section]<partial> with what
// Dovecot's imap answers for the same Maildir file.
func TestDovecotAgrees(t *testing.T) {
	requireTool(t, dovecotIMAP)
	msgs := map[string]string{}
	for i, m := range corpus {
		msgs[guidOf(i)] = m.text
	}
	o := startOracle(t, msgs)
	got := o.fetchItems("ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE")
	for i, m := range corpus {
		d, ok := got[guidOf(i)]
		if !ok {
			t.Errorf("%s: dovecot did not answer", m.name)
			continue
		}
		s, err := Parse(strings.NewReader(m.text))
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		ours := map[string]string{
			"ENVELOPE":      render(t, func(w *wire.Writer) { WriteEnvelope(w, s.Envelope()) }),
			"BODYSTRUCTURE": render(t, func(w *wire.Writer) { WriteBodyStructure(w, s, true) }),
			"BODY":          render(t, func(w *wire.Writer) { WriteBodyStructure(w, s, false) }),
			"RFC822.SIZE":   strconv.FormatInt(s.CRLFSize, 10),
		}
		for _, item := range []string{"ENVELOPE", "BODYSTRUCTURE", "BODY", "RFC822.SIZE"} {
			compareItem(t, m.name, item, d[item], ours[item])
		}
		compareSections(t, o, i, m, s)
	}
	compareBinary(t, o)
}

// compareBinary checks BINARY[part] and BINARY.SIZE[part] (RFC 3516) of
// the encoded parts of the corpus against Dovecot's decoding.
func compareBinary(t *testing.T, o *oracle) {
	t.Helper()
	for i, m := range corpus {
		s := mustParse(t, m.text)
		for n := range s.Root.Parts {
			path := []uint32{uint32(n + 1)}
			p, _ := s.Part(path)
			if p.IsMultipart() || p.IsMessage() {
				continue
			}
			got := o.run(fmt.Sprintf("FETCH %d (BINARY.PEEK[%d] BINARY.SIZE[%d])", seqOf(t, o, i), n+1, n+1))
			if len(got) != 1 {
				t.Fatalf("%s: dovecot %q", m.name, got)
			}
			fm, err := fetchList(got[0][bytes.Index(got[0], []byte(" FETCH "))+7:])
			if err != nil {
				t.Fatal(err)
			}
			r, size, err := s.OpenBinary(strings.NewReader(m.text), path, nil)
			if err != nil {
				t.Fatalf("%s %v: %v", m.name, path, err)
			}
			b, _ := io.ReadAll(r)
			key := fmt.Sprintf("BINARY[%d]", n+1)
			if want := strconv.Quote(string(b)); fm[key] != want {
				t.Errorf("%s %s: dovecot %s, ours %s", m.name, key, fm[key], want)
			}
			if sk := fmt.Sprintf("BINARY.SIZE[%d]", n+1); fm[sk] != strconv.FormatInt(size, 10) {
				t.Errorf("%s %s: dovecot %s, ours %d", m.name, sk, fm[sk], size)
			}
		}
	}
}

func guidOf(i int) string { return fmt.Sprintf("%d.M%dP1.mailroomtest", 1000+i, i) }

func compareItem(t *testing.T, msg, item, dovecot, ours string) {
	t.Helper()
	if want, known := knownDifferences[msg][item]; known {
		if ours != want {
			t.Errorf("%s %s (a known difference from Dovecot):\n ours %s\n want %s", msg, item, ours, want)
		}
		if dovecot == ours {
			t.Errorf("%s %s: Dovecot now agrees; drop the known difference", msg, item)
		}
		return
	}
	if dovecot != ours {
		t.Errorf("%s %s:\n dovecot %s\n ours    %s", msg, item, dovecot, ours)
	}
}

// compareSections fetches each section whole and with two partials.
func compareSections(t *testing.T, o *oracle, i int, m corpusMessage, s *Structure) {
	t.Helper()
	file := strings.NewReader(m.text)
	for _, spec := range m.sections {
		for _, p := range []*wire.Partial{nil, {Offset: 0, Count: 5, HasCount: true}, {Offset: 3, Count: 1 << 20, HasCount: true}} {
			item := "BODY.PEEK[" + spec + "]"
			if p != nil {
				item += fmt.Sprintf("<%d.%d>", p.Offset, p.Count)
			}
			got := o.run(fmt.Sprintf("FETCH %d (%s)", seqOf(t, o, i), item))
			if len(got) != 1 {
				t.Errorf("%s %s: dovecot answered %q", m.name, item, got)
				continue
			}
			fm, err := fetchList(got[0][bytes.Index(got[0], []byte(" FETCH "))+7:])
			if err != nil {
				t.Fatalf("%s: %v in %q", item, err, got[0])
			}
			var dv string
			for k, v := range fm {
				if strings.HasPrefix(k, "BODY[") {
					dv = v
				}
			}
			sec := parseSection(t, spec)
			r, n, err := s.Open(file, sec, p)
			var ours string
			switch {
			case errors.Is(err, ErrNoSection):
				ours = noSection
				if dv == "NIL" || dv == `""` {
					dv = noSection
				}
			case err != nil:
				t.Fatalf("%s %s: %v", m.name, item, err)
			default:
				b, err := io.ReadAll(r)
				if err != nil {
					t.Fatalf("%s %s: %v", m.name, item, err)
				}
				if int64(len(b)) != n {
					t.Errorf("%s %s: said %d octets, gave %d", m.name, item, n, len(b))
				}
				ours = strconv.Quote(string(b))
			}
			compareItem(t, m.name, item, dv, ours)
		}
	}
}

// noSection stands for ErrNoSection, which imapd answers with an empty
// string or NIL, as Dovecot does.
const noSection = "<no such section>"

var seqCache = map[*oracle]map[string]int{}

// seqOf finds the sequence number of corpus message i by its X-GUID.
func seqOf(t *testing.T, o *oracle, i int) int {
	t.Helper()
	m, ok := seqCache[o]
	if !ok {
		m = map[string]int{}
		for _, r := range o.run("FETCH 1:* (X-GUID)") {
			var seq int
			var guid string
			if _, err := fmt.Sscanf(string(r), "* %d FETCH (X-GUID %s", &seq, &guid); err == nil {
				m[strings.TrimRight(guid, ")\r\n")] = seq
			}
		}
		seqCache[o] = m
	}
	return m[guidOf(i)]
}

// parseSection parses a section spec with the wire package's parser.
func parseSection(t *testing.T, spec string) wire.Section {
	t.Helper()
	r := wire.NewReader(bufio.NewReader(strings.NewReader("a FETCH 1 BODY["+spec+"]\r\n")), wire.Options{})
	cmd, err := r.ReadCommand()
	if err != nil {
		t.Fatalf("section %q: %v", spec, err)
	}
	fc, err := wire.ParseFetch(cmd.Args)
	if err != nil || len(fc.Attrs) != 1 || fc.Attrs[0].Section == nil {
		t.Fatalf("section %q: %v %+v", spec, err, fc)
	}
	return *fc.Attrs[0].Section
}
