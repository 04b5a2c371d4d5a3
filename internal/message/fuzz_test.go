package message

import (
	"bytes"
	"io"
	"reflect"
	"testing"

	"mailroom/internal/message/messagetest"
)

func FuzzParse(f *testing.F) {
	for _, m := range corpus {
		f.Add([]byte(m.Text))
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: message/rfc822\n\n--a--\n"))
	f.Add([]byte("\r\n\r\n\n\r\r\n--"))
	f.Fuzz(func(t *testing.T, file []byte) {
		s, err := Parse(bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, file, s)
		hs, err := ParseHeader(bytes.NewReader(file), s.Size, s.CRLFSize)
		if err != nil {
			t.Fatalf("ParseHeader: %v", err)
		}
		if !reflect.DeepEqual(hs.Envelope(), s.Envelope()) || hs.Root.Header != s.Root.Header || !bytes.Equal(hs.HeaderBlock(), s.HeaderBlock()) {
			t.Fatal("ParseHeader disagrees with Parse")
		}
		rec, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Structure
		if err := back.UnmarshalBinary(rec); err != nil {
			t.Fatalf("own record refused: %v", err)
		}
		if !reflect.DeepEqual(s, &back) {
			t.Fatal("cache round trip differs")
		}
		r, n, err := s.Open(bytes.NewReader(file), Section{}, &Partial{Offset: 1, Count: 50, HasCount: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		crlf := toCRLF(file)
		want := crlf[min(1, len(crlf)):min(51, len(crlf))]
		if err != nil || !bytes.Equal(got, want) || n != int64(len(want)) {
			t.Fatalf("BODY[]<1.50> %q (%d, %v), want %q", got, n, err, want)
		}
	})
}

func FuzzAddressList(f *testing.F) {
	for _, s := range messagetest.AddressListSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		list := ParseAddressList(in)
		if len(list) > maxListAddress+1 {
			t.Fatalf("%d addresses", len(list))
		}
		open := false
		for _, a := range list {
			switch a.Kind {
			case AddrMailbox:
				if a.Mailbox == "" || a.Host == "" {
					t.Fatalf("address with NIL parts %+v", a)
				}
			case AddrGroupStart:
				if open {
					t.Fatal("nested group")
				}
				open = true
			case AddrGroupEnd:
				if !open {
					t.Fatal("group end without start")
				}
				open = false
			default:
				t.Fatalf("kind %d", a.Kind)
			}
		}
		if open {
			t.Fatal("group not closed")
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	messagetest.SeedCacheRecords(f, Parse, func(r io.Reader, whole *Structure) (*Structure, error) {
		return ParseHeader(r, whole.Size, whole.CRLFSize)
	})
	f.Fuzz(func(t *testing.T, rec []byte) {
		var s Structure
		if err := s.UnmarshalBinary(rec); err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, rec) {
			t.Fatal("accepted record does not re-encode to itself")
		}
	})
}
