package pop3d

import (
	"fmt"
	"strings"
	"testing"
)

// nameBlobCases are names the blob must give back byte for byte.
var nameBlobCases = []string{
	"1732300000.M104729P10001.bench,S=8919,W=9141:2,S",
	"1732300000.M104729P10001.bench,S=8919,W=9141",
	"1700000000.M000001P0.host:2,",                 // leading zeros, zero alone
	"007.x",                                        // a name starting with zeros
	"12345678901234567890123456789.M1",             // more than 18 digits in a row
	"999999999999999999.9999999999999999999:2,FRS", // 18 and 19 nines
	"abc", // no digits
	"1",   // only a number
	"1732300000.a3f9c0e1d2b4.mail.example.org:2,Sab",    // Courier-style hex unique part
	"1732300000.M1P2V0000000000000803I0000000000123456", // Dovecot's V/I fields
	"name with spaces and ünïcode 42",
}

func TestNameBlobRoundTrip(t *testing.T) {
	var b nameBlob
	offs := make([]uint32, len(nameBlobCases))
	for i, name := range nameBlobCases {
		offs[i] = b.add(name)
	}
	b.compact()
	for i, want := range nameBlobCases {
		if got := string(b.appendName(nil, offs[i])); got != want {
			t.Errorf("name %d: got %q, want %q", i, got, want)
		}
	}
	// Adding after compact (a file that moved) keeps earlier names.
	off := b.add("1732300000.M104729P10001.bench,S=8919,W=9141:2,RS")
	if got := string(b.appendName(nil, off)); got != "1732300000.M104729P10001.bench,S=8919,W=9141:2,RS" {
		t.Errorf("added after compact: %q", got)
	}
	if got := string(b.appendName(nil, offs[0])); got != nameBlobCases[0] {
		t.Errorf("first name after a later add: %q", got)
	}
}

// TestNameBlobSmall checks the point of the blob: names in Dovecot's form
// take less than half their length, and a table that is full does not
// lose names.
func TestNameBlobSmall(t *testing.T) {
	var b nameBlob
	total := 0
	for i := range 10000 {
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,S", 1732300000+i/3, (i*104729)%1000000, 10000+i%5000, 1000+i, 1030+i)
		total += len(name)
		b.add(name)
	}
	if len(b.data)*2 > total {
		t.Errorf("%d names of %d bytes take %d bytes", 10000, total, len(b.data))
	}
	var full nameBlob
	var offs []uint32
	for i := range nameTextsMax + 100 {
		offs = append(offs, full.add(fmt.Sprintf("x%sy%d", strings.Repeat("q", i%7)+string(rune('a'+i%26))+fmt.Sprint(i%10 == 0)+strings.Repeat("z", i), i+1)))
	}
	if len(full.texts) > nameTextsMax {
		t.Errorf("text table has %d entries, max %d", len(full.texts), nameTextsMax)
	}
	for i, off := range offs {
		want := fmt.Sprintf("x%sy%d", strings.Repeat("q", i%7)+string(rune('a'+i%26))+fmt.Sprint(i%10 == 0)+strings.Repeat("z", i), i+1)
		if got := string(full.appendName(nil, off)); got != want {
			t.Fatalf("name %d: got %q, want %q", i, got, want)
		}
	}
}

func FuzzNameBlob(f *testing.F) {
	for _, name := range nameBlobCases {
		f.Add(name, "1.M2P3.h:2,S")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		var blob nameBlob
		oa := blob.add(a)
		ob := blob.add(b)
		blob.compact()
		oc := blob.add(a + b)
		for _, c := range []struct {
			off  uint32
			want string
		}{{oa, a}, {ob, b}, {oc, a + b}} {
			if got := string(blob.appendName(nil, c.off)); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		}
	})
}
