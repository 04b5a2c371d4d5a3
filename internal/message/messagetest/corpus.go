// Package messagetest holds what the tests of internal/message and the
// tests of imapd's rendering of it (ENVELOPE, BODY, BODYSTRUCTURE) share:
// a corpus of real-world-shaped messages, malformed header blocks, and
// Dovecot's imap as an oracle to compare answers with; and, for the
// benchmarks of deliver and the text index, a large plain message
// (BenchMessage). Only tests import
// it; it imports nothing of mailroom, so that package message's own
// tests can use it.
package messagetest

import (
	"fmt"
	"strings"
)

// CorpusMessage is a real-world-shaped message, written with LF line ends
// as Maildir files have them; crlf variants are made by the tests.
type CorpusMessage struct {
	Name string
	Text string
	// Sections to compare with Dovecot, as they appear between brackets.
	Sections []string
}

// lf joins lines with LF and ends with one.
func lf(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// Corpus is the messages every parser test runs over.
var Corpus = []CorpusMessage{
	{Name: "plain", Text: lf(
		"Return-Path: <joe@example.com>",
		"From: Joe Q. Public <john.q.public@example.com>",
		"To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
		"Cc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
		"Date: Tue, 1 Jul 2003 10:52:37 +0200",
		"Message-ID: <5678.21-Nov-1997@example.com>",
		"Subject: Saying Hello",
		"",
		"Hi everyone.",
		"",
		"-- ",
		"Joe"), Sections: []string{"", "HEADER", "TEXT", "1", "1.MIME", "HEADER.FIELDS (From SUBJECT)", "HEADER.FIELDS.NOT (To Cc)", "2"}},
	{Name: "no-content-type", Text: "Subject: plain\n\nno type\n", Sections: []string{"1", "TEXT"}},
	{Name: "header-only-no-newline", Text: "Subject: nobody", Sections: []string{"", "HEADER", "TEXT", "1"}},
	{Name: "groups-and-routes", Text: lf(
		"From: Joe <joe@example.com>",
		"To: undisclosed-recipients:;",
		"Cc: \"Doe, J\" <j@x.org>, (comment) bob@y.org (Bob Comment), <@a.net,@b.net:r@c.org>, team: a@b.c, \"q\\\"x\" <d@e.f>;",
		"Bcc: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
		"Subject:  Hello",
		"  world =?utf-8?q?x?= ",
		"Date: Mon, 1 Jan 2024 10:00:00 +0000",
		"Message-ID:  <abc@x>  (c)",
		"In-Reply-To: <p@q> <r@s>",
		"Reply-To: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
		"Sender: Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example",
		"",
		"body line",
		"second")},
	{Name: "obsolete", Text: lf(
		"From: John Doe <jdoe@machine(comment).  example>",
		"To: Mary Smith",
		"  ",
		"     <mary@example.net>",
		"Cc: \"Joe Q. Public\" <john.q.public@example.com>, Mary Smith <@machine.tld:mary@example.net>, , jdoe@test   . example",
		"Date: Thu,",
		"      13",
		"        Feb",
		"          1969",
		"      23:32",
		"               -0330 (Newfoundland Time)",
		"Message-ID:              <testabcd.1234@silly.test>",
		"Subject: =?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=",
		"",
		"Testing.")},
	{Name: "eight-bit-headers", Text: lf(
		"From: =?utf-8?q?J=C3=B6?= <j@x>, Jörg Müller <jo@x>",
		"To: \"Zoë\" <zoe@exämple.test>",
		"Subject: Grüße aus Köln",
		"",
		"8bit body é")},
	{Name: "alternative", Text: lf(
		"From: a@b.c",
		"MIME-Version: 1.0",
		"Content-Type: multipart/alternative; boundary=\"BB\"; foo=Bar",
		"",
		"preamble",
		"--BB",
		"Content-Type: text/plain; charset=UTF-8",
		"Content-Transfer-Encoding: quoted-printable",
		"",
		"hello=20there caf=C3=A9=",
		"soft",
		"--BB",
		"Content-Type: TEXT/HTML; CHARSET=\"iso-8859-1\"; title*0*=us-ascii'en'a; title*1=b; x=y",
		"Content-Disposition: attachment; filename=\"x.html\"",
		"Content-Language: en, de",
		"Content-Location: http://x/",
		"Content-ID: <id1>",
		"Content-Description: desc",
		"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
		"",
		"<p>hi</p>",
		"--BB--",
		"epilogue"), Sections: []string{"1", "2", "1.MIME", "2.MIME", "TEXT", "3", "1.1", "HEADER.FIELDS (content-type)"}},
	{Name: "mixed-attachment", Text: lf(
		"From: \"Sender Name\" <sender@example.com>",
		"To: rcpt@example.com",
		"Subject: report",
		"Content-Type: multipart/mixed;",
		" boundary=\"----=_Part_0_1\"",
		"",
		"This is a multi-part message in MIME format.",
		"",
		"------=_Part_0_1",
		"Content-Type: text/plain; charset=us-ascii",
		"Content-Transfer-Encoding: 7bit",
		"",
		"See attached.",
		"",
		"------=_Part_0_1",
		"Content-Type: application/pdf; name=\"report.pdf\"",
		"Content-Transfer-Encoding: base64",
		"Content-Disposition: attachment;",
		"\tfilename=\"report.pdf\"",
		"",
		"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k",
		"ZT4+CnN0cmVhbQp4nCvkMlAwUDC1NNUzMVGwMDHUszRSKErlCtdSyOMK5AIAXQ8GCgplbmRzdHJl",
		"YW0KZW5kb2JqCg==",
		"------=_Part_0_1--",
		""), Sections: []string{"1", "2", "2.MIME", "TEXT", "HEADER"}},
	{Name: "nested-rfc822-digest", Text: lf(
		"Content-Type: multipart/mixed; boundary=X",
		"",
		"--X",
		"",
		"text no header",
		"--X",
		"Content-Type: message/rfc822",
		"",
		"From: inner@x.y",
		"Subject: inner",
		"Content-Type: multipart/digest; boundary=D",
		"",
		"--D",
		"",
		"From: d1@x",
		"",
		"d1 body",
		"--D",
		"Content-Type: text/plain",
		"",
		"d2",
		"--D--",
		"--X",
		"Content-Type: application/octet-stream; name=a.bin",
		"Content-Transfer-Encoding: base64",
		"",
		"AAECAw==",
		"--X--"), Sections: []string{"1", "2", "2.HEADER", "2.TEXT", "2.1", "2.1.HEADER", "2.1.TEXT", "2.1.1", "2.2", "2.1.MIME", "2.MIME", "3", "2.HEADER.FIELDS (Subject)", "1.HEADER", "2.1.1.1", "4"}},
	{Name: "rfc822-single", Text: lf(
		"Subject: fwd",
		"Content-Type: message/rfc822",
		"",
		"From: x@y",
		"Subject: inside",
		"",
		"inner body"), Sections: []string{"1", "1.1", "1.HEADER", "1.TEXT", "1.1.1"}},
	{Name: "no-boundary-param", Text: "Content-Type: multipart/mixed\n\nno boundary\n", Sections: []string{"1", "TEXT"}},
	{Name: "boundary-never-seen", Text: "Content-Type: multipart/mixed; boundary=Z\n\nnever any boundary\n"},
	{Name: "missing-close", Text: lf(
		"Content-Type: multipart/mixed; boundary=outer",
		"",
		"--outer",
		"Content-Type: multipart/alternative; boundary=inner",
		"",
		"--inner",
		"Content-Type: text/plain",
		"",
		"inner text",
		"--outer",
		"Content-Type: text/plain",
		"",
		"last"), Sections: []string{"1", "1.1", "2"}},
	{Name: "broken-headers", Text: "Date: x\nFrom: \nTo: a@b, , c@d\nSender: <>\nSubject:\nContent-Type: text\n\n"},
	{Name: "text-html-no-charset", Text: lf(
		"Content-Type: text/html",
		"Content-Transfer-Encoding: BASE64",
		"Content-Disposition: inline",
		"Content-Language: fr",
		"",
		"PGI+aGk8L2I+")},
	{Name: "crlf-file", Text: "From: a@b.c\r\nSubject: crlf\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\none\r\ntwo\r\n--q\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nthree\r\n--q--\r\n",
		Sections: []string{"", "1", "2", "2.MIME", "TEXT"}},
	{Name: "mixed-line-ends", Text: "Subject: mixed\r\nX: y\n\r\nline1\r\nline2\nline3\rstill3\n", Sections: []string{"", "HEADER", "TEXT"}},
	{Name: "quoted-local-part", Text: lf(
		"From: \"john doe\"@example.com",
		"To: \"a\\\\b\" <x@[127.0.0.1]>, Pete <pete@silly.example>",
		"Cc: =?utf-8?b?w7Y=?= <q@r>",
		"")},
	{Name: "long-header-line", Text: "Subject: " + strings.Repeat("long ", 20000) + "\nX-Big: " + strings.Repeat("y", 70000) + "\nTo: z@z\n\nbody\n",
		Sections: []string{"HEADER.FIELDS (To)", "TEXT"}},
}

// MalformedHeaders are messages whose header blocks break the rules in the
// ways Maildirs see: no blank line, bare CR, NUL, 8-bit, continuation
// lines with no field before them, lines without a colon, an empty file.
var MalformedHeaders = []CorpusMessage{
	{Name: "empty", Text: ""},
	{Name: "no-blank-line", Text: "From: a@b\nSubject: no body"},
	{Name: "no-blank-line-lf", Text: "From: a@b\nSubject: no body\n"},
	{Name: "leading-continuation", Text: " folded first\nFrom: a@b\nSubject: x\n\nbody\n"},
	{Name: "no-colon", Text: "From a@b Mon Jan 1\nGarbage line\nSubject: x\n\nbody\n"},
	{Name: "bare-cr", Text: "Subject: a\rb\nFrom: c@d\r\r\nTo: e@f\n\nbody\r"},
	{Name: "nul-8bit", Text: "Subject: caf\xc3\xa9 \x00 x\nFrom: \xff@b\n\n\x00body\n"},
	{Name: "crlf-mixed", Text: "Subject: one\r\nFrom: a@b\nTo: c@d\r\n\r\nbody\n"},
	{Name: "space-before-colon", Text: "Subject : spaced\nFROM\t: a@b\nX-List-Id: <l>\n\nbody\n"},
	{Name: "folded-fields", Text: "Subject: one\n two\n\tthree\nReferences: <a@b>\n <c@d>\nFrom: x@y\n\nbody\n"},
	{Name: "blank-line-only", Text: "\nbody only\n"},
	{Name: "header-only-crlf", Text: "Subject: x\r\n"},
}

// NestedMultipart is a message of depth multiparts, each the only part of
// the one around it, with a text part innermost: beyond the parser's
// depth limit it tests that the structure is cut short, not refused.
func NestedMultipart(depth int) string {
	var b strings.Builder
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i)
	}
	b.WriteString("\ninnermost\n")
	return b.String()
}

// AddressListSeeds seed the fuzz targets of address-list parsing and
// writing: groups (empty and not), quoted strings with escapes, comments,
// a source route, an encoded word, 8-bit text, and broken syntax.
var AddressListSeeds = []string{
	"undisclosed-recipients:;", `"a \" b" <x@y>, (c) d@e (f)`, "<@a,@b:c@d>", "g: a@b, c;, h@i",
	"Jörg <j@x>", "=?utf-8?q?x?= <a@b>", "a@b@c", ":;<>@,", `"\`, "((((", "[1.2.3.4]",
}
