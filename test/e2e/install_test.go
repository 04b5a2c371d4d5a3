package e2e

// The staged install: `make install` into a temporary DESTDIR, run from
// the repository root as an admin or a packager runs it, then the
// installed files checked and the installed programs run from there, not
// from the test build: --check-config, the sendmail/mailq/newaliases
// links, the man pages through mandoc -Tlint, the units pointing at the
// installed programs, the sample configuration kept on a second install,
// and smtpd under systemd-socket-activate and in inetd mode each
// accepting a message that the installed deliver --queue delivers.
//
// TestTmpfiles runs etc/tmpfiles.d/mailroom.conf through systemd-tmpfiles
// into a scratch root: the spool directory it makes is the one
// mailroom-deliver.service needs before its first start.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/testutil"
)

// makeTimeout bounds one make install (a build included).
const makeTimeout = 10 * time.Minute

// repoRoot is the checkout the tests run in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Makefile")); err != nil {
		t.Fatalf("no Makefile at the repository root: %v", err)
	}
	return root
}

// makeInstall runs make install from the repository root with vars.
func makeInstall(t *testing.T, makeProg string, vars ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), makeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, makeProg, append([]string{"install"}, vars...)...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make install %s: %v\n%s", strings.Join(vars, " "), err, out)
	}
}

// programs lists mailroom's programs: the directories under cmd/.
func programs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot(t), "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no programs under cmd/")
	}
	return names
}

// staged is one make install into its own DESTDIR.
type staged struct {
	dest, sbin, man, units, sysconf string
}

func (s staged) prog(name string) string { return filepath.Join(s.dest, s.sbin, name) }

func install(t *testing.T, makeProg, prefix string) staged {
	t.Helper()
	s := staged{dest: t.TempDir(), sbin: prefix + "/sbin", man: prefix + "/share/man",
		units: "/lib/systemd/system", sysconf: "/etc"}
	makeInstall(t, makeProg, "DESTDIR="+s.dest, "PREFIX="+prefix, "SYSCONFDIR="+s.sysconf)
	return s
}

func TestInstall(t *testing.T) {
	makeProg := requireTool(t, "/usr/bin/make")
	s := install(t, makeProg, "/usr")
	root := repoRoot(t)

	t.Run("programs", func(t *testing.T) {
		for _, name := range programs(t) {
			fi, err := os.Stat(s.prog(name))
			if err != nil {
				t.Errorf("program %s not installed: %v", name, err)
				continue
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
				t.Errorf("%s: mode %v, want a regular file 0755", s.prog(name), fi.Mode())
			}
		}
		// sendmail is also mailq and newaliases, by argv[0].
		for _, link := range []string{"mailq", "newaliases"} {
			target, err := os.Readlink(s.prog(link))
			if err != nil || target != "sendmail" {
				t.Errorf("%s: link to %q (%v), want sendmail", s.prog(link), target, err)
			}
		}
	})

	t.Run("man", func(t *testing.T) {
		mandoc := requireTool(t, "/usr/bin/mandoc")
		pages, err := filepath.Glob(filepath.Join(root, "man", "*.[158]"))
		if err != nil || len(pages) == 0 {
			t.Fatalf("no man pages in man/ (%v)", err)
		}
		var installed []string
		for _, p := range pages {
			section := p[len(p)-1:]
			dst := filepath.Join(s.dest, s.man, "man"+section, filepath.Base(p))
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: not installed as man/%s (%v)", dst, filepath.Base(p), err)
				continue
			}
			installed = append(installed, dst)
		}
		ctx, cancel := context.WithTimeout(t.Context(), processTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, mandoc, append([]string{"-Tlint", "-Wwarning"}, installed...)...).CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Errorf("mandoc -Tlint on the installed pages: %v\n%s", err, out)
		}
	})

	t.Run("units", func(t *testing.T) {
		checkUnits(t, s, "/usr/sbin")
	})

	t.Run("config kept", func(t *testing.T) {
		conf := filepath.Join(s.dest, s.sysconf, "mailroom", "mailroom.conf")
		got, err := os.ReadFile(conf)
		if err != nil {
			t.Fatalf("sample configuration not installed: %v", err)
		}
		want, err := os.ReadFile(filepath.Join(root, "etc", "mailroom.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from etc/mailroom.conf", conf)
		}
		edited := string(want) + "\n# the admin's own line\ndomains = example.org\n"
		if err := os.WriteFile(conf, []byte(edited), 0o640); err != nil {
			t.Fatal(err)
		}
		chmod(t, conf, 0o640)
		makeInstall(t, makeProg, "DESTDIR="+s.dest, "PREFIX=/usr", "SYSCONFDIR="+s.sysconf)
		if got, err := os.ReadFile(conf); err != nil || string(got) != edited {
			t.Errorf("a second make install changed the admin's %s (%v)", conf, err)
		}
		if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("a second make install changed the mode of %s: %v (%v)", conf, fi.Mode(), err)
		}
	})

	t.Run("prefix", func(t *testing.T) {
		// Another PREFIX: the programs, pages and units' ExecStart move
		// together.
		o := install(t, makeProg, "/opt/mailroom")
		if _, err := os.Stat(o.prog("smtpd")); err != nil {
			t.Errorf("PREFIX=/opt/mailroom: %v", err)
		}
		if _, err := os.Stat(filepath.Join(o.dest, o.man, "man8", "smtpd.8")); err != nil {
			t.Errorf("PREFIX=/opt/mailroom: %v", err)
		}
		checkUnits(t, o, "/opt/mailroom/sbin")
	})

	t.Run("check-config", func(t *testing.T) {
		// A complete configuration: accounts, and TLS for submissions.
		e := newEnv(t, "example.org")
		addFastUser(t, e, "alice@example.org", "pw of alice")
		newMailDaemons(t, e, []string{"example.org"}, "")
		for _, prog := range []string{"smtpd", "deliver", "pop3d", "imapd"} {
			e.runProgram("", s.prog(prog), "--config", e.Config, "--check-config").wantCode(t, 0)
		}
		bad := filepath.Join(e.Dir, "bad.conf")
		writeFile(t, bad, "no_such_key = 1\n")
		r := e.runProgram("", s.prog("smtpd"), "--config", bad, "--check-config")
		if r.code == 0 || !strings.Contains(r.stderr, "no_such_key") {
			t.Errorf("smtpd --check-config of a bad file: exit %d, stderr %q; want a failure naming the key", r.code, r.stderr)
		}
	})

	t.Run("running", func(t *testing.T) {
		testStagedDaemons(t, s)
	})
}

// checkUnits checks that every unit in etc/systemd/ is installed and that
// each service's ExecStart= names the installed program in sbin.
func checkUnits(t *testing.T, s staged, sbin string) {
	t.Helper()
	units, err := filepath.Glob(filepath.Join(repoRoot(t), "etc", "systemd", "*.s*"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units in etc/systemd (%v)", err)
	}
	for _, u := range units {
		dst := filepath.Join(s.dest, s.units, filepath.Base(u))
		text, err := os.ReadFile(dst)
		if err != nil {
			t.Errorf("unit %s not installed: %v", filepath.Base(u), err)
			continue
		}
		if !strings.HasSuffix(u, ".service") {
			continue
		}
		var starts []string
		sc := bufio.NewScanner(bytes.NewReader(text))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
				starts = append(starts, v)
			}
		}
		if len(starts) != 1 {
			t.Errorf("%s: %d ExecStart= lines, want 1", dst, len(starts))
			continue
		}
		path := strings.Fields(starts[0])[0]
		if filepath.Dir(path) != sbin {
			t.Errorf("%s: ExecStart=%s, want a program in %s", dst, starts[0], sbin)
		}
		if _, err := os.Stat(filepath.Join(s.dest, path)); err != nil {
			t.Errorf("%s: ExecStart names %s, not installed: %v", dst, path, err)
		}
	}
}

// testStagedDaemons runs the installed deliver --queue, then hands it a
// message through each way in: the installed sendmail, smtpd under
// systemd-socket-activate, and smtpd in inetd mode.
func testStagedDaemons(t *testing.T, s staged) {
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "pw of alice")
	m := newMailDaemons(t, e, []string{"example.org"}, "")
	startStagedDeliver(t, m, s.prog("deliver"))
	delivered := 0

	t.Run("sendmail", func(t *testing.T) {
		msg := "From: root\nTo: alice@example.org\nSubject: installed sendmail\n\nThrough the installed sendmail.\n"
		e.runProgram(msg, s.prog("sendmail"), "--config", e.Config, "-i", "alice@example.org").wantCode(t, 0)
		delivered++
		got := m.waitNewMail("alice@example.org", delivered)
		// By content, not position: Maildir names do not sort by time within
		// a second.
		if !slices.ContainsFunc(got, func(m string) bool { return strings.Contains(m, "Through the installed sendmail.") }) {
			t.Errorf("delivered %q, want the message sendmail took", got)
		}
		m.waitQueueEmpty()
		q := e.runProgram("", s.prog("mailq"), "--config", e.Config)
		q.wantCode(t, 0)
		if !strings.Contains(q.stdout, "empty") {
			t.Errorf("installed mailq on an empty queue printed %q", q.stdout)
		}
		e.runProgram("", s.prog("newaliases"), "--config", e.Config).wantCode(t, 0)
	})

	t.Run("systemd-socket-activate", func(t *testing.T) {
		activate := requireTool(t, "/usr/bin/systemd-socket-activate")
		d := startDaemon(t, "systemd-socket-activate installed smtpd", activate, nil,
			"-l", m.MX, "--fdname=smtp", "--", s.prog("smtpd"), "--config", e.Config)
		m.waitListening(d, m.MX)
		msg := message("carol@example.net", "alice@example.org", "socket activated", "Through the installed smtpd, socket-activated.\n")
		if err := sendPlain(m.MX, "carol@example.net", "alice@example.org", msg); err != nil {
			t.Fatalf("sending through the socket-activated smtpd: %v", err)
		}
		delivered++
		got := m.waitNewMail("alice@example.org", delivered)
		wantDelivered(t, lastDelivered(t, m, "alice@example.org", got, msg), msg)
		d.stop()
		if !strings.Contains(d.log.String(), "mode=systemd") {
			t.Errorf("the installed smtpd did not report systemd mode:\n%s", d.log)
		}
	})

	t.Run("inetd", func(t *testing.T) {
		addr, logs := inetdOnce(t, s.prog("smtpd"), "--config", e.Config, "--inetd", "--service", "smtp")
		msg := message("carol@example.net", "alice@example.org", "inetd", "Through the installed smtpd, from inetd.\n")
		if err := sendPlain(addr, "carol@example.net", "alice@example.org", msg); err != nil {
			t.Fatalf("sending through smtpd --inetd: %v", err)
		}
		delivered++
		got := m.waitNewMail("alice@example.org", delivered)
		wantDelivered(t, lastDelivered(t, m, "alice@example.org", got, msg), msg)
		if l := logs(); !strings.Contains(l, "mode=inetd") || !strings.Contains(l, "msg=accepted") {
			t.Errorf("smtpd --inetd log lacks mode=inetd or msg=accepted:\n%s", l)
		}
	})
	m.waitQueueEmpty()
}

// startStagedDeliver is startDeliver with the installed deliver: started,
// then waited for until it reports READY=1 over sd_notify.
func startStagedDeliver(t *testing.T, m *mailDaemons, deliver string) {
	t.Helper()
	var buf [8]byte
	if _, err := rand.Read(buf[:]); err != nil {
		t.Fatal(err)
	}
	name := "@mailroom-install-" + hex.EncodeToString(buf[:])
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	m.deliver = startDaemon(t, "installed deliver --queue", deliver, []string{"NOTIFY_SOCKET=" + name},
		"--config", m.e.Config, "--queue")
	// Short reads, so that a deliver that exits at once (a spool it
	// cannot use, no inotify instance left) fails the test at once.
	deadline := time.Now().Add(daemonWait)
	msg := make([]byte, 512)
	for range 1000 {
		if m.deliver.exited() {
			t.Fatalf("installed deliver --queue exited before READY=1: %v\n%s", m.deliver.err, m.deliver.log)
		}
		if time.Now().After(deadline) {
			t.Fatalf("installed deliver --queue not ready within %v\n%s", daemonWait, m.deliver.log)
		}
		if err := notify.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		n, err := notify.Read(msg)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			t.Fatal(err)
		}
		if strings.Contains(string(msg[:n]), "READY=1") {
			return
		}
	}
	t.Fatalf("installed deliver --queue: no READY=1 in 1000 waits\n%s", m.deliver.log)
}

// inetdOnce does inetd's part for one connection: it listens on a free
// loopback port, and the first connection there becomes standard input and
// output of program. It returns the address and the program's log so far;
// the program must exit 0 by the end of the test.
func inetdOnce(t *testing.T, program string, args ...string) (string, func() string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := &testutil.SyncBuffer{}
	exited := make(chan error, 1)
	go func() {
		defer ln.Close()
		if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(daemonWait)); err != nil {
			exited <- err
			return
		}
		c, err := ln.Accept()
		if err != nil {
			exited <- fmt.Errorf("accept: %w", err)
			return
		}
		f, err := c.(*net.TCPConn).File()
		c.Close()
		if err != nil {
			exited <- err
			return
		}
		defer f.Close()
		ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, program, args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, log
		exited <- cmd.Run()
	}()
	t.Cleanup(func() {
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%s in inetd mode: %v\n%s", filepath.Base(program), err, log)
			}
		case <-time.After(processTimeout):
			t.Errorf("%s in inetd mode did not exit within %v\n%s", filepath.Base(program), processTimeout, log)
		}
	})
	return ln.Addr().String(), log.String
}

// TestTmpfiles runs etc/tmpfiles.d/mailroom.conf with systemd-tmpfiles
// --create into a scratch root whose /etc/passwd and /etc/group have vmail
// and mailroom: it makes the spool directory, config.Default's spool_dir,
// owned vmail:mailroom, mode 0711, the users and group the deliver unit
// runs as; it mends a wrong mode and owner; and a second run changes
// nothing.
func TestTmpfiles(t *testing.T) {
	tmpfiles := requireTool(t, "/usr/bin/systemd-tmpfiles")
	if os.Geteuid() != 0 {
		// Giving the directory to vmail is a chown.
		t.Skip("systemd-tmpfiles --create of another user's directory needs root")
	}
	const vmailUID, mailroomGID = 5000, 5001
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(etc, "passwd"), fmt.Sprintf("root:x:0:0::/root:/bin/sh\nvmail:x:%d:%d::/nonexistent:/usr/sbin/nologin\nmailroom:x:%d:%d::/nonexistent:/usr/sbin/nologin\n",
		vmailUID, vmailUID, mailroomGID, mailroomGID))
	writeFile(t, filepath.Join(etc, "group"), fmt.Sprintf("root:x:0:\nvmail:x:%d:\nmailroom:x:%d:\n", vmailUID, mailroomGID))
	conf := filepath.Join(repoRoot(t), "etc", "tmpfiles.d", "mailroom.conf")
	spoolDir := filepath.Join(root, config.Default().SpoolDir)

	create := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), processTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, tmpfiles, "--create", "--root="+root, conf).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-tmpfiles --create: %v\n%s", err, out)
		}
	}
	want := func(when string) {
		t.Helper()
		fi, err := os.Lstat(spoolDir)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || fi.Mode().Perm() != 0o711 || fi.Mode()&(fs.ModeSetgid|fs.ModeSticky) != 0 ||
			st.Uid != vmailUID || st.Gid != mailroomGID {
			t.Errorf("%s: %s is %v %d:%d, want a directory 0711 vmail:mailroom (%d:%d)",
				when, spoolDir, fi.Mode(), st.Uid, st.Gid, vmailUID, mailroomGID)
		}
	}
	create()
	want("first run")
	create()
	want("second run")
	if err := os.Chmod(spoolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(spoolDir, 0, 0); err != nil {
		t.Fatal(err)
	}
	create()
	want("after chmod 0755 and chown root")

	// The unit that needs the directory runs as its owner and group.
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "etc", "systemd", "mailroom-deliver.service"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(unit), "\n")
	for _, w := range []string{"User=vmail", "Group=mailroom", "ReadWritePaths=" + config.Default().SpoolDir + " "} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l+" ", w) }) {
			t.Errorf("mailroom-deliver.service has no line %q", w)
		}
	}
}
