package maildir

import (
	"slices"
	"testing"
)

func TestParseKeywordList(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[int]string
	}{
		{"dovecot file", "0 foo\n1 $Junk\n", map[int]string{0: "foo", 1: "$Junk"}},
		{"gaps and crlf", "0 a\r\n5 b\n", map[int]string{0: "a", 5: "b"}},
		{"bad lines skipped", "x y\n26 toolarge\n-1 neg\n3\n4 \nnospace\n2 ok", map[int]string{2: "ok"}},
		{"later line wins", "0 a\n0 b\n", map[int]string{0: "b"}},
		{"empty", "", map[int]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ParseKeywordList([]byte(tt.in))
			for i, name := range l {
				if name != tt.want[i] {
					t.Errorf("slot %d = %q, want %q", i, name, tt.want[i])
				}
			}
		})
	}
}

func TestKeywordListMethods(t *testing.T) {
	var l KeywordList
	l[0], l[2] = "Foo", "$Label1"
	if got := string(l.Marshal()); got != "0 Foo\n2 $Label1\n" {
		t.Fatalf("marshal = %q", got)
	}
	if l.Slot("foo") != 0 || l.Slot("$label1") != 2 || l.Slot("bar") != -1 {
		t.Fatal("Slot lookup is wrong (must be case-insensitive)")
	}
	if got := l.Names(Keywords(0).With(0).With(1).With(2)); !slices.Equal(got, []string{"Foo", "$Label1"}) {
		t.Fatalf("Names = %q", got)
	}
	for name, ok := range map[string]bool{"foo": true, "$Junk": true, "": false, `\Seen`: false, "a b": false, "a(b": false, "é": false} {
		if ValidKeyword(name) != ok {
			t.Errorf("ValidKeyword(%q) = %v", name, !ok)
		}
	}
}

func FuzzParseKeywordList(f *testing.F) {
	f.Add([]byte("0 foo\n1 $Junk\n"))
	f.Add([]byte("25 z\n26 no\n0 a\r\n"))
	f.Add([]byte("x y\n\n 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := ParseKeywordList(data)
		l2 := ParseKeywordList(l.Marshal())
		// Names containing a newline cannot exist after one parse.
		if l2 != l {
			t.Fatalf("round trip changed %q -> %q", l, l2)
		}
	})
}
