package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "mailroom.conf")
	if err := os.WriteFile(conf, []byte("mail_root = "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--config", conf, "--check-config"}, 0, ": ok"},
		{[]string{"--config", conf, "--print-config"}, 0, "mail_root"},
		{[]string{"--config", conf, "--listen", "pop3=:1", "--check-config"}, exitConfig, "unknown service"},
		{[]string{"--config", conf, "--service", "smtp"}, exitConfig, "want imap or imaps"},
		{[]string{"--config", filepath.Join(dir, "missing.conf"), "--check-config"}, exitConfig, "missing.conf"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"imapd"}, tc.args...), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("%v: exit %d, output %q %q; want %d and %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out)
		}
	}
}
