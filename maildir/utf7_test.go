package maildir

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func TestMUTF7(t *testing.T) {
	tests := []struct{ utf8, mutf7 string }{
		{"", ""},
		{"INBOX", "INBOX"},
		{"&", "&-"},
		{"a&b", "a&-b"},
		{"Café", "Caf&AOk-"},
		// RFC 3501 §5.1.3 example.
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"€", "&IKw-"},
		{"😀", "&2D3eAA-"},
		{"é&é", "&AOk-&-&AOk-"},
		{"\x00", "&AAA-"},
		{"tab\tx", "tab&AAk-x"},
		{"\x7f", "&AH8-"},
	}
	for _, tc := range tests {
		if got := EncodeMUTF7(tc.utf8); got != tc.mutf7 {
			t.Errorf("EncodeMUTF7(%q) = %q, want %q", tc.utf8, got, tc.mutf7)
		}
		got, err := DecodeMUTF7(tc.mutf7)
		if err != nil || got != tc.utf8 {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want %q", tc.mutf7, got, err, tc.utf8)
		}
	}
}

func TestMUTF7Invalid(t *testing.T) {
	for _, in := range []string{
		"&",          // unterminated
		"&AOk",       // unterminated
		"&AGE-",      // encoded printable 'a'
		"&AOk-&AOk-", // adjacent runs (canonical is &AOkA6Q-)
		"&AO-",       // 12 bits: not whole UTF-16 units
		"&AOl-",      // non-zero padding bits
		"&2D0-",      // lone high surrogate
		"&3gA-",      // lone low surrogate
		"&2D3YPQ-",   // high followed by high
		"&A/k-",      // '/' is not in the modified alphabet
		"&A=k-",      // not base64
		"Caf\xc3\xa9",
		"a\tb", // raw control character
		"a\x7fb",
	} {
		if got, err := DecodeMUTF7(in); !errors.Is(err, ErrMUTF7) {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want ErrMUTF7", in, got, err)
		}
	}
}

func TestEncodeMUTF7InvalidUTF8(t *testing.T) {
	got, err := DecodeMUTF7(EncodeMUTF7("a\xffb"))
	if err != nil || got != "a\uFFFDb" {
		t.Fatalf("invalid UTF-8 round trip = %q, %v; want a\\uFFFDb", got, err)
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"", "INBOX", "&-", "Caf&AOk-", "~peter/mail/&U,BTFw-/&ZeVnLIqe-", "&2D3eAA-", "Café", "日本語", "a&b", "😀x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if utf8.ValidString(s) {
			enc := EncodeMUTF7(s)
			dec, err := DecodeMUTF7(enc)
			if err != nil || dec != s {
				t.Fatalf("Decode(Encode(%q)) = %q, %v (encoded %q)", s, dec, err, enc)
			}
			for i := 0; i < len(enc); i++ {
				if enc[i] < 0x20 || enc[i] > 0x7e {
					t.Fatalf("Encode(%q) = %q holds non-printable byte", s, enc)
				}
			}
		}
		dec, err := DecodeMUTF7(s)
		if err != nil {
			return
		}
		if !utf8.ValidString(dec) {
			t.Fatalf("Decode(%q) = %q is not UTF-8", s, dec)
		}
		if enc := EncodeMUTF7(dec); enc != s {
			t.Fatalf("Encode(Decode(%q)) = %q: decoder accepted a non-canonical form", s, enc)
		}
	})
}
