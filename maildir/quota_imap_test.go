package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// CheckQuota weighs several messages at once (IMAP MULTIAPPEND, COPY).
func TestCheckQuotaMany(t *testing.T) {
	tests := []struct {
		name        string
		file        string // maildirsize; "" = none
		q           Quota
		size, count int64
		over        bool
	}{
		{"unlimited", "", Quota{}, 1 << 40, 1 << 20, false},
		{"fits", "1000S,10C\n100 1\n", Quota{1000, 10}, 900, 9, false},
		{"bytes over", "1000S,10C\n100 1\n", Quota{1000, 10}, 901, 2, true},
		{"count over", "1000S,10C\n100 1\n", Quota{1000, 10}, 10, 10, true},
		{"nothing added at the limit", "1000S\n1000 3\n", Quota{Bytes: 1000}, 0, 0, false},
		// A stale "over" verdict is recounted (two change lines): the
		// Maildir holds 300 octets in 2 messages.
		{"stale over", "1000S\n100 1\n5000 5\n", Quota{Bytes: 1000}, 500, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := qtestMaildir(t, map[string][]int{"": {100, 200}})
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(root, QuotaFileName), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckQuota(root, tt.q, tt.size, tt.count)
			if got := errors.Is(err, ErrQuota); got != tt.over || (err != nil && !got) {
				t.Fatalf("CheckQuota = %v, want over=%v", err, tt.over)
			}
		})
	}
}

func TestReadQuotaDefinition(t *testing.T) {
	root := qtestMaildir(t, nil)
	if q, ok, err := ReadQuotaDefinition(root); err != nil || ok || !q.Unlimited() {
		t.Fatalf("no file: %v %v %v", q, ok, err)
	}
	for content, want := range map[string]Quota{
		"2048S,7C\n10 1\n": {2048, 7},
		"5C\n":             {Messages: 5},
		"\n1 1\n":          {},
	} {
		if err := os.WriteFile(filepath.Join(root, QuotaFileName), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if q, ok, err := ReadQuotaDefinition(root); err != nil || !ok || q != want {
			t.Errorf("%q: %v %v %v, want %v", content, q, ok, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(root, QuotaFileName), []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadQuotaDefinition(root); err == nil {
		t.Error("a bad definition is not an error")
	}
}

func TestQuotaSizeRootCounted(t *testing.T) {
	root := qtestMaildir(t, map[string][]int{"": {100, 300}, "Trash": {5}})
	mb, err := OpenMailbox(root)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, m := range mb.Messages() {
		s, ok := QuotaSize(m) // one with S=, one by stat
		if !ok {
			t.Fatalf("no size for %s", m.Path)
		}
		total += s
	}
	if total != 400 {
		t.Fatalf("sizes add up to %d, want 400", total)
	}
	gone := mb.Messages()[0]
	gone.Name = Name{Base: "x"}
	gone.Size = -1
	gone.Path = filepath.Join(root, "cur", "missing")
	if _, ok := QuotaSize(gone); ok {
		t.Fatal("a vanished file has a size")
	}
	// A root called ".mail" whose parent is no Maildir is its own root.
	lone := filepath.Join(t.TempDir(), ".mail")
	for _, tc := range []struct{ path, want string }{
		{root, root},
		{filepath.Join(root, ".Trash"), root},
		{filepath.Join(root, ".Sent") + "/", root},
		{lone, lone},
	} {
		if got := QuotaRoot(tc.path); got != tc.want {
			t.Errorf("QuotaRoot(%s) = %s, want %s", tc.path, got, tc.want)
		}
	}
	if QuotaCounted(filepath.Join(root, ".Trash")) || !QuotaCounted(root) || !QuotaCounted(filepath.Join(root, ".Sent")) {
		t.Error("only .Trash is outside the quota")
	}
}
