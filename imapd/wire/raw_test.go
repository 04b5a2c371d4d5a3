package wire

import (
	"bytes"
	"testing"
)

func TestWriterChallengeAndRaw(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(w *Writer) error
		want string
	}{
		{"empty challenge", func(w *Writer) error { return w.Challenge(nil) }, "+ \r\n"},
		{"challenge", func(w *Writer) error { return w.Challenge([]byte("hi\x00")) }, "+ aGkA\r\n"},
		{"raw", func(w *Writer) error {
			w.Untagged()
			w.Raw("1 FETCH (BODY[HEADER.FIELDS (FROM)]<0> NIL)")
			w.CRLF()
			return w.Flush()
		}, "* 1 FETCH (BODY[HEADER.FIELDS (FROM)]<0> NIL)\r\n"},
	} {
		var buf bytes.Buffer
		if err := tc.do(NewWriter(&buf)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if buf.String() != tc.want {
			t.Errorf("%s: wrote %q, want %q", tc.name, buf.String(), tc.want)
		}
	}
}
