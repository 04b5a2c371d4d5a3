package sendmail

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailroom/spool"
)

// testEnv is a spool and a mailroom.conf in a temporary directory, and a
// System whose user is chosen by the test.
type testEnv struct {
	t      *testing.T
	dir    string
	conf   string
	spool  string
	uid    int
	login  string
	full   string
	env    map[string]string
	now    time.Time
	extra  string
	passwd string
	alias  string
}

func newTestEnv(t *testing.T, extra string) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{
		t: t, dir: dir,
		conf:   filepath.Join(dir, "mailroom.conf"),
		spool:  filepath.Join(dir, "spool"),
		passwd: filepath.Join(dir, "passwd"),
		alias:  filepath.Join(dir, "aliases"),
		uid:    1000, login: "alice", full: "Alice Liddell,,,",
		env: map[string]string{},
		now: time.Date(2025, 11, 23, 21, 56, 0, 0, time.UTC),
	}
	if err := os.Mkdir(e.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := spool.Setup(e.spool); err != nil {
		t.Fatal(err)
	}
	e.writeConfig(extra)
	return e
}

func (e *testEnv) writeConfig(extra string) {
	e.t.Helper()
	conf := fmt.Sprintf(`hostname = mx.example.org
domains = example.org
mail_root = %s
passwd_file = %s
aliases_file = %s
spool_dir = %s
[sendmail]
origin = example.org
%s`, filepath.Join(e.dir, "mail"), e.passwd, e.alias, e.spool, extra)
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) system(stdin io.Reader, stdout, stderr io.Writer) System {
	return System{
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Getuid: func() int { return e.uid },
		LookupUser: func(uid int) (string, string, error) {
			if uid != e.uid || e.login == "" {
				return "", "", fmt.Errorf("unknown uid %d", uid)
			}
			return e.login, e.full, nil
		},
		LookupEnv: func(k string) (string, bool) { v, ok := e.env[k]; return v, ok },
		Now:       func() time.Time { return e.now },
		Mailname:  filepath.Join(e.dir, "no-mailname"),
	}
}

type runResult struct {
	code           int
	stdout, stderr string
}

// run runs the program as argv0 with -C <conf> first.
func (e *testEnv) run(argv0, stdin string, args ...string) runResult {
	e.t.Helper()
	var out, errOut bytes.Buffer
	code := Run(argv0, append([]string{"-C", e.conf}, args...), e.system(strings.NewReader(stdin), &out, &errOut))
	return runResult{code, out.String(), errOut.String()}
}

func (r runResult) want(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}

// drops returns the maildrop entries, picked up into the queue and read
// back: envelope and data. The test runs as the spool's owner.
func (e *testEnv) drops() []dropped {
	e.t.Helper()
	sp, err := spool.Open(e.spool)
	if err != nil {
		e.t.Fatal(err)
	}
	ids, err := sp.ListMaildrop()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []dropped
	for _, id := range ids {
		qid, err := sp.Pickup(id)
		if err != nil {
			e.t.Fatalf("pickup %s: %v", id, err)
		}
		m, err := sp.Message(qid)
		if err != nil {
			e.t.Fatal(err)
		}
		f, err := m.OpenData()
		if err != nil {
			e.t.Fatal(err)
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, dropped{id: qid, env: m.Envelope, data: string(data)})
	}
	return out
}

type dropped struct {
	id   spool.ID
	env  spool.Envelope
	data string
}

func (d dropped) rcpts() []string {
	var out []string
	for _, r := range d.env.Recipients {
		out = append(out, r.Addr)
	}
	return out
}

func (e *testEnv) oneDrop() dropped {
	e.t.Helper()
	ds := e.drops()
	if len(ds) != 1 {
		e.t.Fatalf("%d maildrop entries, want 1", len(ds))
	}
	return ds[0]
}
