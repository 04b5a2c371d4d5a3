package account

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEditPreservesOtherBytes(t *testing.T) {
	const before = "# users, hand-edited\n" +
		"\n" +
		"bob@example.org:{X}old:1001:1001:Bob B:/srv/bob:/bin/false:userdb_quota_rule=*:storage=1G  odd=spacing\n" +
		"   \n" +
		"alice@example.org:{X}a\n"
	p := writeFile(t, before)
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}

	if err := SetPassword(p, "BOB@example.org", "{Y}new"); err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(before, "{X}old", "{Y}new", 1)
	if got := readFile(t, p); got != want {
		t.Fatalf("after SetPassword:\n%s\nwant\n%s", got, want)
	}

	if err := AddUser(p, User{Address: "carol@example.org", Hash: "{Z}c", UID: 7, GID: -1, Extra: map[string]string{"userdb_quota_rule": "*:messages=5"}}); err != nil {
		t.Fatal(err)
	}
	want += "carol@example.org:{Z}c:7:::::userdb_quota_rule=*:messages=5\n"
	if got := readFile(t, p); got != want {
		t.Fatalf("after AddUser:\n%s\nwant\n%s", got, want)
	}

	if err := DeleteUser(p, "alice@EXAMPLE.org"); err != nil {
		t.Fatal(err)
	}
	want = strings.Replace(want, "alice@example.org:{X}a\n", "", 1)
	if got := readFile(t, p); got != want {
		t.Fatalf("after DeleteUser:\n%s\nwant\n%s", got, want)
	}

	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode after edits = %v, want 0640 kept", st.Mode().Perm())
	}
	db, err := Load(p, "/m")
	if err != nil {
		t.Fatalf("edited file does not load: %v", err)
	}
	if q, ok := (&db.Users()[1]).Quota(); !ok || q.Messages != 5 {
		t.Errorf("carol's quota = %+v, %v", q, ok)
	}
}

func TestEditErrors(t *testing.T) {
	p := writeFile(t, "bob@example.org:{X}b\n")
	for _, tc := range []struct {
		name string
		err  error
		is   error
	}{
		{"add duplicate", AddUser(p, User{Address: "Bob@Example.org", Hash: "{X}", UID: -1, GID: -1}), ErrUserExists},
		{"passwd unknown", SetPassword(p, "nobody@example.org", "{X}"), ErrNoSuchUser},
		{"del unknown", DeleteUser(p, "nobody@example.org"), ErrNoSuchUser},
		{"add bad address", AddUser(p, User{Address: "../x@example.org", UID: -1, GID: -1}), nil},
		{"add uid 0", AddUser(p, User{Address: "root@example.org", UID: 0, GID: -1}), nil},
		{"hash with colon", SetPassword(p, "bob@example.org", "{X}a:b"), nil},
	} {
		if tc.err == nil || (tc.is != nil && !errors.Is(tc.err, tc.is)) {
			t.Errorf("%s: error %v, want %v", tc.name, tc.err, tc.is)
		}
	}
	if got := readFile(t, p); got != "bob@example.org:{X}b\n" {
		t.Errorf("failed edits changed the file: %q", got)
	}

	// A file Load refuses is not edited either.
	bad := writeFile(t, "bob@example.org:{X}b:notanumber\n")
	if err := AddUser(bad, User{Address: "c@example.org", UID: -1, GID: -1}); err == nil || !strings.Contains(err.Error(), bad+":1:") {
		t.Errorf("AddUser on broken file: %v", err)
	}
	// SetPassword and DeleteUser need the file; AddUser creates it.
	missing := filepath.Join(t.TempDir(), "passwd")
	if err := SetPassword(missing, "a@b", "{X}"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("SetPassword(missing file) = %v", err)
	}
	if err := AddUser(missing, User{Address: "a@b", Hash: "{X}h", UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(missing)
	if err != nil || st.Mode().Perm() != newFileMode || readFile(t, missing) != "a@b:{X}h\n" {
		t.Errorf("created file: %v %v %q", st.Mode(), err, readFile(t, missing))
	}
}

func TestEditNoTrailingNewline(t *testing.T) {
	p := writeFile(t, "a@b:{X}h")
	if err := AddUser(p, User{Address: "c@d", Hash: "{X}i", UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p); got != "a@b:{X}h\nc@d:{X}i\n" {
		t.Errorf("got %q", got)
	}
}

func TestEditLockTimeout(t *testing.T) {
	p := writeFile(t, "a@b:{X}h\n")
	f, err := os.OpenFile(p+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	old := LockTimeout
	LockTimeout = 50 * time.Millisecond
	defer func() { LockTimeout = old }()

	if err := DeleteUser(p, "a@b"); !errors.Is(err, ErrLockTimeout) {
		t.Errorf("DeleteUser under a held lock = %v, want ErrLockTimeout", err)
	}
	if got := readFile(t, p); got != "a@b:{X}h\n" {
		t.Errorf("file changed without the lock: %q", got)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := DeleteUser(p, "a@b"); err != nil {
		t.Errorf("DeleteUser after unlock = %v", err)
	}
}

// Concurrent adds must all land: the lock serialises read-modify-write.
func TestEditConcurrentAdds(t *testing.T) {
	p := filepath.Join(t.TempDir(), "passwd")
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- AddUser(p, User{Address: "u" + string(rune('a'+i)) + "@example.org", Hash: "{X}h", UID: -1, GID: -1})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	db, err := Load(p, "/m")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(db.Users()); got != n {
		t.Errorf("%d users after %d concurrent adds", got, n)
	}
}

// AddUser must write exactly one line that reads back as the User given: a
// field holding ':' or a line break would shift fields or add a line, the
// second a whole account with a password of the caller's choosing.
func TestAddUserRefusesFieldInjection(t *testing.T) {
	const injected = "evil@example.org:{BLF-CRYPT}$2y$04$abcdefghijklmnopqrstuu5bJ6FUXGz9oQjDQlFw1e7Ohq7GkXQ5y"
	for _, tc := range []struct {
		name string
		u    User
	}{
		{"newline in home", User{Address: "bob@example.org", Hash: "{X}b", UID: -1, GID: -1, Home: "/m/bob\n" + injected}},
		{"colon in home", User{Address: "bob@example.org", Hash: "{X}b", UID: -1, GID: -1, Home: "/m/bob:/bin/sh", Extra: map[string]string{"userdb_quota_rule": "*:storage=1G"}}},
		{"CR in home", User{Address: "bob@example.org", Hash: "{X}b", UID: -1, GID: -1, Home: "/m/bob\r"}},
		{"newline in hash", User{Address: "bob@example.org", Hash: "{X}b\n" + injected, UID: -1, GID: -1}},
		{"colon in hash", User{Address: "bob@example.org", Hash: "{X}b:1:1", UID: -1, GID: -1}},
		{"newline in extra value", User{Address: "bob@example.org", Hash: "{X}b", UID: -1, GID: -1, Extra: map[string]string{"k": "v\n" + injected}}},
		{"space in extra value", User{Address: "bob@example.org", Hash: "{X}b", UID: -1, GID: -1, Extra: map[string]string{"k": "v userdb_quota_rule=*:storage=1"}}},
		{"'=' in extra key", User{Address: "bob@example.org", Hash: "{X}b", UID: -1, GID: -1, Extra: map[string]string{"a=b": "c"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "alice@example.org:{X}a\n")
			if err := AddUser(p, tc.u); err == nil {
				t.Errorf("AddUser(%+v) = nil; file now:\n%s", tc.u, readFile(t, p))
			}
			if got := readFile(t, p); got != "alice@example.org:{X}a\n" {
				t.Errorf("file changed by a refused AddUser:\n%s", got)
			}
		})
	}
}

// TestEditKeepsOwner: root rewriting a root:mailroom 0640 passwd file must
// leave it with its owner and group, or the daemons, which read it through
// the group, lose it at their next reload.
func TestEditKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file another owner (make test runs as root in CI)")
	}
	p := writeFile(t, "alice@example.org:{X}a\n")
	const owner, group = 65534, 65534
	if err := os.Chown(p, owner, group); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(p, "alice@example.org", "{Y}b"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != owner || st.Gid != group || fi.Mode().Perm() != 0o640 {
		t.Errorf("after the edit: %d:%d %v, want %d:%d -rw-r-----", st.Uid, st.Gid, fi.Mode().Perm(), owner, group)
	}
}
