package smtpd

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/account"
	"mailroom/internal/config"
	"mailroom/internal/testutil"
	"mailroom/spool"
)

func TestMain(m *testing.M) { testutil.RunMain(m) }

// TestProgram runs the smtpd binary standalone: it serves (as nobody when
// started as root), reloads the tables on SIGHUP and exits 0 on SIGTERM.
func TestProgram(t *testing.T) {
	bin := testutil.BuildBinaries(t, "mailroom/cmd/smtpd")["smtpd"]
	cfg := testConfig(t)
	cfg.Smtpd.ListenSubmission, cfg.Smtpd.ListenSubmissions = nil, nil
	if os.Geteuid() == 0 {
		// The spool belongs to its consumer, with smtpd's group; here
		// both are nobody, reachable through the temporary directories.
		testutil.ShareMailRoot(t, filepath.Dir(cfg.SpoolDir))
		if err := spool.SetOwner(cfg.SpoolDir, testutil.NobodyID, testutil.NobodyID); err != nil {
			t.Fatal(err)
		}
		cfg.Smtpd.User = "nobody"
		// SIGHUP reads the configuration, the certificate and the tables
		// as nobody: the key is made readable here so that the tables
		// alone decide the first reload below.
		if err := os.Chmod(cfg.TLSKey, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	confPath := filepath.Join(t.TempDir(), "mailroom.conf")
	f, err := os.Create(confPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := config.Print(f, cfg); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	check := exec.Command(bin, "--config", confPath, "--check-config")
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("--check-config: %v\n%s", err, out)
	}
	logs := &testutil.SyncBuffer{}
	cmd := exec.Command(bin, "--config", confPath, "--listen", "smtp="+addr)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		if t.Failed() {
			t.Logf("smtpd log:\n%s", logs.String())
		}
	}()
	if !testutil.WaitFor(ioLimit, func() bool { return strings.Contains(logs.String(), "msg=start") }) {
		t.Fatal("smtpd did not start")
	}
	if os.Geteuid() == 0 {
		if uid := procUID(t, cmd.Process.Pid); uid != "65534" {
			t.Errorf("smtpd serves as uid %s, want nobody", uid)
		}
	}
	session := func(rcpt, want string) {
		c, err := net.DialTimeout("tcp", addr, ioLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cl := &client{t: t, conn: c, r: bufio.NewReader(c)}
		cl.ehlo()
		cl.expect("MAIL FROM:<s@remote.example>", "250 ")
		cl.expect("RCPT TO:<"+rcpt+">", want)
	}
	session("carol@example.org", "550 5.1.1 ")
	hash, err := account.HashPassword("carol-secret", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := account.AddUser(cfg.PasswdFile, account.User{Address: "carol@example.org", Hash: hash, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	// A reload the dropped user cannot read keeps the old tables.
	if os.Geteuid() == 0 {
		cmd.Process.Signal(syscall.SIGHUP)
		if !testutil.WaitFor(ioLimit, func() bool { return strings.Contains(logs.String(), "level=ERROR msg=reload what=tables") }) {
			t.Fatal("no failed reload after SIGHUP")
		}
		session("alice@example.org", "250 ")
		for _, p := range []string{cfg.PasswdFile, cfg.AliasesFile} {
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd.Process.Signal(syscall.SIGHUP)
	if !testutil.WaitFor(ioLimit, func() bool { return strings.Contains(logs.String(), "msg=reload what=tables users=3") }) {
		t.Fatal("no reload after SIGHUP")
	}
	session("carol@example.org", "250 ")
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("smtpd exited with %v", err)
		}
	case <-time.After(ioLimit):
		t.Fatal("smtpd did not stop on SIGTERM")
	}
}

// procUID reads the real uid of a process.
func procUID(t *testing.T, pid int) string {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Uid:"); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatal("no Uid line")
	return ""
}
