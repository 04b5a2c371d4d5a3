package textindex

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailroom/internal/message"
)

// testMsg is a message of the test corpus with the UID it gets.
type testMsg struct {
	uid  uint32
	text string
}

func lf(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

func b64(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	return b.String() + enc + "\n"
}

// fixedCorpus covers the encodings, charsets and broken shapes a scan of
// raw octets gets wrong.
func fixedCorpus() []string {
	return []string{
		lf("Subject: plain", "From: Joe <joe@example.com>", "", "Hello World, the Invoice is attached.", "Reply soon."),
		lf("Subject: qp", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "",
			qp("Grüße aus Köln: Straße und Übermut, a very long line that must be wrapped by the quoted-printable encoder because it is long")),
		lf("Subject: b64 text", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "",
			b64("The secret word is xyzzy and PLUGH.")),
		lf("Subject: latin1", "Content-Type: text/plain; charset=ISO-8859-1", "Content-Transfer-Encoding: 8bit", "",
			"Caf\xe9 cr\xe8me, na\xefve \xc9COLE"),
		lf("Subject: cp1252", "Content-Type: text/plain; charset=windows-1252", "", "\x93Smart quotes\x94 cost \x80 5 \x96 fine"),
		lf("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_vom_Header?=", "From: =?iso-8859-1?q?J=F6rg?= <j@x.test>", "", "body only"),
		lf("Subject: mixed", "MIME-Version: 1.0", "Content-Type: multipart/mixed; boundary=b1", "",
			"preamble xyzzy-not-here", "--b1", "Content-Type: text/plain", "", "first part words", "--b1",
			"Content-Type: application/pdf", "Content-Transfer-Encoding: base64", "", b64("binary xyzzy inside attachment"),
			"--b1", "Content-Type: message/rfc822", "", "Subject: inner subject word", "From: inner@x.test", "",
			"inner body text", "--b1--", "epilogue"),
		lf("Subject: alt", "Content-Type: multipart/alternative; boundary=\"alt\"", "", "--alt",
			"Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable", "",
			"soft=", "break joins=20words =3D equals", "--alt", "Content-Type: text/html", "", "<p>HTML <b>bold</b> text</p>", "--alt--"),
		"no header at all, just text\nwith lines\n",
		lf("Subject: broken b64", "Content-Transfer-Encoding: base64", "", "!!! ??? ***", "SGVsbG8gd29y", "bGQ=", "ignored after padding"),
		lf("Subject: broken qp", "Content-Transfer-Encoding: quoted-printable", "", "a =ZZ b =4 c = d =", "=C3=A9t=C3=A9"),
		lf("Subject: 8bit undeclared", "", "r\xe9sum\xe9 raw latin1 bytes and \xff\xfe junk", "NUL\x00byte"),
		lf("Subject: long", "", strings.Repeat("a", 300)+" shortword "+strings.Repeat("Zz", 80)),
		lf("Subject: unicode", "Content-Type: text/plain; charset=utf-8", "", "ΑΘΗΝΑ and İstanbul and ǅ and Ⱥ"),
		lf("Subject: unknown charset", "Content-Type: text/plain; charset=koi8-r", "", "\xf0\xd2\xc9\xd7\xc5\xd4 plain ascii too"),
		"Subject: header only no newline",
		lf("Subject: crlf", "Content-Type: text/plain", "", "line one\r", "Line Two\r"),
	}
}

var vocab = []string{"invoice", "meeting", "Report", "café", "STRASSE", "Grüße", "xyzzy", "plugh", "alpha", "beta", "gamma-ray", "e-mail", "x", "naïve"}

// genCorpus adds random messages in every encoding over a small
// vocabulary.
func genCorpus(rng *rand.Rand, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		var words []string
		for j := rng.IntN(40); j >= 0; j-- {
			words = append(words, vocab[rng.IntN(len(vocab))])
		}
		text := strings.Join(words, []string{" ", "\n", ", ", "-"}[rng.IntN(4)])
		subj := vocab[rng.IntN(len(vocab))]
		switch rng.IntN(5) {
		case 0:
			out = append(out, lf("Subject: "+subj, "Content-Type: text/plain; charset=utf-8", "", text))
		case 1:
			out = append(out, lf("Subject: "+subj, "Content-Transfer-Encoding: quoted-printable", "Content-Type: text/plain; charset=utf-8", "", qp(text)))
		case 2:
			out = append(out, lf("Subject: "+subj, "Content-Transfer-Encoding: base64", "", b64(text)))
		case 3:
			latin := strings.NewReplacer("é", "\xe9", "ü", "\xfc", "ß", "\xdf", "ï", "\xef").Replace(text)
			out = append(out, lf("Subject: "+subj, "Content-Type: text/plain; charset=iso-8859-1", "", latin))
		default:
			out = append(out, lf("Subject: "+subj, "Content-Type: multipart/mixed; boundary=zz", "", "--zz", "", text,
				"--zz", "Content-Type: image/png", "Content-Transfer-Encoding: base64", "", b64(text+" xyzzy"), "--zz--"))
		}
	}
	return out
}

var queries = []string{
	"xyzzy", "XYZZY", "plugh", "invoice", "voic", "Invoice is", "hello world", "world, the", "café", "CAFÉ", "crème",
	"ÉCOLE", "naïve", "grüße", "GRÜSSE", "straße", "köln", "“smart quotes”", "€ 5 –", "jörg", "vom header", "inner subject",
	"inner body", "first part", "binary", "preamble", "epilogue", "softbreak", "soft", "joins words", "= equals", "<b>bold",
	"hello wor", "résumé", "r\xe9sum", "=zz", "=4 c", "été", "a = d", strings.Repeat("a", 150), "shortword", "zzzz",
	"αθηνα", "istanbul", "i̇stanbul", "ǆ", "ⱥ", "plain ascii", "subject:", "subject: plain", ": ", " ", "", "-", "e-mail",
	"gamma-ray", "x", "a", "line two", "nul\x00byte", "strasse", "report", "meeting report", "only no newline",
}

// parsed writes the corpus into a directory as message files and parses
// each.
type parsedMsg struct {
	uid  uint32
	path string
	st   *message.Structure
}

func writeCorpus(t testing.TB, dir string, texts []string) []parsedMsg {
	t.Helper()
	var out []parsedMsg
	for i, text := range texts {
		p := filepath.Join(dir, fmt.Sprintf("msg%d", i))
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := message.Parse(strings.NewReader(text))
		if err != nil {
			t.Fatalf("parse %d: %v", i, err)
		}
		out = append(out, parsedMsg{uid: uint32(i*3 + 1), path: p, st: st})
	}
	return out
}

// scanText is the brute-force answer: the needle in the message's
// decoded text, the whole text held in memory.
func scanText(t testing.TB, x *Extractor, m parsedMsg, field Field, needle []byte) bool {
	t.Helper()
	f, err := os.Open(m.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var all []byte
	emit := func(b []byte) error { all = append(all, b...); return nil }
	if field == Header {
		err = x.Header(m.st, f, emit)
	} else {
		err = x.Body(m.st, f, emit)
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(all, needle)
}
