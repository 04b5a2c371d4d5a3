package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"mailroom/internal/message/messagetest"
)

// knownDifferences are answers where we differ from Dovecot on purpose,
// by message and item, with the reason; the test checks that the
// difference is still the one described, so each entry stays true.
var knownDifferences = map[string]map[string]string{
	"alternative": {
		// RFC 9051 §6.4.5: only multiparts and message/rfc822 parts have
		// subparts; Dovecot answers part 1 of a text/plain part as the
		// part itself.
		"BODY.PEEK[1.1]":            noSection,
		"BODY.PEEK[1.1]<0.5>":       noSection,
		"BODY.PEEK[1.1]<3.1048576>": noSection,
	},
}

// TestDovecotAgrees parses every corpus message and compares RFC822.SIZE,
// BODY[section]<partial> and BINARY[part] with what Dovecot's imap answers
// for the same Maildir file. imapd's tests compare ENVELOPE, BODY and
// BODYSTRUCTURE, which imapd renders.
func TestDovecotAgrees(t *testing.T) {
	requireTool(t, messagetest.DovecotIMAP)
	msgs := map[string]string{}
	for i, m := range corpus {
		msgs[messagetest.GUID(i)] = m.Text
	}
	o := messagetest.StartOracle(t, msgs)
	got := o.FetchItems("RFC822.SIZE")
	for i, m := range corpus {
		d, ok := got[messagetest.GUID(i)]
		if !ok {
			t.Errorf("%s: dovecot did not answer", m.Name)
			continue
		}
		s, err := Parse(strings.NewReader(m.Text))
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		compareItem(t, m.Name, "RFC822.SIZE", d["RFC822.SIZE"], strconv.FormatInt(s.CRLFSize, 10))
		compareSections(t, o, i, m, s)
	}
	compareBinary(t, o)
}

// compareBinary checks BINARY[part] and BINARY.SIZE[part] (RFC 3516) of
// the encoded parts of the corpus against Dovecot's decoding.
func compareBinary(t *testing.T, o *messagetest.Oracle) {
	t.Helper()
	for i, m := range corpus {
		s := mustParse(t, m.Text)
		for n := range s.Root.Parts {
			path := []uint32{uint32(n + 1)}
			p, _ := s.Part(path)
			if p.IsMultipart() || p.IsMessage() {
				continue
			}
			got := o.Run(fmt.Sprintf("FETCH %d (BINARY.PEEK[%d] BINARY.SIZE[%d])", o.Seq(messagetest.GUID(i)), n+1, n+1))
			if len(got) != 1 {
				t.Fatalf("%s: dovecot %q", m.Name, got)
			}
			fm, err := messagetest.FetchList(got[0][bytes.Index(got[0], []byte(" FETCH "))+7:])
			if err != nil {
				t.Fatal(err)
			}
			r, size, err := s.OpenBinary(strings.NewReader(m.Text), path, nil)
			if err != nil {
				t.Fatalf("%s %v: %v", m.Name, path, err)
			}
			b, _ := io.ReadAll(r)
			key := fmt.Sprintf("BINARY[%d]", n+1)
			if want := strconv.Quote(string(b)); fm[key] != want {
				t.Errorf("%s %s: dovecot %s, ours %s", m.Name, key, fm[key], want)
			}
			if sk := fmt.Sprintf("BINARY.SIZE[%d]", n+1); fm[sk] != strconv.FormatInt(size, 10) {
				t.Errorf("%s %s: dovecot %s, ours %d", m.Name, sk, fm[sk], size)
			}
		}
	}
}

func compareItem(t *testing.T, msg, item, dovecot, ours string) {
	t.Helper()
	messagetest.CompareItem(t, knownDifferences, msg, item, dovecot, ours)
}

// compareSections fetches each section whole and with two partials.
func compareSections(t *testing.T, o *messagetest.Oracle, i int, m messagetest.CorpusMessage, s *Structure) {
	t.Helper()
	file := strings.NewReader(m.Text)
	for _, spec := range m.Sections {
		for _, p := range []*Partial{nil, {Offset: 0, Count: 5, HasCount: true}, {Offset: 3, Count: 1 << 20, HasCount: true}} {
			item := "BODY.PEEK[" + spec + "]"
			if p != nil {
				item += fmt.Sprintf("<%d.%d>", p.Offset, p.Count)
			}
			got := o.Run(fmt.Sprintf("FETCH %d (%s)", o.Seq(messagetest.GUID(i)), item))
			if len(got) != 1 {
				t.Errorf("%s %s: dovecot answered %q", m.Name, item, got)
				continue
			}
			fm, err := messagetest.FetchList(got[0][bytes.Index(got[0], []byte(" FETCH "))+7:])
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
				t.Fatalf("%s %s: %v", m.Name, item, err)
			default:
				b, err := io.ReadAll(r)
				if err != nil {
					t.Fatalf("%s %s: %v", m.Name, item, err)
				}
				if int64(len(b)) != n {
					t.Errorf("%s %s: said %d octets, gave %d", m.Name, item, n, len(b))
				}
				ours = strconv.Quote(string(b))
			}
			compareItem(t, m.Name, item, dv, ours)
		}
	}
}

// noSection stands for ErrNoSection, which imapd answers with an empty
// string or NIL, as Dovecot does.
const noSection = "<no such section>"

// parseSection parses a section spec as it appears between the brackets
// of BODY[...]: a dotted part path, then a specifier, then for
// HEADER.FIELDS[.NOT] a parenthesised list of field names.
func parseSection(t testing.TB, spec string) Section {
	t.Helper()
	var sec Section
	if head, list, ok := strings.Cut(spec, " ("); ok {
		names, closed := strings.CutSuffix(list, ")")
		if !closed {
			t.Fatalf("section %q: unterminated field list", spec)
		}
		sec.Fields = strings.Fields(names)
		spec = head
	}
	rest := spec
	for rest != "" {
		num, after, _ := strings.Cut(rest, ".")
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil || n == 0 {
			break
		}
		sec.Part = append(sec.Part, uint32(n))
		rest = after
	}
	sec.Specifier = rest
	if (sec.Fields != nil) != strings.HasPrefix(sec.Specifier, "HEADER.FIELDS") {
		t.Fatalf("section %q: field list and specifier %q disagree", spec, sec.Specifier)
	}
	return sec
}
