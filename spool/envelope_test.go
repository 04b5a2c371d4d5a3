package spool

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var arrived = time.Date(2025, 11, 23, 21, 56, 0, 123456000, time.UTC)

// smtpEnvelope uses every field an SMTP submission can have.
func smtpEnvelope() Envelope {
	return Envelope{
		Origin: OriginSMTP, Arrived: arrived, AuthUser: "alice@example.org",
		ClientAddr: "2001:db8::1", ClientName: "mail.example.net", Helo: "mail.example.net",
		Protocol: "ESMTPSA", TLS: "TLS1.3 TLS_AES_128_GCM_SHA256",
		Body: Body8BitMIME, SMTPUTF8: true, Ret: RetHdrs, EnvID: "QQ314159", Size: 1234,
		Sender: "alice@example.org",
		Recipients: []Recipient{
			{Addr: "bob@example.net", Notify: NotifySuccess | NotifyFailure, ORcpt: "rfc822;bob@example.net"},
			{Addr: "jörg@bücher.example", Notify: NotifyNever},
			{Addr: "carol@example.com"},
		},
	}
}

func localEnvelope() Envelope {
	return Envelope{Origin: OriginLocal, Arrived: arrived, UID: 1000, Body: Body7Bit,
		Sender: "", Recipients: []Recipient{{Addr: "root@localhost"}}}
}

// smtpEnvelopeText is smtpEnvelope as the head of a queue file.
const smtpEnvelopeText = `mailroom-envelope 2
origin smtp
arrived 2025-11-23T21:56:00.123456Z
auth alice@example.org
client-addr 2001:db8::1
client-name mail.example.net
helo mail.example.net
proto ESMTPSA
tls TLS1.3%20TLS_AES_128_GCM_SHA256
body 8bitmime
smtputf8 yes
ret hdrs
envid QQ314159
sender <alice@example.org>
rcpt <bob@example.net> notify=success,failure orcpt=rfc822;bob@example.net
rcpt <jörg@bücher.example> notify=never
rcpt <carol@example.com>

`

// legacyEnvelopeText is smtpEnvelope as the envelope file of an old-layout
// queue directory (version 1, with the size).
var legacyEnvelopeText = strings.Replace(strings.Replace(smtpEnvelopeText,
	"mailroom-envelope 2", "mailroom-envelope 1", 1),
	"envid QQ314159\n", "envid QQ314159\nsize 1234\n", 1)

func TestEnvelopeGolden(t *testing.T) {
	env := smtpEnvelope()
	got, err := env.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != smtpEnvelopeText {
		t.Errorf("MarshalText:\n%s\nwant:\n%s", got, smtpEnvelopeText)
	}
	back, err := ParseEnvelope(got)
	if err != nil {
		t.Fatal(err)
	}
	want := env
	want.Size = 0 // not in a version 2 head: the rest of the file is the content
	if !reflect.DeepEqual(back, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, want)
	}
}

// TestLegacyEnvelopeGolden: the version 1 envelope of the old layout is
// still read, size included.
func TestLegacyEnvelopeGolden(t *testing.T) {
	env := smtpEnvelope()
	got, err := env.marshal(kindQueueDir)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != legacyEnvelopeText {
		t.Errorf("marshal(kindQueueDir):\n%s\nwant:\n%s", got, legacyEnvelopeText)
	}
	back, kind, err := parseEnvelopeFile(got)
	if err != nil || kind != kindQueueDir {
		t.Fatalf("parse: kind %v, %v", kind, err)
	}
	if !reflect.DeepEqual(back, env) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, env)
	}
}

// TestEnvelopeNoInjection puts line breaks, NUL, spaces, '%' and invalid
// UTF-8 in every value: the file keeps one line per field and every value
// comes back byte for byte.
func TestEnvelopeNoInjection(t *testing.T) {
	evil := "x\r\nrcpt <mallory@evil.example>\n\x00 %41 \xff\xfe\u0085\u2028end"
	env := smtpEnvelope()
	env.AuthUser, env.ClientAddr, env.ClientName, env.Helo = evil, evil, evil, evil
	env.Protocol, env.TLS, env.EnvID, env.Sender = evil, evil, evil, evil
	env.Recipients[0].Addr, env.Recipients[0].ORcpt = evil, "rfc822;"+evil
	text, err := env.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n\n"), "\n")
	if want := strings.Count(smtpEnvelopeText, "\n") - 1; len(lines) != want {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), want, text)
	}
	if bytes.ContainsAny(text, "\r\x00") || bytes.Contains(text, []byte("\nrcpt <mallory")) {
		t.Fatalf("raw value leaked into the file:\n%q", text)
	}
	back, err := ParseEnvelope(text)
	if err != nil {
		t.Fatal(err)
	}
	env.Size = 0
	if !reflect.DeepEqual(back, env) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, env)
	}
}

func TestEnvelopeValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Envelope)
		want   string
	}{
		{"no origin", func(e *Envelope) { e.Origin = "" }, "origin"},
		{"bad origin", func(e *Envelope) { e.Origin = "uucp" }, "origin"},
		{"no arrival", func(e *Envelope) { e.Arrived = time.Time{} }, "arrival"},
		{"uid on smtp", func(e *Envelope) { e.UID = 5 }, "uid"},
		{"no body", func(e *Envelope) { e.Body = "" }, "body"},
		{"bad ret", func(e *Envelope) { e.Ret = "all" }, "ret"},
		{"negative size", func(e *Envelope) { e.Size = -1 }, "size"},
		{"no recipients", func(e *Envelope) { e.Recipients = nil }, "no recipients"},
		{"empty recipient", func(e *Envelope) { e.Recipients[1].Addr = "" }, "recipient 2"},
		{"never and more", func(e *Envelope) { e.Recipients[0].Notify |= NotifyNever }, "NEVER"},
		{"bad notify bits", func(e *Envelope) { e.Recipients[0].Notify = 64 }, "NOTIFY"},
		{"orcpt without type", func(e *Envelope) { e.Recipients[0].ORcpt = "bob@example.net" }, "ORCPT"},
		{"line too long", func(e *Envelope) { e.Helo = strings.Repeat(" ", maxLine) }, "longer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := smtpEnvelope()
			tc.change(&env)
			_, err := env.MarshalText()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("MarshalText: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	local := localEnvelope()
	local.ClientAddr = "192.0.2.1"
	if _, err := local.MarshalText(); err == nil {
		t.Error("a local envelope with a client address was accepted")
	}
}

func TestParseEnvelopeErrors(t *testing.T) {
	good := smtpEnvelopeText
	tests := []struct {
		name, text, want string
	}{
		{"empty", "", "empty line"},
		{"no blank line", strings.TrimSuffix(good, "\n"), "empty line"},
		{"trailing data", good + "x", "empty line"},
		{"version 3", strings.Replace(good, "envelope 2", "envelope 3", 1), "first line"},
		{"size in version 2", strings.Replace(good, "sender", "size 1234\nsender", 1), "size"},
		{"v1 missing size", strings.Replace(legacyEnvelopeText, "size 1234\n", "", 1), "no size"},
		{"v1 non-canonical size", strings.Replace(legacyEnvelopeText, "size 1234", "size 01234", 1), "number"},
		{"v1 negative size", strings.Replace(legacyEnvelopeText, "size 1234", "size -1", 1), "number"},
		{"v1 missing arrived", strings.Replace(legacyEnvelopeText, "arrived 2025-11-23T21:56:00.123456Z\n", "", 1), "no arrived"},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), "empty line"},
		{"CR in line", strings.Replace(good, "helo mail", "helo\rmail", 1), "CR"},
		{"unknown key", strings.Replace(good, "proto", "protocol", 1), "unknown key"},
		{"repeated key", strings.Replace(good, "body 8bitmime\n", "body 8bitmime\nbody 8bitmime\n", 1), "repeated"},
		{"out of order", strings.Replace(good, "origin smtp\narrived 2025-11-23T21:56:00.123456Z\n", "arrived 2025-11-23T21:56:00.123456Z\norigin smtp\n", 1), "order"},
		{"missing arrived", strings.Replace(good, "arrived 2025-11-23T21:56:00.123456Z\n", "", 1), "no arrived"},
		{"missing rcpt", good[:strings.Index(good, "rcpt")] + "\n", "no rcpt"},
		{"local time", strings.Replace(good, "21:56:00.123456Z", "22:56:00.123456+01:00", 1), "canonical"},
		{"lower-case escape", strings.Replace(good, "%20", "%2a", 1), "escape"},
		{"needless escape", strings.Replace(good, "helo mail", "helo %6Dail", 1), "canonical"},
		{"raw space", strings.Replace(good, "%20", " ", 1), "space"},
		{"double space", strings.Replace(good, "rcpt <carol", "rcpt  <carol", 1), "space"},
		{"unbracketed", strings.Replace(good, "<carol@example.com>", "carol@example.com", 1), "<>"},
		{"empty rcpt", strings.Replace(good, "<carol@example.com>", "<>", 1), "empty recipient"},
		{"bad notify", strings.Replace(good, "notify=success,failure", "notify=failure,success", 1), "notify"},
		{"repeated notify", strings.Replace(good, "notify=never", "notify=never notify=never", 1), "rcpt parameter"},
		{"unknown param", strings.Replace(good, "notify=never", "foo=bar", 1), "rcpt parameter"},
		{"smtputf8 no", strings.Replace(good, "smtputf8 yes", "smtputf8 no", 1), "smtputf8"},
		{"bad body", strings.Replace(good, "8bitmime", "8bit", 1), "body"},
		{"no space", strings.Replace(good, "ret hdrs", "ret", 1), "key value"},
		{"empty value", strings.Replace(good, "ret hdrs", "ret ", 1), "ret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEnvelope([]byte(tc.text))
			if err == nil || !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseEnvelope: %v, want ErrSyntax containing %q", err, tc.want)
			}
		})
	}
}

// TestDropHeadFields: a maildrop file may not claim what the spool
// establishes itself.
func TestDropHeadFields(t *testing.T) {
	env := localEnvelope()
	env.Arrived = time.Time{}
	head, err := env.marshal(kindDrop)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseEnvelope(head[:len(head)-1], kindDrop); err != nil {
		t.Fatalf("drop head does not parse: %v\n%s", err, head)
	}
	for _, extra := range []string{"arrived 2025-11-23T21:56:00Z\n", "size 5\n"} {
		bad := strings.Replace(string(head), "uid ", extra+"uid ", 1)
		if strings.HasPrefix(extra, "size") {
			bad = strings.Replace(string(head), "sender", extra+"sender", 1)
		}
		if _, err := parseEnvelope([]byte(bad[:len(bad)-1]), kindDrop); err == nil {
			t.Errorf("drop head with %q accepted", extra)
		}
	}
	smtp := smtpEnvelope()
	smtp.Arrived, smtp.Size = time.Time{}, 0
	if _, err := smtp.marshal(kindDrop); err == nil {
		t.Error("an smtp envelope was accepted as a drop")
	}
}

func TestStatesRoundTrip(t *testing.T) {
	states := []RcptState{
		{Status: StatusPending},
		{Status: StatusDeferred, Attempts: 3, Last: arrived, Next: arrived.Add(time.Hour), Reason: "451 4.7.1 try\r\nlater"},
		{Status: StatusDelivered, Attempts: 1, Last: arrived},
		{Status: StatusFailed, Attempts: 1, Last: arrived, Reason: "550 5.1.1 " + strings.Repeat("é", 2000)},
	}
	data, err := marshalStates(states)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseStates(data, len(states))
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	states[3].Reason = clip(states[3].Reason, maxReason)
	if !reflect.DeepEqual(back, states) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, states)
	}
	if _, err := parseStates(data, len(states)+1); err == nil {
		t.Error("state for 4 recipients accepted for 5")
	}
}

// TestStatesWarned: the delay-warning mark needs version 2; files without
// it stay version 1, byte for byte as before.
func TestStatesWarned(t *testing.T) {
	plain := []RcptState{{Status: StatusDeferred, Attempts: 1, Last: arrived, Next: arrived.Add(time.Hour)}}
	data, err := marshalStates(plain)
	if err != nil || !strings.HasPrefix(string(data), stateMagic+"\n") {
		t.Fatalf("without warned: %q, %v", data, err)
	}
	warned := []RcptState{plain[0], {Status: StatusPending}}
	warned[0].Warned = arrived.Add(time.Minute)
	data, err = marshalStates(warned)
	want := "mailroom-state 2\nrcpt 0 deferred attempts=1 last=2025-11-23T21:56:00.123456Z next=2025-11-23T22:56:00.123456Z warned=2025-11-23T21:57:00.123456Z\nrcpt 1 pending attempts=0\n"
	if err != nil || string(data) != want {
		t.Fatalf("with warned:\n%s\nwant\n%s (%v)", data, want, err)
	}
	back, err := parseStates(data, 2)
	if err != nil || !reflect.DeepEqual(back, warned) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestStatesInvalid(t *testing.T) {
	bad := [][]RcptState{
		{{Status: "sent"}},
		{{Status: StatusDeferred}},
		{{Status: StatusDelivered, Next: arrived}},
		{{Status: StatusPending, Attempts: -1}},
	}
	for _, s := range bad {
		if _, err := marshalStates(s); err == nil {
			t.Errorf("marshalStates(%+v) accepted", s)
		}
	}
	texts := []string{
		"mailroom-state 1\nrcpt 1 pending attempts=0\n",
		"mailroom-state 1\nrcpt 0 pending\n",
		"mailroom-state 1\nrcpt 0 pending attempts=0 reason=x last=2025-11-23T21:56:00Z\n",
		"mailroom-state 1\nrcpt 0 deferred attempts=1\n",
		"mailroom-state 2\nrcpt 0 pending attempts=0\n",
		"mailroom-state 1\nrcpt 0 pending attempts=0",
		// warned= only in version 2, and version 2 only with it.
		"mailroom-state 1\nrcpt 0 deferred attempts=1 next=2025-11-23T21:56:00Z warned=2025-11-23T21:56:00Z\n",
		"mailroom-state 2\nrcpt 0 deferred attempts=1 warned=2025-11-23T21:56:00Z next=2025-11-23T21:56:00Z\n",
		"mailroom-state 3\nrcpt 0 pending attempts=0\n",
	}
	for _, s := range texts {
		if _, err := parseStates([]byte(s), 1); err == nil {
			t.Errorf("parseStates(%q) accepted", s)
		}
	}
}

func TestEncodeValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain@example.org", "plain@example.org"},
		{"a b", "a%20b"},
		{"100%", "100%25"},
		{"\r\n\x00\x7f", "%0D%0A%00%7F"},
		{"jörg", "jörg"},
		{"\xff", "%FF"},
		{"\u0085", "%C2%85"}, // a C1 control stays invisible no more
	}
	for _, tc := range tests {
		if got := encodeValue(tc.in); got != tc.want {
			t.Errorf("encodeValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := decodeValue(tc.want); err != nil || back != tc.in {
			t.Errorf("decodeValue(%q) = %q, %v", tc.want, back, err)
		}
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(smtpEnvelopeText))
	local := localEnvelope()
	text, _ := local.MarshalText()
	f.Add(text)
	f.Add([]byte("mailroom-envelope 1\norigin local\n\n"))
	f.Add([]byte(legacyEnvelopeText))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, kind, err := parseEnvelopeFile(data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error without ErrSyntax: %v", err)
			}
			return
		}
		// Strictness: what parses is exactly what the writer of that
		// version writes (MarshalText for version 2).
		again, err := env.marshal(kind)
		if err != nil {
			t.Fatalf("parsed envelope does not marshal: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("not canonical:\n in %q\nout %q", data, again)
		}
	})
}

func FuzzParseDropHead(f *testing.F) {
	env := localEnvelope()
	env.Arrived = time.Time{}
	head, _ := env.marshal(kindDrop)
	f.Add(head[:len(head)-1])
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := parseEnvelope(data, kindDrop)
		if err != nil {
			return
		}
		again, err := env.marshal(kindDrop)
		if err != nil || !bytes.Equal(again, append(append([]byte{}, data...), '\n')) {
			t.Fatalf("not canonical (%v):\n in %q\nout %q", err, data, again)
		}
	})
}

func FuzzParseStates(f *testing.F) {
	data, _ := marshalStates([]RcptState{{Status: StatusPending},
		{Status: StatusDeferred, Attempts: 2, Last: arrived, Next: arrived, Reason: "451 later"}})
	f.Add(data)
	data, _ = marshalStates([]RcptState{{Status: StatusDeferred, Attempts: 2, Last: arrived, Next: arrived, Warned: arrived, Reason: "451 later"}})
	f.Add(data)
	f.Add([]byte("mailroom-state 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := bytes.Count(data, []byte("\n")) - 1
		states, err := parseStates(data, n)
		if err != nil {
			return
		}
		again, err := marshalStates(states)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("not canonical (%v):\n in %q\nout %q", err, data, again)
		}
	})
}

func FuzzValueEncoding(f *testing.F) {
	f.Add("a b\r\n%\x00\xff jörg")
	f.Fuzz(func(t *testing.T, s string) {
		enc := encodeValue(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] <= ' ' || enc[i] == 0x7f {
				t.Fatalf("encodeValue(%q) = %q has byte %#x", s, enc, enc[i])
			}
		}
		if s == "" {
			return
		}
		back, err := decodeValue(enc)
		if err != nil || back != s {
			t.Fatalf("decodeValue(encodeValue(%q)) = %q, %v", s, back, err)
		}
	})
}
