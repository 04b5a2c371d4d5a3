package listen

import (
	"reflect"
	"strings"
	"testing"
)

func TestFromFlags(t *testing.T) {
	configured := []Want{{Name: "pop3", Addrs: []string{":110"}}, {Name: "pop3s", Addrs: []string{":995"}}}
	tests := []struct {
		name  string
		flags []string
		want  []Want
		err   string
	}{
		{"no flags: the configuration", nil, configured, ""},
		{"plain address: the first service only", []string{"127.0.0.1:2110"},
			[]Want{{Name: "pop3", Addrs: []string{"127.0.0.1:2110"}}, {Name: "pop3s"}}, ""},
		{"named", []string{"pop3s=127.0.0.1:2995", "pop3=[::1]:2110", "127.0.0.1:2111"},
			[]Want{{Name: "pop3", Addrs: []string{"[::1]:2110", "127.0.0.1:2111"}}, {Name: "pop3s", Addrs: []string{"127.0.0.1:2995"}}}, ""},
		{"unknown service", []string{"imap=:143"}, nil, `unknown service "imap" (want pop3 or pop3s)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromFlags(configured, tt.flags)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FromFlags = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if configured[0].Addrs[0] != ":110" {
		t.Error("FromFlags changed its input")
	}
}
