package listen

import (
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestParseActivation(t *testing.T) {
	const ours = 4242
	tests := []struct {
		name            string
		pid, fds, names string
		want            activation
		err             string
	}{
		{name: "nothing passed"},
		{name: "another process", pid: "17", fds: "2", names: "a:b"},
		{name: "named", pid: "4242", fds: "2", names: "smtp:submission",
			want: activation{count: 2, names: []string{"smtp", "submission"}}},
		{name: "unnamed", pid: "4242", fds: "1", want: activation{count: 1}},
		{name: "empty name kept", pid: "4242", fds: "2", names: "smtp:",
			want: activation{count: 2, names: []string{"smtp", ""}}},
		{name: "zero fds", pid: "4242", fds: "0"},
		{name: "no LISTEN_FDS", pid: "4242"},
		{name: "bad pid", pid: "12a", fds: "1", err: "bad LISTEN_PID"},
		{name: "negative pid", pid: "-1", fds: "1", err: "bad LISTEN_PID"},
		{name: "bad fds", pid: "4242", fds: "x", err: "bad LISTEN_FDS"},
		{name: "negative fds", pid: "4242", fds: "-2", err: "bad LISTEN_FDS"},
		{name: "absurd fds", pid: "4242", fds: "100000", err: "bad LISTEN_FDS"},
		{name: "too few names", pid: "4242", fds: "2", names: "smtp", err: "1 names for 2"},
		{name: "too many names", pid: "4242", fds: "1", names: "a:b", err: "2 names for 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseActivation(tt.pid, tt.fds, tt.names, ours)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestListenerService(t *testing.T) {
	smtpd := []Want{{Name: "smtp"}, {Name: "submission"}, {Name: "submissions"}}
	pop3d := []Want{{Name: "pop3"}}
	tests := []struct {
		name   string
		wants  []Want
		fdName string
		want   string
		err    string
	}{
		{"match", smtpd, "submission", "submission", ""},
		{"unnamed, one want", pop3d, "", "pop3", ""},
		{"unknown, one want", pop3d, "unknown", "pop3", ""},
		{"other name, one want", pop3d, "imap", "", `fd 3 "imap" names no service`},
		{"unnamed, several wants", smtpd, "", "", "fd 3 has no name"},
		{"unknown, several wants", smtpd, "unknown", "", "set FileDescriptorName="},
		{"no match", smtpd, "smtps", "", `"smtps" names no service of this program (have smtp, submission, submissions)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := listenerService(tt.wants, passedFD{fd: 3, name: tt.fdName, listening: true})
			checkService(t, got, err, tt.want, tt.err)
		})
	}
}

func TestConnService(t *testing.T) {
	pop3d := []Want{{Name: "pop3"}, {Name: "pop3s"}}
	tests := []struct {
		name         string
		wants        []Want
		asked, fdNam string
		want, err    string
	}{
		{"asked", pop3d, "pop3s", "connection", "pop3s", ""},
		{"asked unknown", pop3d, "imap", "", "", `unknown service "imap"`},
		{"asked, no wants", nil, "imap", "", "imap", ""},
		{"by fd name", pop3d, "", "pop3s", "pop3s", ""},
		{"only want", pop3d[:1], "", "connection", "pop3", ""},
		{"ambiguous", pop3d, "", "connection", "", "several services (pop3, pop3s)"},
		{"none", nil, "", "connection", "", "no service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := connService(tt.wants, tt.asked, tt.fdNam)
			checkService(t, got, err, tt.want, tt.err)
		})
	}
}

func checkService(t *testing.T, got string, err error, want, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("= %q, %v; want error %q", got, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("= %q, %v; want %q", got, err, want)
	}
}

// addrString is an address of an unknown type, known only by its text.
type addrString string

func (a addrString) Network() string { return "test" }
func (a addrString) String() string  { return string(a) }

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 25}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 5, 6, 7)}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 110}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1")}, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1")}, false},
		{&net.TCPAddr{IP: net.ParseIP("::2")}, false},
		{&net.TCPAddr{IP: net.ParseIP("128.0.0.1")}, false},
		{&net.TCPAddr{}, false},
		{(*net.TCPAddr)(nil), false},
		{nil, false},
		{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, true},
		{&net.IPAddr{IP: net.IPv6loopback}, true},
		{&net.UnixAddr{Name: "/run/x", Net: "unix"}, false},
		{pipeAddr("stdin"), false},
		{addrString("127.0.0.1:25"), true},
		{addrString("[::1]:25"), true},
		{addrString("::1"), true},
		{addrString("[fe80::1%lo]:25"), false},
		{addrString("10.0.0.1:25"), false},
		{addrString("localhost:25"), false},
	}
	for _, tt := range tests {
		if got := IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%#v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestEnvAddr(t *testing.T) {
	tests := []struct {
		ip, port string
		want     string
		tcp      bool
	}{
		{"192.0.2.7", "4242", "192.0.2.7:4242", true},
		{"2001:db8::1", "25", "[2001:db8::1]:25", true},
		{"192.0.2.7", "", "192.0.2.7:0", true},
		{"192.0.2.7", "99999", "192.0.2.7:0", true},
		{"", "25", "stdin", false},
		{"host.example", "25", "stdin", false},
	}
	for _, tt := range tests {
		t.Setenv("TCPREMOTEIP", tt.ip)
		t.Setenv("TCPREMOTEPORT", tt.port)
		a := envAddr("TCPREMOTEIP", "TCPREMOTEPORT", "stdin")
		if _, isTCP := a.(*net.TCPAddr); a.String() != tt.want || isTCP != tt.tcp {
			t.Errorf("envAddr(%q, %q) = %T %v, want %v (tcp %v)", tt.ip, tt.port, a, a, tt.want, tt.tcp)
		}
	}
}
