package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailroom/internal/config"
	"mailroom/internal/privs"
	"mailroom/internal/tlsconf"
)

// TestCommand: the shared command line's modes, exit statuses, and one
// "NAME: " before every error (never two).
func TestCommand(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "mailroom.conf")
	if err := os.WriteFile(conf, []byte("mail_root = "+dir+"\n[imapd]\nlisten_imaps =\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startErr := errors.New("tables: boom")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		name    string
		args    []string
		start   error
		code    int
		out     string // in stdout
		errLine string // all of stderr
	}{
		{"check", []string{"--check-config"}, nil, ExitOK, conf + ": ok\n", ""},
		{"check fails", []string{"--check-config"}, nil, ExitConfig, "", "testd: " + conf + ": checked: no\n"},
		{"print", []string{"--print-config", "--listen", "127.0.0.1:1"}, nil, ExitOK, "127.0.0.1:1", ""},
		{"unknown listen", []string{"--listen", "pop3=:1", "--check-config"}, nil, ExitConfig, "",
			`testd: --listen pop3=:1: unknown service "pop3" (want plain or secure)` + "\n"},
		{"unknown service", []string{"--service", "smtp"}, nil, ExitConfig, "", "testd: --service smtp: want plain or secure\n"},
		{"start fails", []string{"--listen", free}, startErr, ExitError, "", "testd: tables: boom\n"},
		{"root", []string{"--listen", free}, privs.ErrRoot, ExitConfig, "", "testd: " + privs.ErrRoot.Error() + "\n"},
		{"bad flag", []string{"--no-such-flag"}, nil, ExitUsage, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := testSpec(false)
			spec.Check = func(*config.Config) error {
				if tc.name == "check fails" {
					return errors.New("checked: no")
				}
				return nil
			}
			spec.Start = func(*config.Config, *tlsconf.Store, *slog.Logger) (Server, error) { return nil, tc.start }
			spec.DropPrivileges = func(*config.Config) error { return nil }
			var stdout, stderr bytes.Buffer
			args := append([]string{"testd", "--config", conf}, tc.args...)
			code := Command(spec, args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.out) {
				t.Errorf("stdout %q, want %q in it", stdout.String(), tc.out)
			}
			errText := stderr.String()
			if tc.name == "start fails" || tc.name == "root" {
				// The daemon's own log lines come first; the last line
				// is the program's error.
				lines := strings.Split(strings.TrimSpace(errText), "\n")
				errText = lines[len(lines)-1] + "\n"
			}
			if tc.errLine != "" && errText != tc.errLine {
				t.Errorf("stderr %q, want %q", errText, tc.errLine)
			}
			if strings.Contains(stderr.String(), "testd: testd:") {
				t.Errorf("doubled prefix: %q", stderr.String())
			}
		})
	}
	var stderr bytes.Buffer
	if code := Command(testSpec(false), []string{"testd", "--config", filepath.Join(dir, "missing.conf")}, &bytes.Buffer{}, &stderr); code != ExitConfig ||
		!strings.HasPrefix(stderr.String(), "testd: ") || !strings.Contains(stderr.String(), "missing.conf") {
		t.Errorf("missing file: exit %d, %q", code, stderr.String())
	}
}
