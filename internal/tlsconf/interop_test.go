package tlsconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool returns the path of a Debian program an interop test drives.
// A missing program skips the test, or fails it when
// MAILROOM_REQUIRE_INTEROP=1 (make test, CI).
func requireTool(t *testing.T, path string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err == nil {
		return p
	}
	if os.Getenv("MAILROOM_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s is required (MAILROOM_REQUIRE_INTEROP=1): %v", path, err)
	}
	t.Skipf("%s not installed: %v", path, err)
	return ""
}

// TestSelfSignedOpenSSL checks that OpenSSL, in its strict RFC 5280 mode
// (which Python 3.13's ssl turns on by default), takes the self-signed file
// as its own trust anchor for the names it was made for, and only those.
func TestSelfSignedOpenSSL(t *testing.T) {
	openssl := requireTool(t, "/usr/bin/openssl")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := WriteSelfSigned(certFile, keyFile, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		check []string
		ok    bool
	}{
		{[]string{"-verify_hostname", "localhost"}, true},
		{[]string{"-verify_ip", "127.0.0.1"}, true},
		{[]string{"-verify_hostname", "example.org"}, false},
		{[]string{"-verify_ip", "127.0.0.2"}, false},
	}
	for _, tt := range tests {
		args := append([]string{"verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", certFile}, tt.check...)
		args = append(args, certFile)
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if ok := err == nil && strings.Contains(string(out), ": OK"); ok != tt.ok {
			t.Errorf("openssl %s: %v\n%s(want ok=%v)", strings.Join(args, " "), err, out, tt.ok)
		}
	}
}
