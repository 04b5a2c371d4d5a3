package maildir

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestQuotaParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		def     Quota
		bytes   int64
		count   int64
		changes int
		bad     bool
	}{
		{name: "both", in: "1000S,10C\n100 1\n200 2\n", def: Quota{1000, 10}, bytes: 300, count: 3, changes: 2},
		{name: "bytes only", in: "5000S\n10 1\n", def: Quota{Bytes: 5000}, bytes: 10, count: 1, changes: 1},
		{name: "count only", in: "7C\n", def: Quota{Messages: 7}},
		{name: "reversed", in: "7C,9S\n", def: Quota{9, 7}},
		{name: "empty def", in: "\n1 1\n", bytes: 1, count: 1, changes: 1},
		{name: "negative delta", in: "100S\n50 2\n-20 -1\n", def: Quota{Bytes: 100}, bytes: 30, count: 1, changes: 2},
		{name: "courier padding", in: "100S\n        50      2\n", def: Quota{Bytes: 100}, bytes: 50, count: 2, changes: 1},
		{name: "blank line", in: "100S\n\n1 1\n", def: Quota{Bytes: 100}, bytes: 1, count: 1, changes: 1},
		{name: "empty file", in: "", bad: true},
		{name: "no newline", in: "100S", bad: true},
		{name: "partial line", in: "100S\n1 1", bad: true},
		{name: "three fields", in: "100S\n1 1 1\n", bad: true},
		{name: "letters", in: "100S\nx 1\n", bad: true},
		{name: "bad def", in: "100X\n", bad: true},
		{name: "negative def", in: "-1S\n", bad: true},
		{name: "overflow", in: "1S\n9223372036854775807 1\n1 1\n", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := quotaParse([]byte(tc.in))
			if tc.bad {
				if err == nil {
					t.Fatalf("quotaParse(%q) = %+v, want error", tc.in, u)
				}
				return
			}
			if err != nil {
				t.Fatalf("quotaParse(%q): %v", tc.in, err)
			}
			if u.def != tc.def || u.bytes != tc.bytes || u.count != tc.count || u.changes != tc.changes {
				t.Errorf("got def=%+v %d bytes %d msgs %d changes; want %+v %d %d %d",
					u.def, u.bytes, u.count, u.changes, tc.def, tc.bytes, tc.count, tc.changes)
			}
		})
	}
}

func TestQuotaString(t *testing.T) {
	for q, want := range map[Quota]string{{1000, 10}: "1000S,10C", {Bytes: 5}: "5S", {Messages: 3}: "3C", {}: ""} {
		if got := q.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", q, got, want)
		}
		if d, err := quotaParseDef(q.String()); err != nil || d != q {
			t.Errorf("quotaParseDef(%q) = %+v, %v", q.String(), d, err)
		}
	}
}

func FuzzMaildirsize(f *testing.F) {
	for _, s := range []string{"1000S,10C\n100 1\n", "5S\n-1 -1\n", "\n", "1C\n 1  1 \n", "x", "10S\n9223372036854775807 1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := quotaParse(data)
		if err != nil {
			return
		}
		// Whatever parses must survive being written back the way a
		// rebuild writes it.
		out := fmt.Sprintf("%s\n%d %d\n", u.def, u.bytes, u.count)
		u2, err := quotaParse([]byte(out))
		if err != nil {
			t.Fatalf("rewritten %q does not parse: %v", out, err)
		}
		if u2.def != u.def || u2.bytes != u.bytes || u2.count != u.count {
			t.Fatalf("rewrite changed usage: %+v -> %+v", u, u2)
		}
	})
}

// qtestMaildir makes a Maildir++ root with messages of the given sizes in
// new/ of the root and of the named folders ("" = root).
func qtestMaildir(t *testing.T, msgs map[string][]int) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := Create(root); err != nil {
		t.Fatal(err)
	}
	for folder, sizes := range msgs {
		dir := root
		if folder != "" {
			dir = filepath.Join(root, "."+folder)
			if err := Create(dir); err != nil {
				t.Fatal(err)
			}
		}
		for i, size := range sizes {
			// Odd ones without S= exercise the stat fallback.
			name := fmt.Sprintf("%d.M1P1Q%d.h", i, i)
			if i%2 == 0 {
				name = WithSizes(name, int64(size), int64(size))
			}
			if err := os.WriteFile(filepath.Join(dir, "cur", name+":2,S"), make([]byte, size), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestQuotaScanSkipsTrash(t *testing.T) {
	root := qtestMaildir(t, map[string][]int{
		"":      {100, 50},
		"Sent":  {10},
		"Trash": {1000, 1000},
		"A.B":   {7},
	})
	// A dot-file in cur/ and a file in tmp/ are not messages.
	os.WriteFile(filepath.Join(root, "cur", ".hidden"), make([]byte, 99), 0o600)
	os.WriteFile(filepath.Join(root, "tmp", "x"), make([]byte, 99), 0o600)
	bytes, count, err := ReadQuotaUsage(root)
	if err != nil {
		t.Fatal(err)
	}
	if bytes != 167 || count != 4 {
		t.Fatalf("usage %d bytes %d msgs, want 167 4", bytes, count)
	}
	if _, err := os.Stat(filepath.Join(root, QuotaFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadQuotaUsage created maildirsize without a definition: %v", err)
	}
}

func TestQuotaCheckRebuilds(t *testing.T) {
	root := qtestMaildir(t, map[string][]int{"": {100, 100}})
	path := filepath.Join(root, QuotaFileName)
	q := Quota{Bytes: 1000, Messages: 10}

	// Missing: rebuilt from the messages.
	if err := quotaCheck(root, q, 10); err != nil {
		t.Fatal(err)
	}
	if got := qtestRead(t, path); got != "1000S,10C\n200 2\n" {
		t.Fatalf("rebuilt maildirsize = %q", got)
	}
	// Definition changed: rebuilt with the configured one.
	q2 := Quota{Bytes: 150}
	if err := quotaCheck(root, q2, 10); !errors.Is(err, ErrQuota) {
		t.Fatalf("quotaCheck over bytes = %v, want ErrQuota", err)
	}
	if got := qtestRead(t, path); got != "150S\n200 2\n" {
		t.Fatalf("maildirsize after definition change = %q", got)
	}
	// Stale deltas claiming over-quota are re-counted before refusing.
	os.WriteFile(path, []byte("1000S\n900 1\n95 1\n"), 0o600)
	if err := quotaCheck(root, Quota{Bytes: 1000}, 10); err != nil {
		t.Fatalf("stale over-quota not re-counted: %v", err)
	}
	// A fresh single-line file is trusted.
	os.WriteFile(path, []byte("1000S\n995 1\n"), 0o600)
	if err := quotaCheck(root, Quota{Bytes: 1000}, 10); !errors.Is(err, ErrQuota) {
		t.Fatalf("quotaCheck = %v, want ErrQuota", err)
	}
	// The same file, 20 minutes old, is re-counted.
	old := time.Now().Add(-20 * time.Minute)
	os.Chtimes(path, old, old)
	if err := quotaCheck(root, Quota{Bytes: 1000}, 10); err != nil {
		t.Fatalf("old over-quota file not re-counted: %v", err)
	}
	// Large files are rebuilt.
	big := "1000S\n" + strings.Repeat("0 0\n", quotaMaxFileSize/4+1)
	os.WriteFile(path, []byte(big), 0o600)
	if err := quotaCheck(root, Quota{Bytes: 1000}, 10); err != nil {
		t.Fatal(err)
	}
	if got := qtestRead(t, path); got != "1000S\n200 2\n" {
		t.Fatalf("large file not rebuilt: %q", got)
	}
	// Message limit.
	if err := quotaCheck(root, Quota{Messages: 2}, 1); !errors.Is(err, ErrQuota) {
		t.Fatalf("quotaCheck over count = %v, want ErrQuota", err)
	}
	if err := quotaCheck(root, Quota{Messages: 3}, 1); err != nil {
		t.Fatalf("quotaCheck at exact count limit: %v", err)
	}
}

func qtestRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadAndAddQuotaUsage(t *testing.T) {
	root := qtestMaildir(t, map[string][]int{"": {100}})
	path := filepath.Join(root, QuotaFileName)
	// Without a file, AddQuotaUsage records nothing.
	if err := AddQuotaUsage(root, 5, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("AddQuotaUsage created the file: %v", err)
	}
	os.WriteFile(path, []byte("1000S\n100 1\n"), 0o600)
	if err := AddQuotaUsage(root, 40, 1); err != nil {
		t.Fatal(err)
	}
	if err := AddQuotaUsage(root, -100, -1); err != nil {
		t.Fatal(err)
	}
	b, c, err := ReadQuotaUsage(root)
	if err != nil || b != 40 || c != 1 {
		t.Fatalf("ReadQuotaUsage = %d %d %v, want 40 1", b, c, err)
	}
	// A corrupt change line: recounted and rewritten with the definition.
	os.WriteFile(path, []byte("1000S\n100 1\ngarbage\n"), 0o600)
	b, c, err = ReadQuotaUsage(root)
	if err != nil || b != 100 || c != 1 {
		t.Fatalf("ReadQuotaUsage(corrupt) = %d %d %v, want 100 1", b, c, err)
	}
	if got := qtestRead(t, path); got != "1000S\n100 1\n" {
		t.Fatalf("corrupt file rewritten as %q", got)
	}
}

// TestQuotaConcurrentAppend appends from several processes and goroutines
// at once: every line must arrive whole.
func TestQuotaConcurrentAppend(t *testing.T) {
	const procs, goroutines, each = 3, 4, 100
	if root := os.Getenv("MAILROOM_QTEST_APPEND_ROOT"); root != "" {
		qtestAppend(t, root, goroutines, each)
		return
	}
	root := qtestMaildir(t, nil)
	path := filepath.Join(root, QuotaFileName)
	os.WriteFile(path, []byte("100000000S\n"), 0o600)
	var wg sync.WaitGroup
	errs := make(chan error, procs+1)
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestQuotaConcurrentAppend$", "-test.count=1")
			cmd.Env = append(os.Environ(), "MAILROOM_QTEST_APPEND_ROOT="+root)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child: %v: %s", err, out)
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); qtestAppend(t, root, goroutines, each) }()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	u, err := quotaParse([]byte(qtestRead(t, path)))
	if err != nil {
		t.Fatalf("maildirsize corrupted by concurrent appends: %v", err)
	}
	n := int64((procs + 1) * goroutines * each)
	if u.changes != int(n) || u.count != n || u.bytes != n*1234567 {
		t.Fatalf("got %d lines, %d msgs, %d bytes; want %d lines", u.changes, u.count, u.bytes, n)
	}
}

func qtestAppend(t *testing.T, root string, goroutines, each int) {
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := AddQuotaUsage(root, 1234567, 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
