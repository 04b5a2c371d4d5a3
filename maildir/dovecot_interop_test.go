package maildir

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailroom/internal/testutil"
)

const dovecotIMAP = "/usr/lib/dovecot/imap"

// dovecotIDs returns the uid/gid Dovecot's imap should run the mailbox as.
// As root, Dovecot refuses to keep root, so the Maildir is handed to nobody.
func dovecotIDs() (uid, gid int) {
	if os.Getuid() == 0 {
		return 65534, 65534
	}
	return os.Getuid(), os.Getgid()
}

// dovecotPrepare writes a minimal config serving dir as INBOX (mailbox
// files in dir itself, Maildir++ layout) and makes dir usable by Dovecot's
// uid.
func dovecotPrepare(t *testing.T, dir string) string {
	t.Helper()
	uid, gid := dovecotIDs()
	base := filepath.Dir(dir)
	conf := filepath.Join(base, "dovecot.conf")
	cfg := fmt.Sprintf(`mail_location = maildir:%s
log_path = /dev/stderr
base_dir = %s
ssl = no
mail_uid = %d
mail_gid = %d
first_valid_uid = 1
first_valid_gid = 1
mail_fsync = always
`, dir, filepath.Join(base, "run"), uid, gid)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dovecotChown(t, dir)
	return conf
}

// dovecotChown gives dir to Dovecot's uid when we run as root.
func dovecotChown(t *testing.T, dir string) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	uid, gid := dovecotIDs()
	// Every parent up to the temp root must be searchable by that uid.
	for p := filepath.Dir(dir); p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dovecotSession is Dovecot's imap binary talking IMAP on stdin/stdout,
// pre-authenticated, with no daemon.
type dovecotSession struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	tag  int
	errs strings.Builder
}

func dovecotStart(t *testing.T, conf, dir string) *dovecotSession {
	t.Helper()
	s := &dovecotSession{t: t}
	s.cmd = exec.Command(dovecotIMAP, "-c", conf)
	s.cmd.Env = []string{"USER=mailroom-test", "HOME=" + dir, "PATH=/usr/bin:/bin"}
	s.cmd.Stderr = &s.errs
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.out = bufio.NewReader(stdout)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.in.Close()
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	greeting := s.readLine()
	if !strings.HasPrefix(greeting, "* PREAUTH") {
		t.Fatalf("dovecot greeting %q; stderr: %s", greeting, s.errs.String())
	}
	return s
}

// readLine reads one response line, failing the test after 20s.
func (s *dovecotSession) readLine() string {
	s.t.Helper()
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		l, err := s.out.ReadString('\n')
		ch <- result{l, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			s.t.Fatalf("dovecot: %v; stderr: %s", r.err, s.errs.String())
		}
		return strings.TrimRight(r.line, "\r\n")
	case <-time.After(20 * time.Second):
		s.t.Fatalf("dovecot: no response in 20s; stderr: %s", s.errs.String())
		return ""
	}
}

// run sends one command and returns the untagged lines; it fails the test
// unless the tagged reply is OK.
func (s *dovecotSession) run(format string, args ...any) []string {
	s.t.Helper()
	s.tag++
	tag := "t" + strconv.Itoa(s.tag)
	if _, err := fmt.Fprintf(s.in, tag+" "+format+"\r\n", args...); err != nil {
		s.t.Fatal(err)
	}
	var untagged []string
	for i := 0; i < 100000; i++ {
		line := s.readLine()
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				s.t.Fatalf("dovecot: %s -> %s", fmt.Sprintf(format, args...), line)
			}
			return untagged
		}
		untagged = append(untagged, line)
	}
	s.t.Fatal("dovecot: too many lines")
	return nil
}

// appendMsg APPENDs body with flags using a LITERAL+ literal.
func (s *dovecotSession) appendMsg(flags, body string) {
	s.t.Helper()
	s.run("APPEND INBOX (%s) {%d+}\r\n%s", flags, len(body), body)
}

var (
	dovecotUIDValidityRe = regexp.MustCompile(`UIDVALIDITY (\d+)`)
	dovecotUIDNextRe     = regexp.MustCompile(`UIDNEXT (\d+)`)
	dovecotFetchRe       = regexp.MustCompile(`^\* \d+ FETCH \((?:UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+))\)$`)
)

// dovecotState is what Dovecot reports for INBOX: UIDVALIDITY, UIDNEXT and
// each UID's flags (system flags and keywords, \Recent left out).
type dovecotState struct {
	validity, next uint32
	flags          map[uint32][]string
}

func (s *dovecotSession) state() dovecotState {
	s.t.Helper()
	var st dovecotState
	for _, l := range s.run("SELECT INBOX") {
		if m := dovecotUIDValidityRe.FindStringSubmatch(l); m != nil {
			st.validity = uint32(mustAtoi(s.t, m[1]))
		}
		if m := dovecotUIDNextRe.FindStringSubmatch(l); m != nil {
			st.next = uint32(mustAtoi(s.t, m[1]))
		}
	}
	st.flags = map[uint32][]string{}
	for _, l := range s.run("UID FETCH 1:* (UID FLAGS)") {
		m := dovecotFetchRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		uid, flags := m[1], m[2]
		if uid == "" {
			uid, flags = m[4], m[3]
		}
		st.flags[uint32(mustAtoi(s.t, uid))] = dovecotNormFlags(strings.Fields(flags))
	}
	s.run("CLOSE")
	return st
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dovecotNormFlags sorts flags and drops \Recent (session state).
func dovecotNormFlags(f []string) []string {
	f = slices.DeleteFunc(slices.Clone(f), func(s string) bool { return strings.EqualFold(s, `\Recent`) })
	slices.Sort(f)
	return f
}

// mailroomFlags renders a message's flags the way IMAP shows them.
func mailroomFlags(m *Mailbox, msg Message) []string {
	var out []string
	for _, p := range []struct {
		f    Flags
		name string
	}{{FlagSeen, `\Seen`}, {FlagReplied, `\Answered`}, {FlagFlagged, `\Flagged`}, {FlagTrashed, `\Deleted`}, {FlagDraft, `\Draft`}} {
		if msg.Name.Flags&p.f != 0 {
			out = append(out, p.name)
		}
	}
	out = append(out, m.KeywordList().Names(msg.Name.Keywords)...)
	return dovecotNormFlags(out)
}

// compareWithDovecot checks that Dovecot and mailroom agree on everything.
func compareWithDovecot(t *testing.T, m *Mailbox, st dovecotState) {
	t.Helper()
	if st.validity != m.UIDValidity() {
		t.Errorf("UIDVALIDITY: dovecot %d, mailroom %d", st.validity, m.UIDValidity())
	}
	if st.next != m.UIDNext() {
		t.Errorf("UIDNEXT: dovecot %d, mailroom %d", st.next, m.UIDNext())
	}
	msgs := m.Messages()
	if len(msgs) != len(st.flags) {
		t.Errorf("dovecot has %d messages %v, mailroom %d %v", len(st.flags), st.flags, len(msgs), mbtestUIDs(msgs))
	}
	for _, msg := range msgs {
		df, ok := st.flags[msg.UID]
		if !ok {
			t.Errorf("uid %d: dovecot does not have it", msg.UID)
			continue
		}
		if mf := mailroomFlags(m, msg); !slices.Equal(df, mf) {
			t.Errorf("uid %d: dovecot flags %q, mailroom %q", msg.UID, df, mf)
		}
	}
}

// TestDovecotReadsMailroom: mailroom writes messages, flags, keywords and
// UIDs; Dovecot's imap must report the same UIDs, flags, keywords,
// UIDVALIDITY and UIDNEXT. Then Dovecot changes flags and mailroom must see
// them.
func TestDovecotReadsMailroom(t *testing.T) {
	testutil.RequireTool(t, dovecotIMAP)
	dir := mbtestMaildir(t, "Maildir")
	for i := 0; i < 5; i++ {
		mbtestMustDeliver(t, dir, fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))
	}
	m := mbtestOpen(t, dir)
	work, err := m.KeywordSlot("$Work", true)
	if err != nil {
		t.Fatal(err)
	}
	todo, err := m.KeywordSlot("todo", true)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		uid uint32
		f   Flags
		k   Keywords
	}{
		{1, FlagSeen, 0},
		{2, FlagFlagged | FlagReplied, Keywords(0).With(work)},
		{4, FlagDraft | FlagTrashed | FlagSeen, Keywords(0).With(todo).With(work)},
	}
	for _, s := range steps {
		if err := m.SetFlags(s.uid, s.f, s.k); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Expunge(3); err != nil { // a gap in the UIDs
		t.Fatal(err)
	}
	conf := dovecotPrepare(t, dir)
	d := dovecotStart(t, conf, dir)
	compareWithDovecot(t, m, d.state())

	// Dovecot, with its index now built, changes flags; mailroom follows.
	d.run("SELECT INBOX")
	d.run("UID STORE 1 +FLAGS (\\Flagged todo)")
	d.run("UID STORE 2 -FLAGS ($Work)")
	d.run("UID STORE 5 +FLAGS (newkw)")
	after := d.state()
	ch := mbtestSync(t, m)
	if !slices.Equal(ch.FlagsChanged, []uint32{1, 2, 5}) {
		t.Errorf("mailroom changes %+v", ch)
	}
	compareWithDovecot(t, m, after)

	// mailroom delivers and flags again; the same Dovecot session (with
	// its index) must pick it up.
	mbtestMustDeliver(t, dir, "Subject: late\r\n\r\n")
	mbtestSync(t, m)
	if err := m.SetFlags(5, FlagSeen, 0); err != nil {
		t.Fatal(err)
	}
	dovecotChown(t, dir)
	compareWithDovecot(t, m, d.state())
}

// TestMailroomReadsDovecot: Dovecot APPENDs, STOREs and EXPUNGEs in a fresh
// Maildir; mailroom must read the same UIDs, flags, keywords, UIDVALIDITY.
func TestMailroomReadsDovecot(t *testing.T) {
	testutil.RequireTool(t, dovecotIMAP)
	dir := mbtestMaildir(t, "Maildir")
	conf := dovecotPrepare(t, dir)
	d := dovecotStart(t, conf, dir)
	d.run("SELECT INBOX")
	d.appendMsg(`\Seen`, "Subject: 1\r\n\r\none\r\n")
	d.appendMsg(`\Flagged foo`, "Subject: 2\r\n\r\ntwo\r\n")
	d.appendMsg(``, "Subject: 3\r\n\r\nthree\r\n")
	d.appendMsg(`\Draft bar foo`, "Subject: 4\r\n\r\nfour\r\n")
	d.appendMsg(``, "Subject: 5\r\n\r\nfive\r\n")
	d.run("UID STORE 1 +FLAGS (baz \\Answered)")
	d.run("UID STORE 2 -FLAGS (foo)")
	d.run("UID STORE 3 +FLAGS (\\Deleted)")
	d.run("EXPUNGE")
	st := d.state()
	if len(st.flags) != 4 {
		t.Fatalf("dovecot state %+v", st)
	}
	m := mbtestOpen(t, dir)
	compareWithDovecot(t, m, st)
	if got := m.KeywordNames(); len(got) != 3 {
		t.Errorf("keywords %q, want foo, bar, baz in some slots", got)
	}
	// And back: mailroom sets flags, Dovecot's existing index must follow.
	slot, err := m.KeywordSlot("bar", false)
	if err != nil || slot < 0 {
		t.Fatalf("bar slot %d %v", slot, err)
	}
	if err := m.SetFlags(5, FlagSeen|FlagFlagged, Keywords(0).With(slot)); err != nil {
		t.Fatal(err)
	}
	dovecotChown(t, dir)
	compareWithDovecot(t, m, d.state())
}

// TestDovecotHonoursOurLock: while mailroom holds dovecot-uidlist.lock,
// Dovecot must not assign UIDs; it must wait for the lock and then continue
// from our next UID.
func TestDovecotHonoursOurLock(t *testing.T) {
	testutil.RequireTool(t, dovecotIMAP)
	dir := mbtestMaildir(t, "Maildir")
	mbtestMustDeliver(t, dir, "Subject: 1\r\n\r\n")
	m := mbtestOpen(t, dir)
	conf := dovecotPrepare(t, dir)
	lk, err := uidlistLockAcquire(dir, defaultLockOptions())
	if err != nil {
		t.Fatal(err)
	}
	d := dovecotStart(t, conf, dir)
	done := make(chan []string, 1)
	go func() {
		// Runs in the background: Dovecot blocks on our lock.
		_, err := fmt.Fprintf(d.in, "x1 SELECT INBOX\r\n")
		if err != nil {
			done <- nil
			return
		}
		var lines []string
		for i := 0; i < 1000; i++ {
			l, err := d.out.ReadString('\n')
			if err != nil {
				break
			}
			lines = append(lines, l)
			if strings.HasPrefix(l, "x1 ") {
				break
			}
		}
		done <- lines
	}()
	select {
	case lines := <-done:
		t.Fatalf("dovecot selected while we held the lock: %q", lines)
	case <-time.After(1500 * time.Millisecond):
		// Still waiting, as it must. (A bounded wait for a non-event.)
	}
	mbtestMustDeliver(t, dir, "Subject: 2\r\n\r\n")
	if err := lk.release(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	select {
	case lines = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("dovecot never got the lock")
	}
	joined := strings.Join(lines, "")
	if !strings.Contains(joined, "x1 OK") || !strings.Contains(joined, "UIDNEXT 3") {
		t.Fatalf("dovecot: %q", joined)
	}
	mbtestSync(t, m)
	if !slices.Equal(mbtestUIDs(m.Messages()), []uint32{1, 2}) {
		t.Fatalf("mailroom uids %v", mbtestUIDs(m.Messages()))
	}
}
