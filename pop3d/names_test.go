package pop3d

import (
	"fmt"
	"strings"
	"testing"
)

// nameBlobCases are names the list must give back byte for byte.
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
	"5.x,W=12:2,S",  // W= and a size that matches it
	"5.x,W=12,W=13", // two W= fields: the first counts
	"5.x,W=:2,",     // an empty W=
}

// dropTestRec is one record for a dropList test.
type dropTestRec struct {
	uid  uint32
	name string
	size int64
}

// dropCheck adds recs to a fresh list and reads them back every way.
func dropCheck(t *testing.T, recs []dropTestRec) *dropList {
	t.Helper()
	var l dropList
	for _, r := range recs {
		l.add(r.uid, r.name, r.size)
	}
	l.finish()
	if l.len() != len(recs) {
		t.Fatalf("len %d, want %d", l.len(), len(recs))
	}
	for i, r := range recs {
		e := l.at(i, nil)
		if e.uid != r.uid || e.size != r.size || string(e.name) != r.name {
			t.Fatalf("record %d: got %d %d %q, want %d %d %q", i, e.uid, e.size, e.name, r.uid, r.size, r.name)
		}
	}
	n := 0
	l.each(func(i int, e dropEntry) bool {
		r := recs[i]
		if i != n || e.uid != r.uid || e.size != r.size || string(e.name) != r.name {
			t.Fatalf("each, record %d (%d): got %d %d %q, want %d %d %q", i, n, e.uid, e.size, e.name, r.uid, r.size, r.name)
		}
		n++
		return true
	})
	if n != len(recs) {
		t.Fatalf("each visited %d records, want %d", n, len(recs))
	}
	return &l
}

func TestDropListRoundTrip(t *testing.T) {
	var recs []dropTestRec
	for round := range 5 { // more than a block, so deltas cross blocks
		for i, name := range nameBlobCases {
			size := int64(len(name) * 100)
			if round == 1 {
				size = 12 // equal to W= in some names
			}
			if round == 2 {
				size = 1 << 40 // bigger than 4 GiB
			}
			recs = append(recs, dropTestRec{uid: uint32(1 + round*1000 + i*3), name: name, size: size})
		}
	}
	recs = append(recs, dropTestRec{uid: ^uint32(0) - 1, name: "1.M1P1.h,S=1,W=2", size: 2})
	dropCheck(t, recs)
}

// TestDropListSmall checks the point of the list: messages named in
// Dovecot's form take about 20 bytes each, and a text table that is full
// does not lose names.
func TestDropListSmall(t *testing.T) {
	var recs []dropTestRec
	for i := range 10000 {
		size := int64(1000 + i)
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,S", 1732300000+i*37, (i*104729)%1000000, 10000+i%5000, size-30, size)
		recs = append(recs, dropTestRec{uid: uint32(i + 1), name: name, size: size})
	}
	l := dropCheck(t, recs)
	if per := float64(len(l.data)+8*len(l.blocks)) / 10000; per > 22 {
		t.Errorf("%.1f bytes per message, want at most 22", per)
	}
	recs = recs[:0]
	for i := range nameTextsMax + 100 {
		name := fmt.Sprintf("x%sy%d", strings.Repeat("q", i%7)+string(rune('a'+i%26))+fmt.Sprint(i%10 == 0)+strings.Repeat("z", i), i+1)
		recs = append(recs, dropTestRec{uid: uint32(i + 1), name: name, size: int64(i)})
	}
	l = dropCheck(t, recs)
	if len(l.texts) > nameTextsMax {
		t.Errorf("text table has %d entries, max %d", len(l.texts), nameTextsMax)
	}
}

func TestNameVSize(t *testing.T) {
	cases := []struct {
		name string
		want int64
		ok   bool
	}{
		{"1.M1P1.h,S=5,W=7:2,S", 7, true},
		{"1.M1P1.h,W=7", 7, true},
		{"1.M1P1.h,S=5:2,W=7", 0, false}, // after the info part
		{"1.M1P1.h,W=x", 0, false},
		{"1.M1P1.h,W=", 0, false},
		{"W=7", 0, false},
		{"1.h,W=99999999999999999999", 0, false},
	}
	for _, c := range cases {
		if v, ok := nameVSize(c.name); v != c.want || ok != c.ok {
			t.Errorf("%q: got %d %v, want %d %v", c.name, v, ok, c.want, c.ok)
		}
		if v, ok := nameVSize([]byte(c.name)); v != c.want || ok != c.ok {
			t.Errorf("%q as bytes: got %d %v", c.name, v, ok)
		}
	}
}

func FuzzDropList(f *testing.F) {
	for _, name := range nameBlobCases {
		f.Add(name, "1.M2P3.h:2,S", uint32(7), int64(12))
	}
	f.Fuzz(func(t *testing.T, a, b string, gap uint32, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 || gap == 0 || gap > 1<<30 {
			return
		}
		var recs []dropTestRec
		uid := uint32(1)
		for i := range dropBlock + 3 {
			name := a
			if i%2 == 1 {
				name = b
			} else if i%3 == 0 {
				name = a + b
			}
			recs = append(recs, dropTestRec{uid: uid, name: name, size: size + int64(i)})
			uid += gap % 1000
			if gap%1000 == 0 {
				uid++
			}
		}
		dropCheck(t, recs)
	})
}
