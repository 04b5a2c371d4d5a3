package maildir

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/testutil"
)

const dtestMsg = "Return-Path: <a@example.org>\nSubject: hi\n\nline one\nline two\r\n"

// dtestEntries lists a directory, failing the test on error.
func dtestEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// dtestEmpty fails unless the directories hold nothing.
func dtestEmpty(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if n := dtestEntries(t, d); len(n) != 0 {
			t.Errorf("%s not empty: %q", d, n)
		}
	}
}

func dtestIno(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestCreate(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b", "Maildir")
	for i := 0; i < 2; i++ { // idempotent
		if err := Create(root); err != nil {
			t.Fatalf("Create #%d: %v", i, err)
		}
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		st, err := os.Stat(filepath.Join(root, sub))
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", sub, st, err)
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if err := Create(file); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Create over a file = %v, want ENOTDIR", err)
	}
}

func TestDeliverOne(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir") // created by Deliver
	now := time.Unix(1732380000, 5000)
	d := &Deliverer{Host: "mx:1", Now: func() time.Time { return now }}
	before := time.Now().Add(-time.Second)
	res, err := d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: root}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("results %+v", res)
	}
	if filepath.Dir(res[0].Path) != filepath.Join(root, "new") {
		t.Fatalf("Path %q not in new/", res[0].Path)
	}
	name := filepath.Base(res[0].Path)
	if !strings.HasPrefix(name, "1732380000.M5P") || !strings.Contains(name, `.mx\0721,`) {
		t.Errorf("name %q", name)
	}
	n, err := ParseName(name)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := n.Size()
	w, _ := n.VSize()
	if s != int64(len(dtestMsg)) || w != int64(len(dtestMsg)+4) {
		t.Errorf("S=%d W=%d, want %d %d", s, w, len(dtestMsg), len(dtestMsg)+4)
	}
	got, err := os.ReadFile(res[0].Path)
	if err != nil || string(got) != dtestMsg {
		t.Fatalf("content %q, %v", got, err)
	}
	st, _ := os.Stat(res[0].Path)
	if st.ModTime().Before(before) || st.ModTime().After(time.Now().Add(time.Second)) {
		t.Errorf("mtime %v is not the delivery time", st.ModTime())
	}
	dtestEmpty(t, filepath.Join(root, "tmp"), filepath.Join(root, "cur"))
	if _, err := os.Stat(filepath.Join(root, QuotaFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("maildirsize created without a quota: %v", err)
	}
}

func TestDeliverFanOutHardLinks(t *testing.T) {
	base := t.TempDir()
	targets := []Target{
		{Root: filepath.Join(base, "alice")},
		{Root: filepath.Join(base, "bob")},
		{Root: filepath.Join(base, "carol")},
	}
	if err := Create(targets[2].Root); err != nil {
		t.Fatal(err)
	}
	if err := CreateFolder(targets[2].Root, "Lists/Go"); err != nil {
		t.Fatal(err)
	}
	targets[2].Folder = "Lists/Go"
	d := &Deliverer{Host: "h"}
	res, err := d.Deliver(strings.NewReader(dtestMsg), targets)
	if err != nil {
		t.Fatal(err)
	}
	ino := dtestIno(t, res[0].Path)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("target %d: %v", i, r.Err)
		}
		if r.Target != targets[i] {
			t.Errorf("result %d is for %+v", i, r.Target)
		}
		if got := dtestIno(t, r.Path); got != ino {
			t.Errorf("target %d: inode %d, want %d (not hard-linked)", i, got, ino)
		}
		if filepath.Base(r.Path) != filepath.Base(res[0].Path) {
			t.Errorf("target %d: name %q differs", i, r.Path)
		}
	}
	if want := filepath.Join(targets[2].Root, ".Lists.Go", "new"); filepath.Dir(res[2].Path) != want {
		t.Errorf("folder delivery into %q, want %q", res[2].Path, want)
	}
	for _, tg := range targets {
		dtestEmpty(t, filepath.Join(tg.Root, "tmp"))
	}
}

func TestDeliverQuota(t *testing.T) {
	base := t.TempDir()
	full := filepath.Join(base, "full")
	ok := filepath.Join(base, "ok")
	d := &Deliverer{Host: "h"}
	// Fill "full" with one message, then set a limit it reaches.
	if _, err := d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: full}}); err != nil {
		t.Fatal(err)
	}
	targets := []Target{
		{Root: full, Quota: Quota{Bytes: int64(len(dtestMsg)) + 10}},
		{Root: ok, Quota: Quota{Bytes: 1 << 20, Messages: 10}},
	}
	res, err := d.Deliver(strings.NewReader(dtestMsg), targets)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, ErrQuota) || res[0].Path != "" {
		t.Fatalf("over-quota target: %+v", res[0])
	}
	if res[1].Err != nil {
		t.Fatalf("second target: %v", res[1].Err)
	}
	if n := dtestEntries(t, filepath.Join(full, "new")); len(n) != 1 {
		t.Errorf("over-quota new/ holds %d files, want the first only", len(n))
	}
	dtestEmpty(t, filepath.Join(full, "tmp"), filepath.Join(ok, "tmp"))
	// The accepted delivery is counted in maildirsize.
	b, c, err := ReadQuotaUsage(ok)
	if err != nil || b != int64(len(dtestMsg)) || c != 1 {
		t.Errorf("usage %d %d %v", b, c, err)
	}
	if got := qtestRead(t, filepath.Join(ok, QuotaFileName)); got != "1048576S,10C\n0 0\n"+strconv.Itoa(len(dtestMsg))+" 1\n" {
		t.Errorf("maildirsize = %q", got)
	}
	// Message count limit: the next one would be the 2nd of 1 allowed.
	res, err = d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: ok, Quota: Quota{Messages: 1}}})
	if err != nil || !errors.Is(res[0].Err, ErrQuota) {
		t.Fatalf("count quota: %v %+v", err, res)
	}
	dtestEmpty(t, filepath.Join(ok, "tmp"))
}

func TestDeliverTooBig(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	d := &Deliverer{Host: "h", MaxSize: int64(len(dtestMsg)) - 1}
	res, err := d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: root}})
	if !errors.Is(err, ErrTooBig) || !errors.Is(res[0].Err, ErrTooBig) {
		t.Fatalf("Deliver = %v, %+v; want ErrTooBig", err, res)
	}
	dtestEmpty(t, filepath.Join(root, "tmp"), filepath.Join(root, "new"))
	// Exactly MaxSize is fine.
	d.MaxSize = int64(len(dtestMsg))
	if res, err := d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: root}}); err != nil || res[0].Err != nil {
		t.Fatalf("Deliver at MaxSize = %v, %+v", err, res)
	}
}

// dtestFailingReader yields some bytes, then err.
type dtestFailingReader struct {
	data []byte
	err  error
}

func (r *dtestFailingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDeliverReadError(t *testing.T) {
	for _, cause := range []error{syscall.ENOSPC, io.ErrUnexpectedEOF, syscall.EIO} {
		t.Run(cause.Error(), func(t *testing.T) {
			base := t.TempDir()
			targets := []Target{{Root: filepath.Join(base, "a")}, {Root: filepath.Join(base, "b")}}
			d := &Deliverer{Host: "h"}
			r := &dtestFailingReader{data: bytes.Repeat([]byte("x\n"), 100000), err: cause}
			res, err := d.Deliver(r, targets)
			if !errors.Is(err, cause) {
				t.Fatalf("Deliver = %v, want %v wrapped", err, cause)
			}
			for i, tg := range targets {
				if !errors.Is(res[i].Err, cause) || res[i].Path != "" {
					t.Errorf("result %d = %+v", i, res[i])
				}
				dtestEmpty(t, filepath.Join(tg.Root, "tmp"), filepath.Join(tg.Root, "new"))
			}
		})
	}
}

func TestDeliverNoFolder(t *testing.T) {
	root := filepath.Join(t.TempDir(), "Maildir")
	d := &Deliverer{Host: "h"}
	targets := []Target{
		{Root: root, Folder: "Missing"},
		{Root: root, Folder: "bad..name"},
		{Root: root, Folder: "../../etc"},
		{Root: root},
	}
	res, err := d.Deliver(strings.NewReader(dtestMsg), targets)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if !errors.Is(res[i].Err, ErrNoFolder) {
			t.Errorf("target %d (%q): %v, want ErrNoFolder", i, targets[i].Folder, res[i].Err)
		}
	}
	if res[3].Err != nil {
		t.Fatalf("INBOX target: %v", res[3].Err)
	}
	if _, err := os.Stat(filepath.Join(root, ".Missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder was created: %v", err)
	}
	// The folder's name is INBOX in any case.
	res, err = d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: root, Folder: "inbox"}})
	if err != nil || res[0].Err != nil || filepath.Dir(res[0].Path) != filepath.Join(root, "new") {
		t.Fatalf("Folder inbox: %v %+v", err, res)
	}
}

func TestDeliverConfine(t *testing.T) {
	base := t.TempDir()
	confine := filepath.Join(base, "mail")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{confine, outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Root itself a symlink out.
	if err := Create(filepath.Join(outside, "md")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(outside, "md"), filepath.Join(confine, "rootlink"))
	// A parent of a not-yet-existing Root is a symlink out.
	os.Symlink(outside, filepath.Join(confine, "domainlink"))
	// new/ of an existing Maildir is a symlink out.
	newlink := filepath.Join(confine, "newlink")
	os.MkdirAll(filepath.Join(newlink, "tmp"), 0o700)
	os.MkdirAll(filepath.Join(newlink, "cur"), 0o700)
	os.MkdirAll(filepath.Join(outside, "evilnew"), 0o700)
	os.Symlink(filepath.Join(outside, "evilnew"), filepath.Join(newlink, "new"))
	// A folder that is a symlink out.
	folderlink := filepath.Join(confine, "folderlink")
	if err := Create(folderlink); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(outside, "md"), filepath.Join(folderlink, ".Evil"))
	// A symlink that stays inside is fine.
	if err := Create(filepath.Join(confine, "real")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(confine, "real"), filepath.Join(confine, "innerlink"))

	d := &Deliverer{Host: "h", Confine: confine}
	targets := []Target{
		{Root: filepath.Join(confine, "rootlink")},
		{Root: filepath.Join(confine, "domainlink", "user")},
		{Root: newlink},
		{Root: folderlink, Folder: "Evil"},
		{Root: filepath.Join(confine, "..", "outside", "direct")},
		{Root: filepath.Join(confine, "innerlink")},
		{Root: filepath.Join(confine, "fresh", "user")},
	}
	res, err := d.Deliver(strings.NewReader(dtestMsg), targets)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if !errors.Is(res[i].Err, ErrUnsafePath) {
			t.Errorf("target %d (%s): %v, want ErrUnsafePath", i, targets[i].Root, res[i].Err)
		}
	}
	for i := 5; i < len(targets); i++ {
		if res[i].Err != nil {
			t.Errorf("target %d (%s): %v", i, targets[i].Root, res[i].Err)
		}
	}
	dtestEmpty(t, filepath.Join(outside, "md", "new"), filepath.Join(outside, "md", "tmp"), filepath.Join(outside, "evilnew"))
	for _, p := range []string{filepath.Join(outside, "user"), filepath.Join(outside, "direct")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s created outside the confinement: %v", p, err)
		}
	}
}

// TestDeliverTmpfs fills a real small file system: ENOSPC must come back
// wrapped, and nothing may stay in tmp/ or new/. A second target on another
// file system exercises the EXDEV copy.
func TestDeliverTmpfs(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("MAILROOM_REQUIRE_INTEROP") == "1" {
			t.Fatal("this test mounts a tmpfs and needs root (MAILROOM_REQUIRE_INTEROP=1)")
		}
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		if os.Getenv("MAILROOM_REQUIRE_INTEROP") == "1" {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	small := filepath.Join(mnt, "Maildir")
	other := filepath.Join(t.TempDir(), "Maildir")
	d := &Deliverer{Host: "h"}

	// EXDEV: first target on the tmpfs, second elsewhere.
	res, err := d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: small}, {Root: other}})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("cross-device delivery: %v %+v", err, res)
	}
	var a, b syscall.Stat_t
	if err := syscall.Stat(res[0].Path, &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(res[1].Path, &b); err != nil {
		t.Fatal(err)
	}
	if a.Dev == b.Dev {
		t.Fatal("test setup: both targets on one device, EXDEV not exercised")
	}
	if got, _ := os.ReadFile(res[1].Path); string(got) != dtestMsg {
		t.Fatalf("copied content %q", got)
	}
	dtestEmpty(t, filepath.Join(small, "tmp"), filepath.Join(other, "tmp"))

	// ENOSPC: 2 MB into a 1 MB file system.
	big := bytes.Repeat([]byte("0123456789abcdef\n"), 2<<20/17)
	res, err = d.Deliver(bytes.NewReader(big), []Target{{Root: small}})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Deliver on a full fs = %v, want ENOSPC", err)
	}
	if !errors.Is(res[0].Err, syscall.ENOSPC) {
		t.Errorf("result %+v", res[0])
	}
	dtestEmpty(t, filepath.Join(small, "tmp"))
	if n := dtestEntries(t, filepath.Join(small, "new")); len(n) != 1 {
		t.Errorf("new/ holds %q, want only the first message", n)
	}
}

func BenchmarkDeliver5K(b *testing.B) {
	root := filepath.Join(b.TempDir(), "Maildir")
	msg := bytes.Repeat([]byte("0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"), 5*1024/65)
	d := &Deliverer{Host: "bench"}
	targets := []Target{{Root: root}}
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := d.Deliver(bytes.NewReader(msg), targets)
		if err != nil {
			b.Fatal(err)
		}
		if res[0].Err != nil {
			b.Fatal(res[0].Err)
		}
	}
}

// TestDeliverDovecot checks that Dovecot reads what Deliver writes: the
// message in INBOX and in a folder, RFC822.SIZE equal to both our W= and
// the CRLF size Dovecot computes itself when it sends BODY[].
func TestDeliverDovecot(t *testing.T) {
	testutil.RequireTool(t, dovecotIMAP)
	root := filepath.Join(t.TempDir(), "Maildir")
	if err := CreateFolder(root, "Lists/Go"); err != nil {
		t.Fatal(err)
	}
	d := &Deliverer{Host: "mx"}
	res, err := d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: root}, {Root: root, Folder: "Lists/Go"}})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("Deliver: %v %+v", err, res)
	}
	n, _ := ParseName(filepath.Base(res[0].Path))
	w, _ := n.VSize()
	conf := dovecotPrepare(t, root)
	s := dovecotStart(t, conf, root)
	re := regexp.MustCompile(`RFC822\.SIZE (\d+) BODY\[\] \{(\d+)\}`)
	for _, box := range []string{"INBOX", "Lists.Go"} {
		s.run("SELECT %q", box)
		lines := s.run("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
		m := re.FindStringSubmatch(strings.Join(lines, "\n"))
		if m == nil {
			t.Fatalf("%s: FETCH reply %q", box, lines)
		}
		if m[1] != strconv.FormatInt(w, 10) || m[2] != m[1] {
			t.Errorf("%s: RFC822.SIZE %s, literal %s, our W=%d", box, m[1], m[2], w)
		}
	}
	s.run("LOGOUT")
}

// TestDeliverMoveNeverReplaces: the rename that hands the tmp file to the
// last target must fail, not overwrite, when the name is taken.
func TestDeliverMoveNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	moved, err := deliverMove(src, dst)
	if moved || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("deliverMove over an existing file = %v, %v; want false, EEXIST", moved, err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "old" {
		t.Errorf("existing message overwritten: %q", got)
	}
	if _, err := os.Stat(src); err != nil {
		t.Errorf("source lost: %v", err)
	}
}

// TestDeliverLastTargetTakesTmpFile: a single-target delivery leaves no
// tmp file behind and the delivered file has one link.
func TestDeliverLastTargetTakesTmpFile(t *testing.T) {
	root := filepath.Join(t.TempDir(), "u")
	res, err := (&Deliverer{Host: "h"}).Deliver(strings.NewReader("Subject: x\n\nbody\n"), []Target{{Root: root}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Deliver: %v %v", err, res[0].Err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(res[0].Path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink != 1 {
		t.Errorf("nlink = %d, want 1 (moved, not linked)", st.Nlink)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not empty: %v", ents)
	}
}

// TestDeliverConfineErrorClasses: only a Maildir that resolves outside the
// confinement or through a symlink loop is unsafe (a permanent refusal); a
// path that cannot be resolved for another reason is an ordinary error the
// caller retries.
func TestDeliverConfineErrorClasses(t *testing.T) {
	confine := t.TempDir()
	loop := filepath.Join(confine, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(confine, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Deliverer{Host: "h", Confine: confine}
	for _, tc := range []struct {
		root   string
		unsafe bool
	}{
		{filepath.Join(loop, "u"), true},
		{filepath.Join(notDir, "u"), false},
	} {
		res, err := d.Deliver(strings.NewReader(dtestMsg), []Target{{Root: tc.root}})
		if err != nil {
			t.Fatalf("%s: Deliver: %v", tc.root, err)
		}
		if res[0].Err == nil {
			t.Fatalf("%s: delivered, want an error", tc.root)
		}
		if got := errors.Is(res[0].Err, ErrUnsafePath); got != tc.unsafe {
			t.Errorf("%s: errors.Is(ErrUnsafePath) = %v, want %v (%v)", tc.root, got, tc.unsafe, res[0].Err)
		}
	}
}
