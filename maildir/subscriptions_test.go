package maildir

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailroom/internal/testutil"
)

func TestSubscriptionsFormat(t *testing.T) {
	root := ftestRoot(t)
	for _, n := range []string{"Lists/Go", "inbox", "Café/x", "Lists/Go"} {
		if err := Subscribe(root, n); err != nil {
			t.Fatalf("Subscribe(%q): %v", n, err)
		}
	}
	path := filepath.Join(root, SubscriptionsName)
	// Byte for byte what Dovecot 2.3.19 wrote for the same commands.
	want := "V\t2\n\nLists\tGo\nINBOX\nCaf&AOk-\tx\n"
	if got := qtestRead(t, path); got != want {
		t.Fatalf("subscriptions = %q, want %q", got, want)
	}
	subs, err := ReadSubscriptions(root)
	if err != nil || !slices.Equal(subs, []string{"Lists/Go", "INBOX", "Café/x"}) {
		t.Fatalf("ReadSubscriptions = %q, %v", subs, err)
	}
	if err := Unsubscribe(root, "Lists/Go"); err != nil {
		t.Fatal(err)
	}
	if err := Unsubscribe(root, "Never"); err != nil {
		t.Fatal(err)
	}
	if got := qtestRead(t, path); got != "V\t2\n\nINBOX\nCaf&AOk-\tx\n" {
		t.Fatalf("after unsubscribe = %q", got)
	}
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Fatalf("lock left behind: %v", err)
	}
	for _, bad := range []string{"a.b", "A//B", ".x", "x\n"} {
		if err := Subscribe(root, bad); err == nil {
			t.Errorf("Subscribe(%q) succeeded", bad)
		}
	}
}

func TestSubscriptionsRead(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"missing", "", nil},
		{"v2", "V\t2\n\nA\tB\nINBOX\n", []string{"A/B", "INBOX"}},
		// A TAB inside a level unescapes fine but is no modified UTF-7.
		{"v2 escaped tab", "V\t2\n\nx\x01ty\tz\nok\n", []string{"ok"}},
		{"v1 courier/old dovecot", "Sent\nLists/Go\nCaf&AOk-\n", []string{"Sent", "Lists/Go", "Café"}},
		{"duplicates and blanks", "V\t2\n\nA\n\nA\nB\n", []string{"A", "B"}},
		{"bad mutf7 skipped", "V\t2\n\n&AGE-\nok\n", []string{"ok"}},
		{"no trailing newline", "V\t2\n\nA", []string{"A"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := ftestRoot(t)
			if tc.name != "missing" {
				os.WriteFile(filepath.Join(root, SubscriptionsName), []byte(tc.file), 0o600)
			}
			got, err := ReadSubscriptions(root)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A version 1 file is rewritten in version 2 on the next change.
func TestSubscriptionsUpgradeV1(t *testing.T) {
	root := ftestRoot(t)
	path := filepath.Join(root, SubscriptionsName)
	os.WriteFile(path, []byte("Sent\nLists/Go\n"), 0o600)
	if err := Subscribe(root, "Sent"); err != nil { // already there, but v1
		t.Fatal(err)
	}
	if got := qtestRead(t, path); got != "V\t2\n\nSent\nLists\tGo\n" {
		t.Fatalf("upgraded file = %q", got)
	}
}

func TestSubsEscape(t *testing.T) {
	for _, s := range []string{"", "plain", "\x01", "a\tb\rc\nd\x01e", "\x01\x01t"} {
		e := subsEscape(s)
		if strings.ContainsAny(e, "\t\r\n") {
			t.Errorf("subsEscape(%q) = %q holds a separator", s, e)
		}
		if u := subsUnescape(e); u != s {
			t.Errorf("unescape(escape(%q)) = %q", s, u)
		}
	}
	// Dovecot drops \001 before an unknown letter and keeps a trailing one.
	if got := subsUnescape("a\x01xb\x01"); got != "axb\x01" {
		t.Errorf("subsUnescape = %q", got)
	}
}

func FuzzSubscriptions(f *testing.F) {
	for _, s := range []string{"V\t2\n\nA\tB\nINBOX\n", "Sent\nA/B\n", "V\t2\n\nx\x01ty\n", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, line := range subsParse(data) {
			name, ok := subsDecodeLine(line)
			if !ok {
				continue
			}
			// A name we can write must be written back as the same line
			// (so Unsubscribe finds it).
			enc, err := subsEncodeName(name)
			if err != nil {
				continue
			}
			if back, ok := subsDecodeLine(enc); !ok || back != name {
				t.Fatalf("line %q -> %q -> %q -> %q", line, name, enc, back)
			}
		}
	})
}

// TestSubscriptionsDovecot checks both directions against Dovecot's imap:
// what mailroom writes Dovecot lists, and what Dovecot writes mailroom
// reads.
func TestSubscriptionsDovecot(t *testing.T) {
	testutil.RequireTool(t, dovecotIMAP)
	root := filepath.Join(t.TempDir(), "Maildir")
	for _, n := range []string{"Lists/Go", "Café/x", "Sent"} {
		if err := CreateFolder(root, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"Lists/Go", "INBOX", "Café/x"} {
		if err := Subscribe(root, n); err != nil {
			t.Fatal(err)
		}
	}
	conf := dovecotPrepare(t, root)
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("namespace inbox {\n  inbox = yes\n  separator = /\n}\n")
	f.Close()
	s := dovecotStart(t, conf, root)

	lsub := s.run(`LSUB "" "*"`)
	slices.Sort(lsub)
	wantLsub := []string{`* LSUB () "/" Caf&AOk-/x`, `* LSUB () "/" INBOX`, `* LSUB () "/" Lists/Go`}
	if !slices.Equal(lsub, wantLsub) {
		t.Fatalf("Dovecot LSUB = %q, want %q", lsub, wantLsub)
	}
	list := strings.Join(s.run(`LIST "" "*"`), "\n")
	for _, want := range []string{`"/" Lists/Go`, `"/" Caf&AOk-/x`, `"/" Sent`} {
		if !strings.Contains(list, want) {
			t.Errorf("Dovecot LIST lacks %s:\n%s", want, list)
		}
	}

	// Dovecot changes things; mailroom reads them.
	s.run(`CREATE "Neu/&AMQ-rger"`)
	s.run(`SUBSCRIBE "Neu/&AMQ-rger"`)
	s.run(`UNSUBSCRIBE "INBOX"`)
	s.run(`DELETE "Sent"`)
	s.run(`RENAME "Lists/Go" "Lists/Golang"`)
	s.run("LOGOUT")

	subs, err := ReadSubscriptions(root)
	if err != nil {
		t.Fatal(err)
	}
	// Dovecot, like RenameFolder, leaves subscriptions alone on RENAME.
	wantSubs := []string{"Café/x", "Lists/Go", "Neu/Ärger"}
	slices.Sort(subs)
	if !slices.Equal(subs, wantSubs) {
		t.Errorf("ReadSubscriptions after Dovecot = %q, want %q", subs, wantSubs)
	}
	folders := ftestList(t, root)
	wantFolders := []string{"Café/x", "Lists/Golang", "Neu/Ärger"}
	if !slices.Equal(folders, wantFolders) {
		t.Errorf("ListFolders after Dovecot = %q, want %q", folders, wantFolders)
	}
	if _, err := os.Stat(filepath.Join(root, ".Neu.&AMQ-rger", FolderMarkerName)); err != nil {
		t.Errorf("Dovecot's folder has no maildirfolder: %v", err)
	}
}
