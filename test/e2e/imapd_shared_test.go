package e2e

// imapd and other IMAP servers on the same Maildirs: Debian's Dovecot
// agreeing with imapd on every UID and flag, and two imapd processes
// sharing one Maildir tree as two hosts sharing storage would.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const dovecotIMAP = "/usr/lib/dovecot/imap"

// dovecot runs Debian's Dovecot imap, pre-authenticated on standard input
// and output with no daemon, on one user's Maildir (Maildir++ folders
// beside it), as the Maildir's owner.
type dovecot struct {
	t             *testing.T
	e             *env
	conf, maildir string
}

func newDovecot(t *testing.T, e *env, maildir string) *dovecot {
	t.Helper()
	requireTool(t, dovecotIMAP)
	var uid, gid int
	if _, err := fmt.Sscanf(ownerOf(t, maildir), "%d:%d", &uid, &gid); err != nil {
		t.Fatal(err)
	}
	d := &dovecot{t: t, e: e, conf: filepath.Join(e.Dir, "dovecot.conf"), maildir: maildir}
	writeFile(t, d.conf, fmt.Sprintf(`mail_location = maildir:%s
log_path = /dev/stderr
base_dir = %s
ssl = no
mail_uid = %d
mail_gid = %d
first_valid_uid = 1
first_valid_gid = 1
mail_fsync = always
`, maildir, filepath.Join(e.Dir, "dovecot-run"), uid, gid))
	return d
}

// run sends the commands (tagged here) and LOGOUT, and returns Dovecot's
// output; any tagged reply but OK fails the test.
func (d *dovecot) run(commands ...string) []string {
	d.t.Helper()
	var in strings.Builder
	for i, c := range commands {
		fmt.Fprintf(&in, "d%d %s\r\n", i, c)
	}
	in.WriteString("dz LOGOUT\r\n")
	ctx, cancel := context.WithTimeout(d.t.Context(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotIMAP, "-c", d.conf)
	cmd.Env = []string{"USER=mailroom-test", "HOME=" + d.maildir, "PATH=/usr/bin:/bin"}
	cmd.Stdin = strings.NewReader(in.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("dovecot imap: %v\n%s\n%s", err, out, stderr.String())
	}
	lines := strings.Split(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n")
	for _, l := range lines {
		if tag, rest, _ := strings.Cut(l, " "); strings.HasPrefix(tag, "d") && !strings.HasPrefix(rest, "OK") {
			d.t.Fatalf("dovecot: %q\nall output:\n%s\nstderr: %s", l, out, stderr.String())
		}
	}
	return lines
}

var (
	uidValidityRe = regexp.MustCompile(`\[UIDVALIDITY (\d+)\]`)
	uidNextRe     = regexp.MustCompile(`\[UIDNEXT (\d+)\]`)
	fetchUIDRe    = regexp.MustCompile(`^\* \d+ FETCH \(.*UID (\d+)`)
	fetchFlagsRe  = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
)

// state is what Dovecot reports for box.
func (d *dovecot) state(box string) imapState {
	d.t.Helper()
	st := imapState{Msgs: map[uint32]imapMsg{}}
	for _, l := range d.run("EXAMINE "+box, "UID FETCH 1:* (FLAGS)") {
		if m := uidValidityRe.FindStringSubmatch(l); m != nil {
			st.UIDValidity = uint32(atoi(d.t, m[1]))
		}
		if m := uidNextRe.FindStringSubmatch(l); m != nil {
			st.UIDNext = uint32(atoi(d.t, m[1]))
		}
		u, f := fetchUIDRe.FindStringSubmatch(l), fetchFlagsRe.FindStringSubmatch(l)
		if u == nil || f == nil {
			continue
		}
		flags := slices.DeleteFunc(strings.Fields(f[1]), func(s string) bool { return s == `\Recent` })
		slices.Sort(flags)
		if flags == nil {
			flags = []string{}
		}
		st.Msgs[uint32(atoi(d.t, u[1]))] = imapMsg{Flags: flags}
	}
	return st
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImapdDovecotAgree: after imapd changed a mailbox (flags, keywords,
// expunge, append, copy to a folder), Dovecot reports the same UIDs,
// flags, UIDVALIDITY and UIDNEXT; after Dovecot changed it, imapd does.
func TestImapdDovecotAgree(t *testing.T) {
	requireTool(t, dovecotIMAP)
	python := requireTool(t, "/usr/bin/python3")
	e, s := imapSetup(t)
	host, port, _ := net.SplitHostPort(s.tls)
	const changes = `
import imaplib, ssl, sys, time
host, port, ca, user, pw = sys.argv[1:6]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca), timeout=30)
m.login(user, pw)
def ok(res):
    if res[0] != 'OK': raise SystemExit(repr(res))
ok(m.select('INBOX'))
ok(m.store('1', '+FLAGS', '(\\Seen \\Answered $Label1)'))
ok(m.store('2', '+FLAGS', '(\\Flagged todo \\Deleted)'))
ok(m.store('3', '+FLAGS', '(\\Draft)'))
ok(m.copy('1,3', 'Archive'))
ok(m.expunge())
ok(m.append('INBOX', '(\\Seen later)', imaplib.Time2Internaldate(time.time()), b'Subject: appended\r\n\r\nx\r\n'))
ok(m.store('1', '-FLAGS', '(\\Answered)'))
m.logout()
`
	e.runProgram("", python, "-c", changes, host, port, s.cert, imapUser, imapPass).wantCode(t, 0)
	maildir := e.maildir(imapUser)
	d := newDovecot(t, e, maildir)
	for _, box := range []string{"INBOX", "Archive"} {
		ours := s.dump(t, e, box)
		if box == "INBOX" && len(ours.Msgs) != 3 {
			t.Fatalf("imapd's INBOX after the changes: %+v", ours)
		}
		sameFlags(t, box+": imapd against Dovecot", ours, d.state(box))
	}

	// Dovecot changes the mailbox; imapd, still running with its views
	// and cache, must agree.
	body := "Subject: from dovecot\r\n\r\nhi\r\n"
	before := s.dump(t, e, "INBOX")
	first := slices.Min(slices.Collect(maps.Keys(before.Msgs)))
	d.run("SELECT INBOX",
		fmt.Sprintf(`UID STORE %d +FLAGS (\Flagged dovecotkw)`, first),
		fmt.Sprintf(`APPEND INBOX (\Answered) {%d+}`+"\r\n"+body, len(body)),
		fmt.Sprintf(`UID STORE %d +FLAGS (\Deleted)`, before.bySubject(t, "appended")),
		"EXPUNGE")
	after := s.dump(t, e, "INBOX")
	sameFlags(t, "INBOX after Dovecot's changes: imapd against Dovecot", after, d.state("INBOX"))
	if f := after.Msgs[after.bySubject(t, "from dovecot")].Flags; !slices.Equal(f, []string{`\Answered`}) {
		t.Errorf("imapd shows Dovecot's APPEND with flags %q", f)
	}
	if f := after.Msgs[first].Flags; !slices.Contains(f, "dovecotkw") || !slices.Contains(f, `\Flagged`) {
		t.Errorf("imapd shows Dovecot's STORE as %q", f)
	}
}

// rawIMAP is a minimal IMAP client over TLS for the two-process test,
// where the exact untagged responses matter.
type rawIMAP struct {
	t    *testing.T
	name string
	c    net.Conn
	r    *bufio.Reader
	n    int
}

func dialIMAPS(t *testing.T, name, addr, caFile string) *rawIMAP {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: daemonWait}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ic := &rawIMAP{t: t, name: name, c: c, r: bufio.NewReader(c)}
	if g := ic.response(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("%s: greeting %q", name, g)
	}
	ic.cmd("LOGIN %q %q", imapUser, imapPass)
	ic.cmd("SELECT INBOX")
	return ic
}

// response reads one response, literals inline.
func (c *rawIMAP) response() string {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(daemonWait))
	var b strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("%s: read: %v (after %q)", c.name, err, b.String()+l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		b.WriteString(l)
		i := strings.LastIndexByte(l, '{')
		if !strings.HasSuffix(l, "}") || i < 0 {
			return b.String()
		}
		n, err := strconv.Atoi(l[i+1 : len(l)-1])
		if err != nil {
			return b.String()
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatalf("%s: literal: %v", c.name, err)
		}
		b.WriteString("\r\n")
		b.Write(buf)
	}
}

func (c *rawIMAP) send(s string) {
	c.t.Helper()
	_ = c.c.SetWriteDeadline(time.Now().Add(daemonWait))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// cmd runs one command and returns its untagged responses; the tagged
// reply must be OK and is returned last.
func (c *rawIMAP) cmd(format string, args ...any) []string {
	c.t.Helper()
	c.n++
	tag := fmt.Sprintf("%s%d", c.name, c.n)
	c.send(tag + " " + fmt.Sprintf(format, args...) + "\r\n")
	var out []string
	for i := 0; i < 10000; i++ {
		r := c.response()
		out = append(out, r)
		if strings.HasPrefix(r, tag+" ") {
			if !strings.HasPrefix(r, tag+" OK") {
				c.t.Fatalf("%s: %s -> %q", c.name, fmt.Sprintf(format, args...), out)
			}
			return out
		}
	}
	c.t.Fatalf("%s: no end of responses", c.name)
	return nil
}

// appendMsg APPENDs a message and returns the UID from APPENDUID.
func (c *rawIMAP) appendMsg(subject string) uint32 {
	c.t.Helper()
	body := "Subject: " + subject + "\r\n\r\nbody\r\n"
	r := c.cmd("APPEND INBOX {%d+}\r\n%s", len(body), body)
	m := regexp.MustCompile(`\[APPENDUID \d+ (\d+)\]`).FindStringSubmatch(r[len(r)-1])
	if m == nil {
		c.t.Fatalf("%s: APPEND: %q", c.name, r)
	}
	return uint32(atoi(c.t, m[1]))
}

// flagsByUID is UID FETCH 1:* (FLAGS) as text per UID.
func (c *rawIMAP) flagsByUID() map[string]string {
	c.t.Helper()
	out := map[string]string{}
	for _, l := range c.cmd("UID FETCH 1:* (FLAGS)") {
		u, f := fetchUIDRe.FindStringSubmatch(l), fetchFlagsRe.FindStringSubmatch(l)
		if u != nil && f != nil {
			flags := slices.DeleteFunc(strings.Fields(f[1]), func(s string) bool { return s == `\Recent` })
			slices.Sort(flags)
			out[u[1]] = strings.Join(flags, " ")
		}
	}
	return out
}

// TestImapdTwoProcesses: two imapd processes on one Maildir tree, as two
// hosts sharing storage, see each other's appends, flag changes and
// expunges, with the same UIDs; IDLE in one hears an APPEND in the other.
func TestImapdTwoProcesses(t *testing.T) {
	e, s1 := imapSetup(t)
	s2 := startImapd(t, e, s1.cert)
	a := dialIMAPS(t, "a", s1.tls, s1.cert)
	b := dialIMAPS(t, "b", s2.tls, s2.cert)

	uid := a.appendMsg("from a")
	wantAll(t, "b sees a's APPEND", strings.Join(b.cmd("NOOP"), "\n"), "* 4 EXISTS")
	wantAll(t, "b fetches it by a's UID", strings.Join(b.cmd("UID FETCH %d (BODY.PEEK[HEADER.FIELDS (SUBJECT)])", uid), "\n"), "Subject: from a")

	b.cmd(`UID STORE %d +FLAGS.SILENT (\Flagged shared)`, uid)
	wantAll(t, "a sees b's STORE", strings.Join(a.cmd("NOOP"), "\n"), fmt.Sprintf("UID %d", uid), `\Flagged`, "shared")

	a.cmd(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	wantAll(t, "a's EXPUNGE", strings.Join(a.cmd("EXPUNGE"), "\n"), "* 1 EXPUNGE")
	wantAll(t, "b sees a's EXPUNGE", strings.Join(b.cmd("NOOP"), "\n"), "* 1 EXPUNGE")

	// Appends through both processes get distinct, growing UIDs.
	ua, ub := a.appendMsg("a again"), b.appendMsg("b again")
	if !(uid < ua && ua < ub) {
		t.Errorf("UIDs %d, %d, %d: want growing across processes", uid, ua, ub)
	}

	// IDLE in b wakes for an APPEND through a.
	b.send("bidle IDLE\r\n")
	if r := b.response(); !strings.HasPrefix(r, "+") {
		t.Fatalf("IDLE: %q", r)
	}
	start := time.Now()
	a.appendMsg("while b idles")
	var seen []string
	for i := 0; i < 100; i++ {
		r := b.response()
		seen = append(seen, r)
		if strings.HasSuffix(r, " EXISTS") {
			break
		}
	}
	t.Logf("IDLE in the other process heard the APPEND after %v: %q", time.Since(start).Round(time.Millisecond), seen)
	b.send("DONE\r\n")
	for i := 0; i < 100; i++ {
		if r := b.response(); strings.HasPrefix(r, "bidle ") {
			must := strings.HasPrefix(r, "bidle OK")
			if !must {
				t.Fatalf("DONE: %q", r)
			}
			break
		}
	}
	fa, fb := a.flagsByUID(), b.flagsByUID()
	if !maps.Equal(fa, fb) || len(fa) != 6 {
		t.Errorf("the two processes disagree (or lost messages): a %v, b %v", fa, fb)
	}
	a.cmd("LOGOUT")
	b.cmd("LOGOUT")
}
