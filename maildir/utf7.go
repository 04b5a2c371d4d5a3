package maildir

// Modified UTF-7, RFC 3501 §5.1.3: the encoding of IMAP mailbox names, and
// of Maildir++ folder names on disk (Dovecot and Courier both store it).
//
//   - Printable US-ASCII (0x20–0x7e) stands for itself, except '&', which is
//     written "&-".
//   - Anything else is UTF-16BE in a modified base64 (',' instead of '/', no
//     padding) between '&' and '-'.
//
// The decoder accepts only the canonical form the encoder produces (no
// encoded printable ASCII, no two encoded runs side by side, zero padding
// bits, paired surrogates), so a name has exactly one spelling on disk.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrMUTF7 is returned by DecodeMUTF7 for text that is not canonical
// modified UTF-7.
var ErrMUTF7 = errors.New("maildir: invalid modified UTF-7")

// mutf7Base64 is RFC 3501's modified base64 alphabet, strict about the
// unused bits of the last character.
var mutf7Base64 = base64.NewEncoding(
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,",
).WithPadding(base64.NoPadding).Strict()

// mutf7Printable reports whether c stands for itself in modified UTF-7.
func mutf7Printable(r rune) bool { return r >= 0x20 && r <= 0x7e }

// EncodeMUTF7 encodes a UTF-8 string as modified UTF-7. Invalid UTF-8 bytes
// are encoded as U+FFFD, as ranging over a Go string yields them.
func EncodeMUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 0, 2*len(run))
		for _, u := range run {
			buf = append(buf, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(mutf7Base64.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if !mutf7Printable(r) {
			run = utf16.AppendRune(run, r)
			continue
		}
		flush()
		if r == '&' {
			b.WriteString("&-")
		} else {
			b.WriteRune(r)
		}
	}
	flush()
	return b.String()
}

// DecodeMUTF7 decodes canonical modified UTF-7 into UTF-8.
func DecodeMUTF7(s string) (string, error) {
	var b strings.Builder
	afterRun := false // the previous token was an encoded run
	for i := 0; i < len(s); {
		c := s[i]
		if !mutf7Printable(rune(c)) {
			return "", fmt.Errorf("%w: byte %#x at %d", ErrMUTF7, c, i)
		}
		if c != '&' {
			b.WriteByte(c)
			afterRun = false
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated '&' at %d", ErrMUTF7, i)
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			afterRun = false
			continue
		}
		if afterRun {
			// Canonical form merges adjacent runs into one.
			return "", fmt.Errorf("%w: adjacent encoded runs", ErrMUTF7)
		}
		if err := mutf7DecodeRun(&b, enc); err != nil {
			return "", err
		}
		afterRun = true
	}
	return b.String(), nil
}

// mutf7DecodeRun decodes the base64 between '&' and '-' into b.
func mutf7DecodeRun(b *strings.Builder, enc string) error {
	raw, err := mutf7Base64.DecodeString(enc)
	if err != nil || len(raw)%2 != 0 {
		return fmt.Errorf("%w: bad base64 run %q", ErrMUTF7, enc)
	}
	units := make([]uint16, len(raw)/2)
	for j := range units {
		units[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
	}
	for j := 0; j < len(units); j++ {
		r := rune(units[j])
		switch {
		case utf16.IsSurrogate(r):
			if j+1 >= len(units) {
				return fmt.Errorf("%w: unpaired surrogate", ErrMUTF7)
			}
			r = utf16.DecodeRune(r, rune(units[j+1]))
			if r == utf8.RuneError {
				return fmt.Errorf("%w: unpaired surrogate", ErrMUTF7)
			}
			j++
		case mutf7Printable(r):
			// RFC 3501 §5.1.3: printable US-ASCII must represent itself.
			return fmt.Errorf("%w: encoded printable ASCII %q", ErrMUTF7, r)
		}
		b.WriteRune(r)
	}
	return nil
}
