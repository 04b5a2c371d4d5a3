package listen

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestOpenStandalone(t *testing.T) {
	t.Setenv("LISTEN_PID", "1") // another process's: ignored, and unset
	t.Setenv("LISTEN_FDS", "2")
	set, err := Open(Options{Wants: []Want{
		{Name: "smtp", Addrs: []string{"127.0.0.1:0"}},
		{Name: "submission", Addrs: []string{"127.0.0.1:0", "127.0.0.1:0"}},
		{Name: "submissions"}, // no address: not served
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if set.Mode != Standalone || set.Conn != nil {
		t.Fatalf("mode %v, conn %v", set.Mode, set.Conn)
	}
	var names []string
	for _, l := range set.Listeners {
		names = append(names, l.Name)
		c, err := net.DialTimeout("tcp", l.Addr().String(), waitLimit)
		if err != nil {
			t.Fatalf("%s: %v", l.Name, err)
		}
		c.Close()
	}
	if got := strings.Join(names, " "); got != "smtp submission submission" {
		t.Errorf("listeners %q", got)
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS"} {
		if v, ok := lookupEnv(k); ok {
			t.Errorf("%s=%q left set", k, v)
		}
	}
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if err := set.Close(); err == nil {
		t.Error("second Close reported no error")
	}
}

func TestOpenStandaloneErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// The first address is a free port: after the failure it must be free
	// again, or Open leaked the listener.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := probe.Addr().String()
	probe.Close()

	tests := []struct {
		name  string
		wants []Want
		err   string
	}{
		{"busy", []Want{{Name: "pop3", Addrs: []string{free}}, {Name: "pop3s", Addrs: []string{busy.Addr().String()}}},
			"listen for pop3s on " + busy.Addr().String()},
		{"bad address", []Want{{Name: "imap", Addrs: []string{"127.0.0.1:imap4rev9"}}}, "listen for imap on 127.0.0.1:imap4rev9"},
		{"nothing", []Want{{Name: "imap"}}, "no address"},
		{"no wants", nil, "no address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Open(Options{Wants: tt.wants})
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				if set != nil {
					set.Close()
				}
				t.Fatalf("Open = %v, want error %q", err, tt.err)
			}
		})
	}
	again, err := net.Listen("tcp", free)
	if err != nil {
		t.Fatalf("the address bound before the failure is still taken: %v", err)
	}
	again.Close()
}

func lookupEnv(k string) (string, bool) { return os.LookupEnv(k) }
