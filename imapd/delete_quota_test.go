package imapd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mailroom/maildir"
)

// TestDeleteFolderQuota: DELETE takes the folder's messages off
// maildirsize in one "-bytes -count" line (as Dovecot and Courier do),
// seen by GETQUOTAROOT before and after. Deleting .Trash, which the quota
// does not count, writes nothing.
func TestDeleteFolderQuota(t *testing.T) {
	e := newTestEnv(t, nil)
	root := e.root()
	c := e.login()
	for _, f := range []string{"Lists"} {
		must(t, last(c.cmd("c", "CREATE "+f)), "c OK")
	}
	deliver(t, root, "", fixture1)
	deliver(t, root, "Lists", fixture1)
	deliver(t, root, "Lists", fixture2)
	deliver(t, root, "Trash", fixture2)
	size := func(folder string) int64 {
		t.Helper()
		path, err := maildir.FolderPath(root, folder)
		if err != nil {
			t.Fatal(err)
		}
		m, err := maildir.OpenMailbox(path)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, msg := range m.Messages() {
			s, ok := maildir.QuotaSize(msg)
			if !ok {
				t.Fatalf("no size for %s", msg.Path)
			}
			n += s
		}
		return n
	}
	inbox, lists := size("INBOX"), size("Lists")
	writeMaildirsize(t, root, "10485760S,100C\n"+strconv.FormatInt(inbox+lists, 10)+" 3\n")
	quota := func(bytes, count int64) string {
		return `* QUOTA "" (STORAGE ` + strconv.FormatInt(kib(bytes), 10) + " 10240 MESSAGE " + strconv.FormatInt(count, 10) + " 100)"
	}
	replay(t, c, []step{
		{"a GETQUOTAROOT INBOX", []string{`* QUOTAROOT INBOX ""`, quota(inbox+lists, 3), "a OK GETQUOTAROOT completed"}},
		{"b SELECT Lists", []string{"<*>", "<*>", "* 2 EXISTS", "<*>", "<*>", "<*>", "<*>", "<*>", "b OK [READ-WRITE] SELECT completed"}},
		{"c DELETE Lists", []string{"c OK DELETE completed"}},
		{"d GETQUOTAROOT INBOX", []string{`* QUOTAROOT INBOX ""`, quota(inbox, 1), "d OK GETQUOTAROOT completed"}},
		{"e DELETE Trash", []string{"e OK DELETE completed"}},
		{"f GETQUOTAROOT INBOX", []string{`* QUOTAROOT INBOX ""`, quota(inbox, 1), "f OK GETQUOTAROOT completed"}},
	})
	data, err := os.ReadFile(filepath.Join(root, maildir.QuotaFileName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if want := "-" + strconv.FormatInt(lists, 10) + " -2"; len(lines) != 3 || lines[2] != want {
		t.Errorf("maildirsize %q, want one line %q added", data, want)
	}
}
