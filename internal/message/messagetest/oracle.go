package messagetest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DovecotIMAP is Dovecot's imap program, which StartOracle runs; callers
// check it is there first (requireTool in their tests).
const DovecotIMAP = "/usr/lib/dovecot/imap"

// Oracle is Dovecot's imap on stdin/stdout, pre-authenticated on a Maildir.
type Oracle struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	tag  int
	errs bytes.Buffer
	seqs map[string]int // by X-GUID, filled by Seq
}

// StartOracle writes msgs into a fresh Maildir's cur/ as they are (LF
// line ends stay LF) and starts Dovecot on it. Dovecot's X-GUID of a
// Maildir message is its file name's base, which is how answers are
// matched to messages.
func StartOracle(t *testing.T, msgs map[string]string) *Oracle {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "Maildir")
	for _, d := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for guid, text := range msgs {
		if err := os.WriteFile(filepath.Join(dir, "cur", guid+":2,"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 { // Dovecot will not keep root
		uid, gid = 65534, 65534
		for p := base; p != "/" && p != "."; p = filepath.Dir(p) {
			if err := os.Chmod(p, 0o755); err != nil && p == base {
				t.Fatal(err)
			}
			if p == os.TempDir() {
				break
			}
		}
		err := filepath.Walk(base, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(base, "dovecot.conf")
	cfg := fmt.Sprintf("mail_location = maildir:%s\nlog_path = /dev/stderr\nbase_dir = %s\nssl = no\n"+
		"mail_uid = %d\nmail_gid = %d\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n",
		dir, filepath.Join(base, "run"), uid, gid)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &Oracle{t: t}
	o.cmd = exec.Command(DovecotIMAP, "-c", conf)
	o.cmd.Env = []string{"USER=mailroom-test", "HOME=" + dir, "PATH=/usr/bin:/bin"}
	o.cmd.Stderr = &o.errs
	var err error
	if o.in, err = o.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := o.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	o.out = bufio.NewReader(stdout)
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		o.in.Close()
		o.cmd.Process.Kill()
		o.cmd.Wait()
	})
	if g := o.response(); !bytes.HasPrefix(g, []byte("* PREAUTH")) {
		t.Fatalf("dovecot greeting %q; stderr: %s", g, o.errs.String())
	}
	o.Run("SELECT INBOX")
	return o
}

// response reads one response, literals included, with a deadline.
func (o *Oracle) response() []byte {
	o.t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var resp []byte
		for i := 0; i < 100000; i++ {
			line, err := o.out.ReadBytes('\n')
			resp = append(resp, line...)
			if err != nil {
				ch <- result{resp, err}
				return
			}
			n, ok := literalSize(line)
			if !ok {
				ch <- result{resp, nil}
				return
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(o.out, buf); err != nil {
				ch <- result{resp, err}
				return
			}
			resp = append(resp, buf...)
		}
		ch <- result{resp, errors.New("response too long")}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			o.t.Fatalf("dovecot: %v; stderr: %s", r.err, o.errs.String())
		}
		return r.b
	case <-time.After(20 * time.Second):
		o.t.Fatalf("dovecot: no response in 20s; stderr: %s", o.errs.String())
		return nil
	}
}

// literalSize recognises a line ending in "{n}\r\n".
func literalSize(line []byte) (int, bool) {
	line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(string(line[i+1:len(line)-1]), "+"))
	return n, err == nil
}

// Run sends a command and returns its untagged responses.
func (o *Oracle) Run(cmd string) [][]byte {
	o.t.Helper()
	o.tag++
	tag := "t" + strconv.Itoa(o.tag)
	if _, err := fmt.Fprintf(o.in, "%s %s\r\n", tag, cmd); err != nil {
		o.t.Fatal(err)
	}
	var untagged [][]byte
	for i := 0; i < 100000; i++ {
		r := o.response()
		if bytes.HasPrefix(r, []byte(tag+" ")) {
			if !bytes.HasPrefix(r, []byte(tag+" OK")) {
				o.t.Fatalf("dovecot: %s -> %s", cmd, r)
			}
			return untagged
		}
		untagged = append(untagged, r)
	}
	o.t.Fatal("dovecot: too many responses")
	return nil
}

// FetchItems runs a FETCH and returns, per X-GUID, the items by name,
// each value in canonical form (see Canon).
func (o *Oracle) FetchItems(items string) map[string]map[string]string {
	o.t.Helper()
	out := map[string]map[string]string{}
	for _, r := range o.Run("FETCH 1:* (X-GUID " + items + ")") {
		i := bytes.Index(r, []byte(" FETCH ("))
		if i < 0 {
			continue
		}
		m, err := FetchList(r[i+len(" FETCH "):])
		if err != nil {
			o.t.Fatalf("parsing %q: %v", r, err)
		}
		out[m["X-GUID"]] = m
	}
	return out
}

// FetchList parses "(NAME value NAME value ...)" into canonical values.
func FetchList(b []byte) (map[string]string, error) {
	c := &canonizer{b: b}
	if !c.eat('(') {
		return nil, errors.New("no list")
	}
	m := map[string]string{}
	for !c.eat(')') {
		c.eat(' ')
		name := c.atom()
		c.eat(' ')
		v, err := c.value()
		if err != nil {
			return nil, err
		}
		m[name] = v
		if c.i >= len(c.b) {
			return nil, errors.New("unterminated")
		}
	}
	return m, nil
}

// Canon returns IMAP data in a canonical form: strings, quoted or
// literal, become Go-quoted strings, so that two servers' choices between
// the two forms compare equal and nothing else does.
func Canon(b []byte) (string, error) {
	c := &canonizer{b: b}
	v, err := c.value()
	if err == nil && c.i != len(c.b) {
		err = fmt.Errorf("trailing data %q", c.b[c.i:])
	}
	return v, err
}

type canonizer struct {
	b []byte
	i int
}

func (c *canonizer) eat(x byte) bool {
	if c.i < len(c.b) && c.b[c.i] == x {
		c.i++
		return true
	}
	return false
}

func (c *canonizer) atom() string {
	s := c.i
	for c.i < len(c.b) && !strings.ContainsRune(" ()\"{\r\n", rune(c.b[c.i])) {
		if c.b[c.i] == '[' { // BODY[...]: up to the closing bracket
			j := bytes.IndexByte(c.b[c.i:], ']')
			if j < 0 {
				break
			}
			c.i += j
		}
		c.i++
	}
	return string(c.b[s:c.i])
}

func (c *canonizer) value() (string, error) {
	if c.i >= len(c.b) {
		return "", errors.New("unexpected end")
	}
	switch c.b[c.i] {
	case '(':
		c.i++
		var parts []string
		for !c.eat(')') {
			if c.i >= len(c.b) {
				return "", errors.New("unterminated list")
			}
			if c.eat(' ') {
				continue
			}
			v, err := c.value()
			if err != nil {
				return "", err
			}
			parts = append(parts, v)
		}
		return "(" + strings.Join(parts, " ") + ")", nil
	case '"':
		c.i++
		var s []byte
		for c.i < len(c.b) && c.b[c.i] != '"' {
			if c.b[c.i] == '\\' {
				c.i++
			}
			if c.i < len(c.b) {
				s = append(s, c.b[c.i])
			}
			c.i++
		}
		if !c.eat('"') {
			return "", errors.New("unterminated string")
		}
		return strconv.Quote(string(s)), nil
	case '{', '~':
		j := bytes.Index(c.b[c.i:], []byte("}\r\n"))
		if j < 0 {
			return "", errors.New("bad literal")
		}
		start := c.i + 1
		if c.b[c.i] == '~' {
			start++
		}
		n, err := strconv.Atoi(string(c.b[start : c.i+j]))
		if err != nil || c.i+j+3+n > len(c.b) {
			return "", fmt.Errorf("bad literal size: %v", err)
		}
		c.i += j + 3
		s := c.b[c.i : c.i+n]
		c.i += n
		return strconv.Quote(string(s)), nil
	}
	a := c.atom()
	if a == "" {
		return "", fmt.Errorf("unexpected %q", c.b[c.i])
	}
	return a, nil
}

// GUID is the X-GUID, and the Maildir file name's base, StartOracle is
// given for message i of a corpus by the tests.
func GUID(i int) string { return fmt.Sprintf("%d.M%dP1.mailroomtest", 1000+i, i) }

// Seq finds the sequence number of the message with X-GUID guid.
func (o *Oracle) Seq(guid string) int {
	o.t.Helper()
	if o.seqs == nil {
		o.seqs = map[string]int{}
		for _, r := range o.Run("FETCH 1:* (X-GUID)") {
			var seq int
			var g string
			if _, err := fmt.Sscanf(string(r), "* %d FETCH (X-GUID %s", &seq, &g); err == nil {
				o.seqs[strings.TrimRight(g, ")\r\n")] = seq
			}
		}
	}
	return o.seqs[guid]
}

// CompareItem compares our answer to an item with Dovecot's. known holds,
// by message and item, answers where we differ from Dovecot on purpose:
// for those ours must be the one described and Dovecot's another, so each
// entry stays true.
func CompareItem(t *testing.T, known map[string]map[string]string, msg, item, dovecot, ours string) {
	t.Helper()
	if want, ok := known[msg][item]; ok {
		if ours != want {
			t.Errorf("%s %s (a known difference from Dovecot):\n ours %s\n want %s", msg, item, ours, want)
		}
		if dovecot == ours {
			t.Errorf("%s %s: Dovecot now agrees; drop the known difference", msg, item)
		}
		return
	}
	if dovecot != ours {
		t.Errorf("%s %s:\n dovecot %s\n ours    %s", msg, item, dovecot, ours)
	}
}
