package smtpd

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	b64pkg "encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailroom/internal/account"
	"mailroom/internal/account/accounttest"
	"mailroom/internal/config"
	"mailroom/internal/listen"
	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
	"mailroom/spool"
)

// Test accounts.
const (
	alicePass = "alice-secret"
	bobPass   = "bob-secret"
	host      = "mx.example.org"
)

// ioLimit bounds every read and write of a test client.
const ioLimit = 10 * time.Second

// env is a running server with its spool, tables and certificate.
type env struct {
	t       testing.TB
	cfg     *config.Config
	sp      *spool.Spool
	srv     *Server
	addrs   map[string]string // service → address
	roots   *x509.CertPool
	logs    *testutil.SyncBuffer
	served  chan error
	stopped bool
}

// testConfig writes the tables and returns a configuration for them.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	accounttest.CheapHashes(t)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Hostname = host
	cfg.Domains = []string{"example.org"}
	cfg.MailRoot = filepath.Join(dir, "mail")
	cfg.PasswdFile = filepath.Join(dir, "passwd")
	cfg.AliasesFile = filepath.Join(dir, "aliases")
	cfg.SpoolDir = filepath.Join(dir, "spool")
	cfg.RecipientDelimiter = "+"
	cfg.TLSCert = filepath.Join(dir, "cert.pem")
	cfg.TLSKey = filepath.Join(dir, "key.pem")
	cfg.Smtpd.MaxMessageSize = 10000
	cfg.Smtpd.MaxRecipients = 5
	cfg.Smtpd.MaxLineLength = 1000
	cfg.Smtpd.MaxErrors = 10
	cfg.Smtpd.AuthFailuresBeforeDelay = 2
	cfg.Smtpd.CommandTimeout = ioLimit
	cfg.Smtpd.DataTimeout = ioLimit
	if err := os.MkdirAll(cfg.MailRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ addr, pass string }{{"alice@example.org", alicePass}, {"bob@example.org", bobPass}} {
		hash, err := account.HashPassword(u.pass, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := account.AddUser(cfg.PasswdFile, account.User{Address: u.addr, Hash: hash, UID: -1, GID: -1}); err != nil {
			t.Fatal(err)
		}
	}
	aliases := "postmaster: alice\nsales@example.org: alice, bob\nali@example.org: alice\n"
	if err := os.WriteFile(cfg.AliasesFile, []byte(aliases), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tlsconf.WriteSelfSigned(cfg.TLSCert, cfg.TLSKey, []string{host, "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := spool.Setup(cfg.SpoolDir); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startServer runs a server for cfg on loopback, one listener per service
// (submissions only with a certificate).
func startServer(t testing.TB, cfg *config.Config) *env {
	t.Helper()
	e := &env{t: t, cfg: cfg, addrs: map[string]string{}, logs: &testutil.SyncBuffer{}, served: make(chan error, 1)}
	tables, err := LoadTables(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e.sp, err = spool.Open(cfg.SpoolDir); err != nil {
		t.Fatal(err)
	}
	var store *tlsconf.Store
	if cfg.TLSCert != "" {
		if store, err = tlsconf.Load(cfg.TLSCert, cfg.TLSKey); err != nil {
			t.Fatal(err)
		}
		pem, err := os.ReadFile(cfg.TLSCert)
		if err != nil {
			t.Fatal(err)
		}
		e.roots = x509.NewCertPool()
		e.roots.AppendCertsFromPEM(pem)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv = NewServer(cfg, e.sp, tables, ServerOptions{Logger: log, TLS: store, AuthDelay: testAuthDelay})
	var ls []listen.Named
	services := []string{ServiceSMTP, ServiceSubmission}
	if store != nil {
		services = append(services, ServiceSubmissions)
	}
	for _, name := range services {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		e.addrs[name] = l.Addr().String()
		ls = append(ls, listen.Named{Name: name, Listener: l})
	}
	go func() { e.served <- e.srv.Serve(ls) }()
	t.Cleanup(e.stop)
	return e
}

// stop shuts the server down and checks that it ends in time.
func (e *env) stop() {
	if e.stopped {
		return
	}
	e.stopped = true
	e.srv.Close()
	select {
	case err := <-e.served:
		if err != nil {
			e.t.Errorf("Serve: %v", err)
		}
	case <-time.After(ioLimit):
		e.t.Errorf("Serve did not return after Close")
	}
	if e.t.Failed() {
		e.t.Logf("server log:\n%s", e.logs.String())
	}
}

// client is a test SMTP client speaking raw lines.
type client struct {
	t    testing.TB
	e    *env
	conn net.Conn
	r    *bufio.Reader
}

// dial connects to service (TLS at once for submissions).
func (e *env) dial(service string) *client {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addrs[service], ioLimit)
	if err != nil {
		e.t.Fatal(err)
	}
	cl := &client{t: e.t, e: e, conn: c}
	if service == ServiceSubmissions {
		cl.startTLS()
	}
	cl.r = bufio.NewReader(cl.conn)
	e.t.Cleanup(func() { cl.conn.Close() })
	return cl
}

// startTLS does the client side of a TLS handshake on the connection.
func (c *client) startTLS() {
	c.t.Helper()
	tc := tls.Client(c.conn, &tls.Config{RootCAs: c.e.roots, ServerName: host})
	tc.SetDeadline(time.Now().Add(ioLimit))
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// send writes raw bytes.
func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(ioLimit))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("send %q: %v", s, err)
	}
}

// line reads one reply line without its CRLF; io.EOF when the server
// closed the connection.
func (c *client) line() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(ioLimit))
	l, err := c.r.ReadString('\n')
	if err != nil {
		if l != "" {
			return l, fmt.Errorf("partial line %q: %w", l, err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", err
		}
		return "", io.EOF // closed, reset: the server ended it
	}
	if !strings.HasSuffix(l, "\r\n") {
		return l, fmt.Errorf("reply line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n"), nil
}

// reply reads one whole (possibly multi-line) reply.
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for range 100 {
		l, err := c.line()
		if err != nil {
			c.t.Fatalf("reading reply after %q: %v", lines, err)
		}
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
	c.t.Fatalf("reply longer than 100 lines: %q", lines)
	return ""
}

// cmd sends one command line and returns its reply.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.reply()
}

// expectClosed checks that the server closed the connection.
func (c *client) expectClosed() {
	c.t.Helper()
	l, err := c.line()
	if err != io.EOF {
		c.t.Fatalf("expected the connection to close, got %q, %v", l, err)
	}
}

var queuedRE = regexp.MustCompile(`queued as ([0-9a-z]{20})`)

// queuedID extracts the queue id of a 250 reply to DATA.
func queuedID(t testing.TB, reply string) spool.ID {
	t.Helper()
	m := queuedRE.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("reply %q has no queue id", reply)
	}
	id, err := spool.ParseID(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// message reads a queued message: its envelope and data.
func (e *env) message(id spool.ID) (*spool.Message, []byte) {
	e.t.Helper()
	m, err := e.sp.Message(id)
	if err != nil {
		e.t.Fatalf("spool message %s: %v", id, err)
	}
	f, err := m.OpenData()
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		e.t.Fatal(err)
	}
	return m, data
}

// checkBody checks that data is a Received header for id followed by body,
// byte for byte, and returns the header.
func (e *env) checkBody(id spool.ID, data []byte, body string) string {
	e.t.Helper()
	hdr, rest, ok := splitReceived(data)
	if !ok {
		e.t.Fatalf("message %s does not start with a Received header: %q", id, data[:min(len(data), 200)])
	}
	if !strings.Contains(hdr, " id "+id.String()) {
		e.t.Errorf("Received header %q lacks the queue id %s", hdr, id)
	}
	if string(rest) != body {
		e.t.Errorf("message %s body differs:\n got %q\nwant %q", id, rest, body)
	}
	return hdr
}

// splitReceived splits the first header field (with its folded lines).
func splitReceived(data []byte) (string, []byte, bool) {
	if !bytes.HasPrefix(data, []byte("Received: ")) {
		return "", nil, false
	}
	i := 0
	for {
		j := bytes.Index(data[i:], []byte("\r\n"))
		if j < 0 {
			return "", nil, false
		}
		i += j + 2
		if i >= len(data) || (data[i] != '\t' && data[i] != ' ') {
			return string(data[:i]), data[i:], true
		}
	}
}

// queued lists the spool's queue.
func (e *env) queued() []spool.ID {
	e.t.Helper()
	ids, err := e.sp.List()
	if err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// authPlain is the base64 PLAIN response.
func authPlain(user, pass string) string {
	return b64("\x00" + user + "\x00" + pass)
}

func b64(s string) string {
	return base64Encode([]byte(s))
}

// quoteLines shows a transcript difference readably.
func quoteLines(s string) string { return strconv.Quote(s) }

func base64Encode(b []byte) string { return stdBase64.EncodeToString(b) }

var stdBase64 = b64pkg.StdEncoding

func readDirNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}

// testAuthDelay is the AuthDelay of test servers.
var testAuthDelay = 20 * time.Millisecond
