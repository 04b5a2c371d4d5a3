package remote

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseNexthop(t *testing.T) {
	tests := []struct {
		in   string
		want Nexthop
		err  bool
	}{
		{"mail.example.com", Nexthop{Host: "mail.example.com"}, false},
		{"Mail.Example.COM.", Nexthop{Host: "mail.example.com"}, false},
		{"mail.example.com:587", Nexthop{Host: "mail.example.com", Port: 587}, false},
		{"[mail.example.com]", Nexthop{Host: "mail.example.com", NoMX: true}, false},
		{"[mail.example.com]:2525", Nexthop{Host: "mail.example.com", Port: 2525, NoMX: true}, false},
		{"[192.0.2.1]:25", Nexthop{Host: "192.0.2.1", Port: 25, NoMX: true}, false},
		{"192.0.2.1", Nexthop{Host: "192.0.2.1", NoMX: true}, false},
		{"[2001:db8::1]:25", Nexthop{Host: "2001:db8::1", Port: 25, NoMX: true}, false},
		{"smtp:[relay.example]:587", Nexthop{Host: "relay.example", Port: 587, NoMX: true}, false},
		{"smtp:25", Nexthop{Host: "smtp", Port: 25}, false},
		{"2001:db8::1", Nexthop{}, true},
		{"[mail.example.com", Nexthop{}, true},
		{"[mail.example.com]x", Nexthop{}, true},
		{"mail.example.com:", Nexthop{}, true},
		{"mail.example.com:0", Nexthop{}, true},
		{"mail.example.com:70000", Nexthop{}, true},
		{"mail.example.com:+25", Nexthop{}, true},
		{"", Nexthop{}, true},
		{"bad host", Nexthop{}, true},
		{"-bad.example", Nexthop{}, true},
		{"a..b", Nexthop{}, true},
	}
	for _, tc := range tests {
		got, err := ParseNexthop(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseNexthop(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil {
			// It renders back to something that parses the same.
			again, err := ParseNexthop(got.String())
			if err != nil || again != got {
				t.Errorf("%q: String %q parses to %+v, %v", tc.in, got.String(), again, err)
			}
		}
	}
}

func TestParseTable(t *testing.T) {
	good := `# routes for the tests
example.com      [10.0.0.1]:2525
.example.com     relay.example.com

Sub.Example.COM. [10.0.0.2]
*                smtp:[fallback.test]
[192.0.2.1]      [10.0.0.3]
`
	tab, err := ParseTable(strings.NewReader(good), "transport")
	if err != nil {
		t.Fatal(err)
	}
	if tab.Len() != 5 {
		t.Errorf("%d entries, want 5", tab.Len())
	}
	lookups := []struct {
		domain string
		want   string
	}{
		{"example.com", "[10.0.0.1]:2525"},
		{"EXAMPLE.com.", "[10.0.0.1]:2525"},
		{"a.example.com", "relay.example.com"},
		{"a.b.example.com", "relay.example.com"},
		{"sub.example.com", "[10.0.0.2]"},
		{"x.sub.example.com", "relay.example.com"}, // "sub.example.com" is exact only
		{"example.org", "[fallback.test]"},
		{"[192.0.2.1]", "[10.0.0.3]"},
	}
	for _, l := range lookups {
		hop, ok := tab.Lookup(l.domain)
		if !ok || hop.String() != l.want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", l.domain, hop, ok, l.want)
		}
	}
	noStar, err := ParseTable(strings.NewReader("example.com relay.test\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a.example.com", "example.org", "com"} {
		if hop, ok := noStar.Lookup(d); ok {
			t.Errorf("Lookup(%q) = %v, want no match", d, hop)
		}
	}
	var nilTable *Table
	if _, ok := nilTable.Lookup("example.com"); ok {
		t.Error("nil table matched")
	}

	bad := []struct {
		text, want string
	}{
		{"example.com\n", "transport:1: "},
		{"# ok\n\nexample.com a b\n", "transport:3: "},
		{"exa mple.com!x relay\n", "transport:1: "},
		{"example.com relay\nexample.com other\n", "transport:2: "},
		{"example.com [relay\n", "transport:1: "},
		{"example.com relay:99999\n", "transport:1: "},
		{"..example.com relay\n", "transport:1: "},
		{"192.0.2.1 relay\n", "transport:1: "},
		{"ok.test relay\n" + strings.Repeat("x", maxTableLine+1) + "\n", "transport:2: "},
	}
	for _, b := range bad {
		_, err := ParseTable(strings.NewReader(b.text), "transport")
		if err == nil || !strings.HasPrefix(err.Error(), b.want) || !errors.Is(err, ErrTable) {
			t.Errorf("ParseTable(%q) error %v, want one starting %q wrapping ErrTable", b.text, err, b.want)
		}
	}
}

func TestLoadTableAndPassword(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "transport")
	if err := os.WriteFile(path, []byte("example.com [127.0.0.1]:2525\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tab, err := LoadTable(path)
	if err != nil || tab.Len() != 1 {
		t.Fatalf("LoadTable: %v, %v", tab, err)
	}
	if _, err := LoadTable(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file loaded")
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\r\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := readPassword(pw); err != nil || got != "s3cret" {
		t.Errorf("readPassword = %q, %v", got, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", empty, filepath.Join(dir, "missing")} {
		if _, err := readPassword(p); err == nil {
			t.Errorf("readPassword(%q) accepted", p)
		}
	}
}

func FuzzParseTable(f *testing.F) {
	f.Add("example.com [10.0.0.1]:2525\n.example.com relay.example.com\n* smtp:[x]\n")
	f.Add("# comment\n\n[192.0.2.1] [2001:db8::1]:25\n")
	f.Add("a b c\n")
	f.Add("example.com [relay")
	f.Fuzz(func(t *testing.T, text string) {
		tab, err := ParseTable(strings.NewReader(text), "fuzz")
		if err != nil {
			if !errors.Is(err, ErrTable) || !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %v without file:line or ErrTable", err)
			}
			return
		}
		for key, hop := range tab.entries {
			if key != strings.ToLower(key) {
				t.Fatalf("key %q not lower case", key)
			}
			again, err := ParseNexthop(hop.String())
			if err != nil || again != hop {
				t.Fatalf("next hop %+v renders as %q, which parses to %+v, %v", hop, hop.String(), again, err)
			}
		}
	})
}

func FuzzParseNexthop(f *testing.F) {
	for _, s := range []string{"mail.example.com", "[mx]:25", "[2001:db8::1]:2525", "smtp:relay:587", "a:", "[", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hop, err := ParseNexthop(s)
		if err != nil {
			return
		}
		if hop.Host == "" || hop.Port < 0 || hop.Port > 65535 {
			t.Fatalf("%q parsed to %+v", s, hop)
		}
		again, err := ParseNexthop(hop.String())
		if err != nil || again != hop {
			t.Fatalf("%q: %+v renders as %q, which parses to %+v, %v", s, hop, hop.String(), again, err)
		}
	})
}
