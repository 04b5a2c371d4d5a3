package maildir

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestParseUidlist(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantErr   bool
		validity  uint32
		next      uint32
		guid      string
		extra     []string
		uids      []uint32
		bases     []string
		dropped   int
		firstExts []string
	}{
		{
			name:     "dovecot 2.3 file",
			in:       "3 V1795467818 N1 G60790e272aaa046b1c29000083ecc375\n1 :1795467818.M670410P10524.vm,S=5,W=5\n",
			validity: 1795467818, next: 2, guid: "60790e272aaa046b1c29000083ecc375",
			uids: []uint32{1}, bases: []string{"1795467818.M670410P10524.vm,S=5,W=5"},
		},
		{
			name:     "fields and unknown header kept",
			in:       "3 V5 N10 Gffffffffffffffffffffffffffffffff Pabc\n3 W120 S118 Zfoo :a.b.c\n7 :d.e.f:2,S\n",
			validity: 5, next: 10, guid: "ffffffffffffffffffffffffffffffff", extra: []string{"Pabc"},
			uids: []uint32{3, 7}, bases: []string{"a.b.c", "d.e.f"}, firstExts: []string{"W120", "S118", "Zfoo"},
		},
		{
			name:     "version 1 (courier)",
			in:       "1 100 5\n2 x.y.z:2,S\n4 q.r.s\n",
			validity: 100, next: 5, uids: []uint32{2, 4}, bases: []string{"x.y.z", "q.r.s"},
		},
		{
			name:     "bad lines dropped",
			in:       "3 V1 N1 G00000000000000000000000000000000\n0 :zero\n5 :five\n4 :four-out-of-order\nx :nouid\n6 \n7 :a/b\n8 lowercase :ok\n",
			validity: 1, next: 9, guid: "00000000000000000000000000000000",
			uids: []uint32{5, 8}, bases: []string{"five", "ok"}, dropped: 5,
		},
		{
			name:     "duplicate base: later wins",
			in:       "3 V1 N1 G00000000000000000000000000000000\n1 :a\n2 :b\n3 :a\n",
			validity: 1, next: 4, guid: "00000000000000000000000000000000",
			uids: []uint32{2, 3}, bases: []string{"b", "a"},
		},
		{
			name:     "partial last line ignored",
			in:       "3 V1 N1 G00000000000000000000000000000000\n1 :a\n2 :b",
			validity: 1, next: 2, guid: "00000000000000000000000000000000",
			uids: []uint32{1}, bases: []string{"a"},
		},
		{name: "empty", in: "", wantErr: true},
		{name: "bad version", in: "2 V1 N1\n", wantErr: true},
		{name: "no uidvalidity", in: "3 N1 G00000000000000000000000000000000\n", wantErr: true},
		{name: "bad guid", in: "3 V1 N1 Gxyz\n", wantErr: true},
		{name: "garbage", in: "hello\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseUidlist([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrUidlistHeader) {
					t.Fatalf("err = %v, want ErrUidlistHeader", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.UIDValidity != tt.validity || u.NextUID != tt.next || u.GUID != tt.guid {
				t.Errorf("header = V%d N%d G%s, want V%d N%d G%s", u.UIDValidity, u.NextUID, u.GUID, tt.validity, tt.next, tt.guid)
			}
			if !slices.Equal(u.HeaderExtra, tt.extra) {
				t.Errorf("extra = %q, want %q", u.HeaderExtra, tt.extra)
			}
			var uids []uint32
			var bases []string
			for _, r := range u.Records {
				uids = append(uids, r.UID)
				bases = append(bases, r.Base())
			}
			if !slices.Equal(uids, tt.uids) || !slices.Equal(bases, tt.bases) {
				t.Errorf("records = %v %q, want %v %q", uids, bases, tt.uids, tt.bases)
			}
			if u.Dropped != tt.dropped {
				t.Errorf("dropped = %d, want %d", u.Dropped, tt.dropped)
			}
			if tt.firstExts != nil && !slices.Equal(u.Records[0].Fields, tt.firstExts) {
				t.Errorf("fields = %q, want %q", u.Records[0].Fields, tt.firstExts)
			}
		})
	}
}

func TestUidlistMarshalRoundTrip(t *testing.T) {
	in := "3 V5 N10 Gffffffffffffffffffffffffffffffff Pabc\n3 W120 S118 :a.b.c\n7 :d.e.f\n"
	u, err := ParseUidlist([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(u.Marshal()); got != in {
		t.Fatalf("marshal = %q, want %q", got, in)
	}
	if v, ok := u.Records[0].Field('W'); !ok || v != "120" {
		t.Fatalf("Field(W) = %q %v", v, ok)
	}
	// A record naming a full file name is written with the base only.
	u.Records = append(u.Records, UidlistRecord{UID: 11, Name: "g.h.i:2,FS"})
	if !bytes.HasSuffix(u.Marshal(), []byte("\n11 :g.h.i\n")) {
		t.Fatalf("marshal = %q", u.Marshal())
	}
}

func FuzzParseUidlist(f *testing.F) {
	f.Add([]byte("3 V1795467818 N1 G60790e272aaa046b1c29000083ecc375\n1 :1795467818.M670410P10524.vm,S=5,W=5\n"))
	f.Add([]byte("3 V5 N10 Gffffffffffffffffffffffffffffffff Pabc\n3 W120 S118 Zfoo :a.b.c\n7 :d.e.f:2,S\n"))
	f.Add([]byte("1 100 5\n2 x.y.z:2,S\n"))
	f.Add([]byte("3 V1 N1 G00000000000000000000000000000000\n1 :a\n1 :a\n0 :b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUidlist(data)
		if err != nil {
			return
		}
		for i, r := range u.Records {
			if r.UID == 0 || (i > 0 && r.UID <= u.Records[i-1].UID) {
				t.Fatalf("records not strictly ascending: %v", u.Records)
			}
			if r.UID >= u.NextUID {
				t.Fatalf("uid %d >= next uid %d", r.UID, u.NextUID)
			}
		}
		// What we write, we read back identically.
		out := u.Marshal()
		u2, err := ParseUidlist(out)
		if err != nil {
			if u.GUID == "" {
				return // a header without G is written "G" and rejected; rewrite adds one
			}
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		if !bytes.Equal(u2.Marshal(), out) {
			t.Fatalf("not stable: %q vs %q", u2.Marshal(), out)
		}
	})
}
