package maildir

import (
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		in       string
		want     Name
		str      string // String(); "" means same as in
		size     int64
		hasSize  bool
		vsize    int64
		hasVSize bool
	}{
		{in: "1.M2P3Q4.host,S=100,W=104", want: Name{Base: "1.M2P3Q4.host,S=100,W=104"}, size: 100, hasSize: true, vsize: 104, hasVSize: true},
		{in: "1.M2P3Q4.host,S=100,W=104:2,FS", want: Name{Base: "1.M2P3Q4.host,S=100,W=104", HasInfo: true, Flags: FlagFlagged | FlagSeen}, size: 100, hasSize: true, vsize: 104, hasVSize: true},
		{in: "b:2,", want: Name{Base: "b", HasInfo: true}},
		{in: "b:2,SF", want: Name{Base: "b", HasInfo: true, Flags: FlagFlagged | FlagSeen}, str: "b:2,FS"},
		{in: "b:2,DFPRST", want: Name{Base: "b", HasInfo: true, Flags: FlagDraft | FlagFlagged | FlagPassed | FlagReplied | FlagSeen | FlagTrashed}},
		{in: "b:2,Sca", want: Name{Base: "b", HasInfo: true, Flags: FlagSeen, Keywords: 1 | 4}, str: "b:2,Sac"},
		{in: "b:2,SS", want: Name{Base: "b", HasInfo: true, Flags: FlagSeen}, str: "b:2,S"},
		{in: "b:2,XS", want: Name{Base: "b", HasInfo: true, Flags: FlagSeen, Other: "X"}, str: "b:2,SX"},
		{in: "b:2,S,foo", want: Name{Base: "b", HasInfo: true, Flags: FlagSeen, Other: ",foo"}},
		{in: "b:2,,x", want: Name{Base: "b", HasInfo: true, Other: ",x"}},
		{in: "b:1,foo", want: Name{Base: "b", Other: ":1,foo"}},
		{in: "b:", want: Name{Base: "b", Other: ":"}},
		{in: "b:2", want: Name{Base: "b", Other: ":2"}},
		// A ':' among unknown letters of a ":2," info must not be taken for
		// a non-2 info part when formatting.
		{in: "b:2,S:X", want: Name{Base: "b", HasInfo: true, Flags: FlagSeen, Other: ":X"}},
		{in: "b,S=abc", want: Name{Base: "b,S=abc"}},
		{in: "b,S=-1,W=7", want: Name{Base: "b,S=-1,W=7"}, vsize: 7, hasVSize: true},
		{in: "b,W=5,S=9", want: Name{Base: "b,W=5,S=9"}, size: 9, hasSize: true, vsize: 5, hasVSize: true},
		{in: "S=9", want: Name{Base: "S=9"}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseName(tc.in)
			if err != nil {
				t.Fatalf("ParseName: %v", err)
			}
			if got != tc.want {
				t.Errorf("ParseName = %+v, want %+v", got, tc.want)
			}
			str := tc.str
			if str == "" {
				str = tc.in
			}
			if s := got.String(); s != str {
				t.Errorf("String = %q, want %q", s, str)
			}
			if n, ok := got.Size(); n != tc.size || ok != tc.hasSize {
				t.Errorf("Size = %d, %v; want %d, %v", n, ok, tc.size, tc.hasSize)
			}
			if n, ok := got.VSize(); n != tc.vsize || ok != tc.hasVSize {
				t.Errorf("VSize = %d, %v; want %d, %v", n, ok, tc.vsize, tc.hasVSize)
			}
		})
	}
}

func TestParseNameInvalid(t *testing.T) {
	for _, in := range []string{"", ".hidden", "a/b", "a\x00b", "..", "."} {
		if n, err := ParseName(in); err == nil {
			t.Errorf("ParseName(%q) = %+v, want error", in, n)
		}
	}
}

func TestNameStringSetsInfo(t *testing.T) {
	tests := []struct {
		n    Name
		want string
	}{
		{Name{Base: "b"}, "b"},
		{Name{Base: "b", Flags: FlagSeen}, "b:2,S"},
		{Name{Base: "b", Keywords: Keywords(0).With(25)}, "b:2,z"},
		{Name{Base: "b", HasInfo: true}, "b:2,"},
		{Name{Base: "b", Flags: FlagTrashed | FlagDraft, Keywords: 2}, "b:2,DTb"},
	}
	for _, tc := range tests {
		if got := tc.n.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestFlagsAndKeywords(t *testing.T) {
	if got := (FlagSeen | FlagReplied | FlagDraft).String(); got != "DRS" {
		t.Errorf("flags = %q, want DRS", got)
	}
	var k Keywords
	k = k.With(0).With(3).With(25)
	for _, bad := range []int{-1, 26, 31, 32, 64, -64} {
		if k.With(bad) != k || k.Without(bad) != k || k.Has(bad) {
			t.Errorf("slot %d changed or reported keywords", bad)
		}
	}
	if got := k.String(); got != "adz" {
		t.Errorf("keywords = %q, want adz", got)
	}
	if !k.Has(3) || k.Has(4) {
		t.Errorf("Has wrong for %q", k)
	}
	if got := k.Without(3).String(); got != "az" {
		t.Errorf("Without(3) = %q, want az", got)
	}
}

// canonicalInfo reports whether the letters of a ":2," info are already
// in the order String writes: flags ascending, keywords ascending, then
// unknown letters, with no letter twice.
func canonicalInfo(letters string) bool {
	n, err := ParseName("x:2," + letters)
	if err != nil {
		return false
	}
	return n.Flags.String()+n.Keywords.String()+n.Other == letters
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{
		"1.M2P3Q4.host,S=100,W=104:2,FRSab",
		"b:2,XS", "b:1,x", "b:", "b:2,S,foo", "b:2,S:X", "b:2,,", "b,S=1",
		"1732380000.M523P41Q1.mx,S=2048,W=2101:2,RSa",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		out := n.String()
		n2, err := ParseName(out)
		if err != nil {
			t.Fatalf("ParseName(String(ParseName(%q))) = %q: %v", s, out, err)
		}
		if n2 != n {
			t.Fatalf("round trip of %q via %q: %+v != %+v", s, out, n2, n)
		}
		if n2.String() != out {
			t.Fatalf("String not idempotent: %q -> %q", out, n2.String())
		}
		if !strings.HasPrefix(out, n.Base) {
			t.Fatalf("String %q lost base %q", out, n.Base)
		}
		// A name already in normalised order comes back unchanged.
		base, info, ok := strings.Cut(s, ":")
		_ = base
		if !ok {
			if out != s {
				t.Fatalf("bare name %q became %q", s, out)
			}
			return
		}
		if letters, ok := strings.CutPrefix(info, "2,"); ok {
			group, _, _ := strings.Cut(letters, ",")
			if !canonicalInfo(group) {
				return
			}
		}
		if out != s {
			t.Fatalf("normalised name %q became %q", s, out)
		}
	})
}
