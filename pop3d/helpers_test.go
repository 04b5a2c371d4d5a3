package pop3d

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

// testEnv is a running server over a temporary mail root.
type testEnv struct {
	t        testing.TB
	mailRoot string
	passwd   string
	srv      *Server
	addr     string // plain (STLS) listener
	tlsAddr  string // implicit TLS listener
	roots    *x509.CertPool
	logs     *testutil.SyncBuffer

	mu    sync.Mutex
	users *account.DB
}

// newTestEnv starts a server with TLS on two loopback listeners. configure
// may change the Server before it starts. Password logins without TLS are
// allowed on loopback unless configure says otherwise.
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
		Hostname:                "pop.test",
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

// deliver puts msg into root's new/ through the engine (names carry S=
// and W=) and returns the file's path.
func deliver(t testing.TB, root, msg string) string {
	t.Helper()
	var d maildir.Deliverer
	res, err := d.Deliver(strings.NewReader(msg), []maildir.Target{{Root: root}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	return res[0].Path
}

// listMaildir returns "new/<name>" and "cur/<name>" entries of root.
func listMaildir(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range entries {
			out = append(out, d+"/"+de.Name())
		}
	}
	return out
}

// client is a test's POP3 connection.
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

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// expect reads exactly len(want) bytes and compares them.
func (c *client) expect(want string) {
	c.t.Helper()
	got, err := c.read(len(want))
	if err != nil || got != want {
		c.t.Fatalf("read %q (err %v), want %q", got, err, want)
	}
}

func (c *client) read(n int) (string, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, n)
	k, err := io.ReadFull(c.r, buf)
	return string(buf[:k]), err
}

// line reads one reply line, without CRLF.
func (c *client) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %q, %v", l, err)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("reply %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends a command line and returns the first reply line.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.line()
}

// multi reads a multi-line body up to its "." line, un-stuffed, as raw
// bytes with CRLFs.
func (c *client) multi() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		if l == "." {
			return b.String()
		}
		b.WriteString(strings.TrimPrefix(l, "."))
		b.WriteString("\r\n")
	}
}

// expectEOF checks that the server closed the connection.
func (c *client) expectEOF() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	b, err := c.r.ReadByte()
	if err == nil {
		c.t.Fatalf("read %q, want the connection closed", b)
	}
}

// login opens a plain connection and logs in with USER/PASS.
func (e *testEnv) login(address, password string) *client {
	e.t.Helper()
	c := e.dial()
	c.line()
	if r := c.cmd("USER " + address); r != "+OK" {
		e.t.Fatalf("USER: %s", r)
	}
	if r := c.cmd("PASS " + password); !strings.HasPrefix(r, "+OK") {
		e.t.Fatalf("PASS: %s", r)
	}
	return c
}

func must(t testing.TB, reply, prefix string) {
	t.Helper()
	if !strings.HasPrefix(reply, prefix) {
		t.Fatalf("reply %q, want %q...", reply, prefix)
	}
}

// waitABit yields between polls of a condition owned by another goroutine
// the test cannot synchronise with (the server noticing a closed socket).
func waitABit() { time.Sleep(10 * time.Millisecond) }
