package imapd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailroom/internal/account"
	"mailroom/internal/account/accounttest"
	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
	"mailroom/maildir"
)

// ioTimeout bounds every read or write a test client makes.
const ioTimeout = 10 * time.Second

const (
	testUser = "alice@example.org"
	testPass = "secret"
)

type testEnv struct {
	t        testing.TB
	mailRoot string
	passwd   string
	srv      *Server
	addr     string
	tlsAddr  string
	roots    *x509.CertPool
	logs     *testutil.SyncBuffer

	mu    sync.Mutex
	users *account.DB
}

// newTestEnv starts a server with TLS on two loopback listeners and one
// user (testUser). Plaintext logins on loopback are allowed unless
// configure says otherwise.
func newTestEnv(t testing.TB, configure func(*Server)) *testEnv {
	t.Helper()
	accounttest.CheapHashes(t)
	dir := t.TempDir()
	e := &testEnv{t: t, mailRoot: filepath.Join(dir, "mail"), passwd: filepath.Join(dir, "passwd"), logs: &testutil.SyncBuffer{}}
	if err := os.Mkdir(e.mailRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := tlsconf.WriteSelfSigned(cert, key, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	store, err := tlsconf.Load(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	e.roots = certPool(t, cert)
	e.srv = &Server{
		Users:                   e.currentUsers,
		TLS:                     store.Config,
		PlaintextAuthOnLoopback: true,
		AuthDelay:               -1,
		Logger:                  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(e.srv)
	}
	e.addr = e.serve(false)
	e.tlsAddr = e.serve(true)
	e.addUser(testUser, testPass)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", e.logs.String())
		}
	})
	return e
}

func (e *testEnv) serve(implicitTLS bool) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = e.srv.Serve(l, implicitTLS) }()
	return l.Addr().String()
}

func (e *testEnv) currentUsers() Users {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.users == nil {
		return nil
	}
	return e.users
}

func certPool(t testing.TB, certFile string) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM in the test certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool
}

// addUser creates an account and its Maildir; it returns the Maildir.
func (e *testEnv) addUser(address, password string) string {
	e.t.Helper()
	hash, err := account.HashPassword(password, "")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := account.AddUser(e.passwd, account.User{Address: address, Hash: hash, UID: -1, GID: -1}); err != nil {
		e.t.Fatal(err)
	}
	db, err := account.Load(e.passwd, e.mailRoot)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.users = db
	e.mu.Unlock()
	root, _ := db.Mailbox(address)
	if err := maildir.Create(root); err != nil {
		e.t.Fatal(err)
	}
	return root
}

// root returns testUser's Maildir.
func (e *testEnv) root() string {
	r, _ := e.currentUsers().Mailbox(testUser)
	return r
}

// deliver puts msg into root's folder (""= INBOX) through the engine.
func deliver(t testing.TB, root, folder, msg string) string {
	t.Helper()
	var d maildir.Deliverer
	res, err := d.Deliver(strings.NewReader(msg), []maildir.Target{{Root: root, Folder: folder}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	return res[0].Path
}

// client is a test's raw IMAP connection.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (e *testEnv) dial() *client {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, ioTimeout)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &client{t: e.t, conn: c, r: bufio.NewReader(c)}
}

func (e *testEnv) dialTLS() *client {
	e.t.Helper()
	d := &net.Dialer{Timeout: ioTimeout}
	c, err := tls.DialWithDialer(d, "tcp", e.tlsAddr, &tls.Config{RootCAs: e.roots, ServerName: "localhost"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &client{t: e.t, conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// line reads one response line, without CRLF. A literal's data is not
// split out: callers reading literals use readN.
func (c *client) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %q, %v", l, err)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("response %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends "tag line" and returns every response line up to and
// including the tagged one, literals inline (with their CRLFs as "\r\n").
func (c *client) cmd(tag, line string) []string {
	c.t.Helper()
	c.send(tag + " " + line + "\r\n")
	return c.until(tag)
}

// until reads responses up to the one tagged tag.
func (c *client) until(tag string) []string {
	c.t.Helper()
	var out []string
	for i := 0; i < 100000; i++ {
		l := c.readResponse()
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			return out
		}
	}
	c.t.Fatal("too many responses")
	return nil
}

// readResponse reads one response, following literals {n} / ~{n}.
func (c *client) readResponse() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		b.WriteString(l)
		n, ok := literalSize(l)
		if !ok {
			return b.String()
		}
		buf := make([]byte, n)
		_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
		if _, err := io.ReadFull(c.r, buf); err != nil {
			c.t.Fatalf("literal: %v", err)
		}
		b.WriteString("\r\n")
		b.Write(buf)
	}
}

// literalSize reports a line that ends in a literal announcement.
func literalSize(l string) (int, bool) {
	if !strings.HasSuffix(l, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	n := 0
	for _, r := range strings.TrimSuffix(l[i+1:len(l)-1], "+") {
		if r < '0' || r > '9' {
			return 0, false
		}
		n = n*10 + int(r-'0')
	}
	return n, true
}

// expectEOF checks that the server closed the connection.
func (c *client) expectEOF() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	for i := 0; i < 1000; i++ {
		if _, err := c.r.ReadString('\n'); err != nil {
			return
		}
	}
	c.t.Fatal("connection not closed")
}

// login opens a plain connection and logs in.
func (e *testEnv) login() *client {
	e.t.Helper()
	c := e.dial()
	c.line()
	r := c.cmd("L", "LOGIN "+testUser+" "+testPass)
	must(e.t, r[len(r)-1], "L OK")
	return c
}

func must(t testing.TB, got, prefix string) {
	t.Helper()
	if !strings.HasPrefix(got, prefix) {
		t.Fatalf("response %q, want %q...", got, prefix)
	}
}

// last returns the tagged response of a cmd result.
func last(r []string) string { return r[len(r)-1] }

const fixture1 = "From: Alice <alice@example.org>\nTo: Bob <bob@example.net>\nSubject: hello world\nDate: Mon, 2 Jan 2006 15:04:05 -0700\nMessage-ID: <1@example.org>\n\nfirst body line\nsecond line\n"

const fixture2 = "From: carol@example.com\nTo: alice@example.org\nSubject: multipart\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\npreamble\n--XX\nContent-Type: text/plain\n\npart one\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\naGVsbG8gYmluYXJ5\n--XX--\n"
