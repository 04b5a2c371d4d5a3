package sendmail

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"root", []string{"root"}},
		{"a@x, b@y", []string{"a@x", "b@y"}},
		{"a@x,,b@y,", []string{"a@x", "b@y"}},
		{"Bob Smith <bob@example.net>", []string{"bob@example.net"}},
		{`"Smith, Bob" <bob@example.net>, carol@example.com`, []string{"bob@example.net", "carol@example.com"}},
		{"bob@example.net (Bob Smith)", []string{"bob@example.net"}},
		{"(nested (comment)) bob@example.net", []string{"bob@example.net"}},
		{`"john doe"@example.org`, []string{`"john doe"@example.org`}},
		{`"john"@example.org`, []string{"john@example.org"}},
		{`"a,b"@example.org, c@x`, []string{`"a,b"@example.org`, "c@x"}},
		{"undisclosed-recipients:;", nil},
		{"Friends: a@x, B <b@y>; c@z", []string{"a@x", "b@y", "c@z"}},
		{"Friends: a@x, b@y", []string{"a@x", "b@y"}},
		{"<@relay.example:bob@example.net>", []string{"bob@example.net"}},
		{"bob @ example.net", []string{"bob@example.net"}},
		{"first . last@example.net", []string{"first.last@example.net"}},
		{"postmaster@[192.0.2.1]", []string{"postmaster@[192.0.2.1]"}},
		{"jörg@bücher.example", []string{"jörg@bücher.example"}},
		{"a@x,\n\tb@y", []string{"a@x", "b@y"}},
		{"<>", nil},
		{"", nil},
	} {
		got, err := parseAddressList(tc.in)
		if err != nil {
			t.Errorf("parseAddressList(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseAddressList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseAddressListErrors(t *testing.T) {
	for _, in := range []string{
		"John Doe john@x",
		"<a@x",
		"a@x>",
		"<a@<b>>",
		`"unclosed@x`,
		"(unclosed a@x",
		"a@",
		"@x",
		"a@x\x00",
		"a@[1.2.3.4",
		"Name <a@x> trailing",
		"a@\"quoted\"",
		"\xff@x",
		"a;b",
	} {
		if got, err := parseAddressList(in); err == nil {
			t.Errorf("parseAddressList(%q) = %q, want an error", in, got)
		}
	}
}

func TestQualify(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"root", "root@example.org"},
		{"www-data", "www-data@example.org"},
		{"a@x", "a@x"},
		{`"a@b"`, `"a@b"@example.org`},
		{`"a b"@x`, `"a b"@x`},
	} {
		if got := qualify(tc.in, "example.org"); got != tc.want {
			t.Errorf("qualify(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseAddressList: nothing panics, and every address returned is
// free of control characters and blanks outside quotes, and non-empty.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{
		"root", "a@x, b@y", `"Smith, Bob" <bob@x>`, "G: a@x;", "<@r:a@b>", "(c) a@x", `"a b"@x`,
		"a@[1.2.3.4]", "jörg@bücher.example", "a@x,\n\tb@y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := parseAddressList(s)
		if err != nil {
			return
		}
		for _, a := range addrs {
			if a == "" || strings.ContainsAny(a, "\r\n\x00") {
				t.Fatalf("%q: bad address %q", s, a)
			}
			if !strings.HasPrefix(a, `"`) && !strings.Contains(a, "[") && strings.ContainsAny(a, " \t<>(),;") {
				t.Fatalf("%q: address %q holds a special outside quotes", s, a)
			}
		}
	})
}
