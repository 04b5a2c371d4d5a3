package listen

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	tests := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }},
		{"abstract", func(t *testing.T) string {
			return fmt.Sprintf("@mailroom-listen-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.addr(t)
			sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer sock.Close()
			t.Setenv("NOTIFY_SOCKET", name)
			for _, state := range []string{"READY=1", "STATUS=serving 3 sockets\nMAINPID=1"} {
				if err := Notify(state); err != nil {
					t.Fatalf("Notify(%q): %v", state, err)
				}
				buf := make([]byte, 512)
				sock.SetReadDeadline(time.Now().Add(waitLimit))
				n, err := sock.Read(buf)
				if err != nil || string(buf[:n]) != state {
					t.Fatalf("received %q, %v; want %q", buf[:n], err, state)
				}
			}
		})
	}
}

func TestNotifyErrors(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET = %v, want nil", err)
	}
	tests := []struct{ socket, state, err string }{
		{"relative/path", "READY=1", "unsupported NOTIFY_SOCKET"},
		{filepath.Join(t.TempDir(), "nobody-listens"), "READY=1", "sd_notify"},
		{"/run/whatever", "", "empty state"},
	}
	for _, tt := range tests {
		t.Setenv("NOTIFY_SOCKET", tt.socket)
		if err := Notify(tt.state); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Notify(%q) to %q = %v, want %q", tt.state, tt.socket, err, tt.err)
		}
	}
}
