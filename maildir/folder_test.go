package maildir

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFolderPath(t *testing.T) {
	root := "/m/u"
	tests := []struct{ name, want string }{
		{"", root},
		{"INBOX", root},
		{"inbox", root},
		{"InBoX", root},
		{"Sent", "/m/u/.Sent"},
		{"Lists/Go", "/m/u/.Lists.Go"},
		{"inbox/x", "/m/u/.INBOX.x"},
		{"Café", "/m/u/.Caf&AOk-"},
		{"a&b", "/m/u/.a&-b"},
		{"台北/日本語", "/m/u/.&U,BTFw-.&ZeVnLIqe-"},
		{"with space", "/m/u/.with space"},
	}
	for _, tc := range tests {
		got, err := FolderPath(root, tc.name)
		if err != nil || got != tc.want {
			t.Errorf("FolderPath(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestFolderPathInvalid(t *testing.T) {
	for _, name := range []string{
		"/", "A/", "/A", "A//B", ".", "..", "../x", "x/..", ".hidden", "a.b", "a/.b",
		"tab\there", "nl\n", "del\x7f", "c1\u0085", "bad\xffutf8",
		strings.Repeat("x", 300),
	} {
		if got, err := FolderPath("/m", name); !errors.Is(err, ErrFolderName) {
			t.Errorf("FolderPath(%q) = %q, %v; want ErrFolderName", name, got, err)
		}
	}
}

func ftestRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := Create(root); err != nil {
		t.Fatal(err)
	}
	return root
}

func ftestList(t *testing.T, root string) []string {
	t.Helper()
	l, err := ListFolders(root)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCreateFolder(t *testing.T) {
	root := ftestRoot(t)
	if err := CreateFolder(root, "Lists/Go"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, ".Lists.Go")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, FolderMarkerName)); err != nil || st.Size() != 0 {
		t.Errorf("maildirfolder: %v", err)
	}
	// Parents are not created.
	if _, err := os.Stat(filepath.Join(root, ".Lists")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".Lists exists: %v", err)
	}
	dtestEmpty(t, filepath.Join(root, "tmp"))
	for _, name := range []string{"Lists/Go", "INBOX", "inbox"} {
		if err := CreateFolder(root, name); !errors.Is(err, ErrFolderExists) {
			t.Errorf("CreateFolder(%q) again = %v, want ErrFolderExists", name, err)
		}
	}
	// Even an empty directory in the way is not replaced.
	os.Mkdir(filepath.Join(root, ".Empty"), 0o700)
	if err := CreateFolder(root, "Empty"); !errors.Is(err, ErrFolderExists) {
		t.Errorf("CreateFolder over an empty dir = %v, want ErrFolderExists", err)
	}
	dtestEmpty(t, filepath.Join(root, "tmp"))
	if err := CreateFolder(root, "a.b"); !errors.Is(err, ErrFolderName) {
		t.Errorf("CreateFolder(a.b) = %v", err)
	}
}

func TestListFolders(t *testing.T) {
	root := ftestRoot(t)
	for _, n := range []string{"Sent", "Lists/Go", "Café", "a&b", "Archive/2024"} {
		if err := CreateFolder(root, n); err != nil {
			t.Fatal(err)
		}
	}
	// Junk that is not a folder we could have made.
	os.Mkdir(filepath.Join(root, "..DOVECOT-TRASHED"), 0o700)
	os.Mkdir(filepath.Join(root, ".bad&AGE-"), 0o700)
	os.Mkdir(filepath.Join(root, ".a..b"), 0o700)
	os.Mkdir(filepath.Join(root, ".INBOX"), 0o700)
	os.WriteFile(filepath.Join(root, ".notadir"), nil, 0o600)
	os.Symlink(filepath.Join(root, ".Sent"), filepath.Join(root, ".Link"))
	want := []string{"Archive/2024", "Café", "Lists/Go", "Sent", "a&b"}
	if got := ftestList(t, root); !slices.Equal(got, want) {
		t.Fatalf("ListFolders = %q, want %q", got, want)
	}
	if got, err := ListFolders(filepath.Join(root, "missing")); err != nil || got != nil {
		t.Fatalf("ListFolders(missing) = %q, %v", got, err)
	}
}

func TestRenameFolder(t *testing.T) {
	root := ftestRoot(t)
	for _, n := range []string{"A", "A/B", "A/B/C", "AB", "Other"} {
		if err := CreateFolder(root, n); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, ".A.B", "cur", "1.M1P1Q1.h:2,S"), []byte("msg"), 0o600)
	if err := RenameFolder(root, "A", "Z/Y"); err != nil {
		t.Fatal(err)
	}
	want := []string{"AB", "Other", "Z/Y", "Z/Y/B", "Z/Y/B/C"}
	if got := ftestList(t, root); !slices.Equal(got, want) {
		t.Fatalf("after rename: %q, want %q", got, want)
	}
	if b, err := os.ReadFile(filepath.Join(root, ".Z.Y.B", "cur", "1.M1P1Q1.h:2,S")); err != nil || string(b) != "msg" {
		t.Fatalf("message not moved with its folder: %q %v", b, err)
	}
	tests := []struct {
		from, to string
		want     error
	}{
		{"Missing", "New", ErrNoFolder},
		{"AB", "Other", ErrFolderExists},
		{"Z", "Other", ErrFolderExists}, // .Z.Y would become .Other.Y
		{"AB", "AB/Sub", ErrFolderName},
		{"INBOX", "X", ErrFolderName},
		{"AB", "inbox", ErrFolderName},
		{"AB", "a.b", ErrFolderName},
	}
	// The only directory under Z is its child Z/Y; its target exists.
	if err := CreateFolder(root, "Other/Y"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		before := ftestList(t, root)
		if err := RenameFolder(root, tc.from, tc.to); !errors.Is(err, tc.want) {
			t.Errorf("RenameFolder(%q, %q) = %v, want %v", tc.from, tc.to, err, tc.want)
		}
		if after := ftestList(t, root); !slices.Equal(before, after) {
			t.Errorf("failed RenameFolder(%q, %q) changed folders: %q -> %q", tc.from, tc.to, before, after)
		}
	}
	// A parent that exists only through its children can be renamed.
	if err := RenameFolder(root, "Z", "Q"); err != nil {
		t.Fatal(err)
	}
	want = []string{"AB", "Other", "Other/Y", "Q/Y", "Q/Y/B", "Q/Y/B/C"}
	if got := ftestList(t, root); !slices.Equal(got, want) {
		t.Fatalf("after parent rename: %q, want %q", got, want)
	}
}

func TestDeleteFolder(t *testing.T) {
	root := ftestRoot(t)
	for _, n := range []string{"A", "A/B"} {
		if err := CreateFolder(root, n); err != nil {
			t.Fatal(err)
		}
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "precious"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(root, ".A", "cur", "1.M1P1Q1.h:2,S"), []byte("msg"), 0o600)
	os.Symlink(outside, filepath.Join(root, ".A", "cur", "link"))
	if err := DeleteFolder(root, "A"); err != nil {
		t.Fatal(err)
	}
	if got := ftestList(t, root); !slices.Equal(got, []string{"A/B"}) {
		t.Fatalf("after delete: %q", got)
	}
	if _, err := os.Stat(filepath.Join(outside, "precious")); err != nil {
		t.Fatalf("delete followed a symlink: %v", err)
	}
	dtestEmpty(t, filepath.Join(root, "tmp"))
	for _, tc := range []struct {
		name string
		want error
	}{{"A", ErrNoFolder}, {"INBOX", ErrFolderName}, {"../x", ErrFolderName}} {
		if err := DeleteFolder(root, tc.name); !errors.Is(err, tc.want) {
			t.Errorf("DeleteFolder(%q) = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestCreateDefaultFolders(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := CreateDefaultFolders(root); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(DefaultFolders))
	if got := ftestList(t, root); !slices.Equal(got, want) {
		t.Fatalf("folders %q, want %q", got, want)
	}
	subs, err := ReadSubscriptions(root)
	if err != nil || !slices.Equal(subs, DefaultFolders) {
		t.Fatalf("subscriptions %q, %v", subs, err)
	}
	// A second run keeps a user's unsubscription.
	if err := Unsubscribe(root, "Junk"); err != nil {
		t.Fatal(err)
	}
	if err := CreateDefaultFolders(root); err != nil {
		t.Fatal(err)
	}
	if subs, _ := ReadSubscriptions(root); slices.Contains(subs, "Junk") {
		t.Fatalf("Junk resubscribed: %q", subs)
	}
}
