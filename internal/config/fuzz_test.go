package config

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// survives Print and Parse unchanged.
func FuzzParse(f *testing.F) {
	if sample, err := os.ReadFile("../../etc/mailroom.conf"); err == nil {
		f.Add(string(sample))
	}
	f.Add("")
	f.Add("hostname = mx.example.org\ndomains = a.example, B.example\n")
	f.Add("[deliver]\nquota = 1G\nallow_pipe_targets = yes\n")
	f.Add("[smtpd]\nx = y\n")
	f.Add("quota = 1\n")
	f.Add("recipient_delimiter =\nlog_level=debug\r\n[ deliver ]\nmax_message_size=0\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		if err := c.Check(); err != nil {
			t.Fatalf("parsed config fails Check: %v\ninput %q", err, in)
		}
		var buf bytes.Buffer
		if err := Print(&buf, c); err != nil {
			t.Fatalf("Print: %v", err)
		}
		again, err := Parse(&buf, "printed")
		if err != nil {
			t.Fatalf("Parse(Print): %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip changed config:\n%+v\n%+v", c, again)
		}
	})
}
