package remote

// A tiny scripted SMTP server on 127.0.0.1, a fake resolver, and the
// helpers the transport tests share.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailroom/deliver"
	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
	"mailroom/spool"
)

// fakeMsg is one transaction the fake server completed.
type fakeMsg struct {
	conn     int
	mailLine string
	rcpts    []string // accepted RCPT lines
	data     string   // dot-unstuffed, CRLF as received
	tls      bool
	auth     string // "user:password" from AUTH PLAIN, "" if none
}

// fakeGroup is a pipelined group read before any reply to it.
type fakeGroup struct {
	cmds    []string
	oneRead bool // all of it was buffered when MAIL was read: one segment
}

// fakeServer answers as its fields script it. Set them before the first
// connection.
type fakeServer struct {
	t        *testing.T
	ln       net.Listener
	addr     string
	ext      []string    // EHLO keywords (STARTTLS added when tlsCfg is set)
	tlsCfg   *tls.Config // nil: no STARTTLS
	breakTLS bool        // answer STARTTLS with 220, then hang up
	greeting string
	rcpt     func(addr string) string // RCPT reply; nil: 250
	dataResp func() string            // reply to the final dot; nil: 250
	hold     chan struct{}            // when set, the reply to the final dot waits for it
	entered  chan struct{}            // when set, told when a final dot arrived
	// holdGroup: at MAIL, read every command up to DATA before the
	// first reply, as a pipelining client's group (RFC 2920 §3.1) must
	// allow; a client waiting for the MAIL reply would time out.
	holdGroup  bool
	dataAlways bool // answer DATA with 354 even without a recipient

	mu        sync.Mutex
	conns     int
	open      int
	maxOpen   int
	inData    int
	maxInData int
	msgs      []fakeMsg
	cmds      []string // every command line, "<conn>: line"
	groups    []fakeGroup
	early     int      // commands that were already buffered when read, outside held groups
	ended     chan int // connection numbers, as they end
	wg        sync.WaitGroup
	live      map[net.Conn]bool
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, addr: ln.Addr().String(), ext: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 100000"},
		greeting: "220 fake.test ESMTP", ended: make(chan int, 100), live: map[net.Conn]bool{}}
	t.Cleanup(s.stop)
	return s
}

func (s *fakeServer) start() *fakeServer {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			n := s.conns
			s.open++
			s.maxOpen = max(s.maxOpen, s.open)
			s.live[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, n)
				c.Close()
				s.mu.Lock()
				s.open--
				delete(s.live, c)
				s.mu.Unlock()
				s.ended <- n
			}()
		}
	}()
	return s
}

func (s *fakeServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.live {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) messages() []fakeMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fakeMsg(nil), s.msgs...)
}

func (s *fakeServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *fakeServer) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// serve runs one session.
func (s *fakeServer) serve(c net.Conn, n int) {
	var conn net.Conn = c
	br := bufio.NewReader(conn)
	write := func(format string, args ...any) {
		fmt.Fprintf(conn, format+"\r\n", args...)
	}
	write("%s", s.greeting)
	var cur fakeMsg
	isTLS := false
	auth := ""
	var queued []string // commands of a held group not yet answered
	for {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		var line string
		if len(queued) > 0 {
			line, queued = queued[0], queued[1:]
		} else {
			if br.Buffered() > 0 {
				s.mu.Lock()
				s.early++
				s.mu.Unlock()
			}
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(l, "\r\n")
			if s.holdGroup && strings.HasPrefix(strings.ToUpper(line), "MAIL ") {
				group, ok := s.readGroup(br)
				if !ok {
					return
				}
				queued = group.cmds
				group.cmds = append([]string{line}, group.cmds...)
				s.mu.Lock()
				s.groups = append(s.groups, group)
				s.mu.Unlock()
			}
		}
		s.mu.Lock()
		s.cmds = append(s.cmds, fmt.Sprintf("%d: %s", n, line))
		s.mu.Unlock()
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			lines := append([]string{"fake.test hello " + arg}, s.ext...)
			if s.tlsCfg != nil && !isTLS {
				lines = append(lines, "STARTTLS")
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				write("250%s%s", sep, l)
			}
		case "STARTTLS":
			if s.tlsCfg == nil || isTLS {
				write("502 5.5.1 no")
				continue
			}
			write("220 2.0.0 go ahead")
			if s.breakTLS {
				conn.Write([]byte("this is not TLS\r\n"))
				return
			}
			tc := tls.Server(c, s.tlsCfg)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, br, isTLS = tc, bufio.NewReader(tc), true
			cur = fakeMsg{}
		case "AUTH":
			mech, ir, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				write("504 5.5.4 PLAIN only")
				continue
			}
			b, err := base64.StdEncoding.DecodeString(ir)
			parts := strings.Split(string(b), "\x00")
			if err != nil || len(parts) != 3 {
				write("501 5.5.2 bad")
				continue
			}
			auth = parts[1] + ":" + parts[2]
			write("235 2.7.0 ok")
		case "MAIL":
			cur = fakeMsg{conn: n, mailLine: line, tls: isTLS, auth: auth}
			write("250 2.1.0 ok")
		case "RCPT":
			reply := "250 2.1.5 ok"
			if s.rcpt != nil {
				addr := strings.TrimPrefix(strings.Fields(arg)[0], "TO:")
				reply = s.rcpt(strings.Trim(addr, "<>"))
			}
			write("%s", reply)
			if strings.HasPrefix(reply, "421") {
				return
			}
			if reply[0] == '2' {
				cur.rcpts = append(cur.rcpts, line)
			}
		case "DATA":
			if len(cur.rcpts) == 0 && !s.dataAlways {
				write("554 5.5.1 no valid recipients")
				continue
			}
			write("354 go on")
			var data bytes.Buffer
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.data = data.String()
			reply := "250 2.0.0 Ok: queued as FAKE"
			if s.dataResp != nil {
				reply = s.dataResp()
			}
			s.mu.Lock()
			s.inData++
			s.maxInData = max(s.maxInData, s.inData)
			s.mu.Unlock()
			if s.entered != nil {
				s.entered <- struct{}{}
			}
			if s.hold != nil {
				<-s.hold
			}
			s.mu.Lock()
			s.inData--
			if reply[0] == '2' {
				s.msgs = append(s.msgs, cur)
			}
			s.mu.Unlock()
			write("%s", reply)
			if strings.HasPrefix(reply, "421") {
				return
			}
			cur = fakeMsg{}
		case "RSET":
			cur = fakeMsg{}
			write("250 2.0.0 ok")
		case "NOOP":
			write("250 2.0.0 ok")
		case "QUIT":
			write("221 2.0.0 bye")
			return
		default:
			write("500 5.5.2 what")
		}
	}
}

// readGroup reads the commands after MAIL up to DATA, without replying.
func (s *fakeServer) readGroup(br *bufio.Reader) (fakeGroup, bool) {
	g := fakeGroup{oneRead: true}
	for range 1000 {
		if br.Buffered() == 0 {
			g.oneRead = false
		}
		l, err := br.ReadString('\n')
		if err != nil {
			return g, false
		}
		l = strings.TrimRight(l, "\r\n")
		g.cmds = append(g.cmds, l)
		if strings.EqualFold(l, "DATA") {
			return g, true
		}
	}
	return g, false
}

// fakeResolver answers from maps; a missing name is NXDOMAIN.
type fakeResolver struct {
	mx    map[string][]*net.MX
	ip    map[string][]net.IPAddr
	errMX map[string]error
	mu    sync.Mutex
	asked []string
}

func (r *fakeResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	r.mu.Lock()
	r.asked = append(r.asked, "MX "+name)
	r.mu.Unlock()
	if err := r.errMX[name]; err != nil {
		return nil, err
	}
	if mx, ok := r.mx[name]; ok {
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (r *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	r.asked = append(r.asked, "IP "+host)
	r.mu.Unlock()
	if ips, ok := r.ip[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func ips(s ...string) []net.IPAddr {
	var out []net.IPAddr
	for _, x := range s {
		out = append(out, net.IPAddr{IP: net.ParseIP(x)})
	}
	return out
}

// harness is a transport whose dialer maps made-up addresses (192.0.2.x,
// 2001:db8::x, port 25) to fake servers on loopback.
type harness struct {
	tr     *Transport
	res    *fakeResolver
	logs   *testutil.SyncBuffer
	mu     sync.Mutex
	routes map[string]string
	dialed []string
}

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	h := &harness{res: &fakeResolver{mx: map[string][]*net.MX{}, ip: map[string][]net.IPAddr{}, errMX: map[string]error{}},
		logs: &testutil.SyncBuffer{}, routes: map[string]string{}}
	if opts.Hostname == "" {
		opts.Hostname = "client.test"
	}
	if opts.Resolver == nil {
		opts.Resolver = h.res
	}
	opts.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Timeouts = Timeouts{Connect: 5 * time.Second, Greeting: 10 * time.Second, Command: 10 * time.Second,
		DataBlock: 10 * time.Second, DataDone: 10 * time.Second, Reset: 5 * time.Second}
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	tr.dialTCP = func(ctx context.Context, addr string) (net.Conn, error) {
		h.mu.Lock()
		h.dialed = append(h.dialed, addr)
		real, ok := h.routes[addr]
		h.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("dial %s: connection refused (no fake server)", addr)
		}
		return d.DialContext(ctx, "tcp", real)
	}
	h.tr = tr
	t.Cleanup(func() { tr.Close() })
	return h
}

// route makes addr ("192.0.2.1:25") reach s.
func (h *harness) route(addr string, s *fakeServer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routes[addr] = s.addr
}

func (h *harness) dials() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.dialed...)
}

const testBody = "From: a@sender.test\r\nTo: b@example.net\r\nSubject: test\r\n\r\nHello.\r\n.leading dot\r\n"

// message builds a RemoteMessage from sender to rcpts with body.
func message(sender, body string, rcpts ...string) *deliver.RemoteMessage {
	env := &spool.Envelope{Sender: sender}
	m := &deliver.RemoteMessage{ID: "TESTID", Envelope: env, Data: strings.NewReader(body), Size: int64(len(body))}
	for _, r := range rcpts {
		m.Rcpts = append(m.Rcpts, spool.Recipient{Addr: r})
	}
	return m
}

// testCert writes a self-signed certificate for hosts and returns a server
// config and a pool trusting it.
func testCert(t *testing.T, hosts ...string) (*tls.Config, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := tlsconf.WriteSelfSigned(certFile, keyFile, hosts); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in", certFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, pool
}

func wantResult(t *testing.T, got deliver.RemoteResult, outcome deliver.RemoteOutcome, status string) {
	t.Helper()
	if got.Outcome != outcome || got.Status != status {
		t.Errorf("result %+v, want outcome %d status %s", got, outcome, status)
	}
}
