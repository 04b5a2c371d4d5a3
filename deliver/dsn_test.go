package deliver

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"mailroom/spool"
)

func TestDSNAddress(t *testing.T) {
	tests := []struct{ typ, addr, want string }{
		{"rfc822", "bob@example.org", "rfc822; bob@example.org"},
		{"", "bob@example.org", "rfc822; bob@example.org"},
		{"rfc822", "jörg@bücher.example", `utf-8; j\x{F6}rg@b\x{FC}cher.example`},
		{"rfc822", "a+b=c\\d@x", `rfc822; a+b=c\d@x`},
		{"rfc822", "evil\r\nX-Forged: 1@x", `utf-8; evil\x{0D}\x{0A}X-Forged:\x{20}1@x`},
		{"bad type", "a@x", "utf-8; a@x"},
	}
	for _, tc := range tests {
		if got := dsnAddress(tc.typ, tc.addr); got != tc.want {
			t.Errorf("dsnAddress(%q, %q) = %q, want %q", tc.typ, tc.addr, got, tc.want)
		}
	}
	if got := dsnORcpt("rfc822;Bob@Example.org"); got != "rfc822; Bob@Example.org" {
		t.Errorf("dsnORcpt = %q", got)
	}
}

func TestDSNText(t *testing.T) {
	long := strings.Repeat("word ", 40) + strings.Repeat("x", 200)
	got := dsnText("550 5.1.1\r\nno such\tuser "+long, 17, "\r\n")
	for i, l := range strings.Split(got, "\r\n") {
		if len(l) > maxFieldLine {
			t.Errorf("line %d has %d bytes: %q", i, len(l), l)
		}
		if i > 0 && !strings.HasPrefix(l, " ") {
			t.Errorf("continuation line %d does not start with a space: %q", i, l)
		}
	}
	if !strings.HasPrefix(got, "550 5.1.1 no such user word") {
		t.Errorf("dsnText = %q", got)
	}
	if unfolded := strings.ReplaceAll(got, "\r\n", ""); strings.Count(unfolded, "x") != 200 {
		t.Errorf("the long word was not kept whole across the cut: %q", unfolded)
	}
}

// checkFieldValue fails if v could break out of its field.
func checkFieldValue(t *testing.T, what, v string) {
	t.Helper()
	for i, l := range strings.Split(v, "\n") {
		l = strings.TrimSuffix(l, "\r")
		if i > 0 && !strings.HasPrefix(l, " ") {
			t.Fatalf("%s: line %d is not a continuation: %q", what, i, v)
		}
		for j := 0; j < len(l); j++ {
			if l[j] < ' ' || l[j] >= 0x7f {
				t.Fatalf("%s: byte %#x in %q", what, l[j], v)
			}
		}
	}
}

func FuzzDSNFields(f *testing.F) {
	f.Add("rfc822", "bob@example.org", "550 5.1.1 no such user\r\n")
	f.Add("utf-8", "jörg@bücher.example", "\xff\x00 \\x{41}")
	f.Add("", "a+b=c\\d", strings.Repeat("y", 300))
	f.Fuzz(func(t *testing.T, typ, addr, text string) {
		a := dsnAddress(typ, addr)
		checkFieldValue(t, "address", a)
		if strings.Contains(a, "\n") {
			t.Fatalf("address folded: %q", a)
		}
		if enc, ok := strings.CutPrefix(a, "utf-8; "); ok {
			back, err := decodeUTF8AddrXtext(enc)
			want := string([]rune(addr)) // invalid bytes: one U+FFFD each
			if err != nil || back != want {
				t.Fatalf("utf-8 address %q decodes to %q, %v; want %q", enc, back, err, want)
			}
		}
		checkFieldValue(t, "orcpt", dsnORcpt(typ+";"+addr))
		v := dsnText(text, 17, "\r\n")
		checkFieldValue(t, "text", v)
		for _, l := range strings.Split(v, "\r\n") {
			if len(l) > maxFieldLine {
				t.Fatalf("line of %d bytes: %q", len(l), l)
			}
		}
	})
}

func FuzzDecodeUTF8AddrXtext(f *testing.F) {
	f.Add(`j\x{F6}rg@x`)
	f.Add(`\x{0}`)
	f.Fuzz(func(t *testing.T, s string) {
		dec, err := decodeUTF8AddrXtext(s)
		if err != nil {
			return
		}
		if !utf8.ValidString(dec) || utf8AddrXtext(dec) != s {
			t.Fatalf("%q decodes to %q, which encodes to %q", s, dec, utf8AddrXtext(dec))
		}
	})
}

// TestDSNReportShape checks a report built directly: headers only for a
// big original and for RET=HDRS, the delayed action's retry field.
func TestDSNReportShape(t *testing.T) {
	orig := "Subject: big\nX: y\n\n" + strings.Repeat("z", dsnFullLimit)
	for _, tc := range []struct {
		name string
		ret  spool.Ret
		msg  string
		want string
	}{
		{"big original", spool.RetFull, orig, "text/rfc822-headers"},
		{"RET=HDRS", spool.RetHdrs, "Subject: s\n\nbody\n", "text/rfc822-headers"},
		{"small", "", "Subject: s\n\nbody\n", "message/rfc822"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &spool.Envelope{Sender: "a@x.test", Ret: tc.ret, Body: spool.Body7Bit, Size: int64(len(tc.msg)), Arrived: time.Unix(1e9, 0)}
			r := &dsnReport{hostname: "mx.test", id: "1k0z5tvd3810skwmkdnc", env: env, eol: "\n", now: time.Unix(1e9+60, 0),
				data: strings.NewReader(tc.msg), selfID: "1k0z5tvd6fcevxnx40w1",
				rcpts: []dsnRecipient{{rcpt: spool.Recipient{Addr: "b@y.test"}, action: actionFailed, status: "5.1.1", diag: "X-mailroom; gone"},
					{rcpt: spool.Recipient{Addr: "c@y.test"}, action: actionDelayed, status: "4.4.1", diag: "X-mailroom; later", until: time.Unix(2e9, 0)}}}
			var b bytes.Buffer
			if err := r.write(&b); err != nil {
				t.Fatal(err)
			}
			p := parseDSN(t, b.String())
			if ct := p.parts[2].Header.Get("Content-Type"); ct != tc.want {
				t.Errorf("third part %q, want %q", ct, tc.want)
			}
			if tc.want == "text/rfc822-headers" && (bytes.Contains(p.bodies[2], []byte("body")) || bytes.Contains(p.bodies[2], []byte("zzz"))) {
				t.Errorf("headers part has the body: %q", p.bodies[2])
			}
			if d := p.rcpt(t, "rfc822; c@y.test"); d.Get("Action") != "delayed" || d.Get("Will-Retry-Until") == "" {
				t.Errorf("delayed recipient %v", d)
			}
			if p.header.Get("Subject") != "Undelivered Mail Returned to Sender" {
				t.Errorf("Subject %q", p.header.Get("Subject"))
			}
		})
	}
}
