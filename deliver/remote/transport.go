package remote

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"mailroom/deliver"
	"mailroom/internal/config"
)

// TLSLevel is tls_security_level, named after Postfix's
// smtp_tls_security_level.
type TLSLevel string

const (
	TLSNone    TLSLevel = "none"    // never STARTTLS
	TLSMay     TLSLevel = "may"     // STARTTLS when offered; plaintext if it fails
	TLSEncrypt TLSLevel = "encrypt" // STARTTLS required, any certificate
	TLSVerify  TLSLevel = "verify"  // STARTTLS required, certificate valid for the host name
)

// ParseTLSLevel checks a tls_security_level value ("" is may).
func ParseTLSLevel(s string) (TLSLevel, error) {
	switch l := TLSLevel(strings.ToLower(strings.TrimSpace(s))); l {
	case "":
		return TLSMay, nil
	case TLSNone, TLSMay, TLSEncrypt, TLSVerify:
		return l, nil
	}
	return "", fmt.Errorf("tls_security_level %q: want none, may, encrypt or verify", s)
}

// Timeouts bound each step of a session. Zero fields take the defaults.
type Timeouts struct {
	Connect   time.Duration // TCP connect: 30s (Postfix smtp_connect_timeout)
	Greeting  time.Duration // 220 greeting and EHLO: 5m (RFC 5321 §4.5.3.2.1)
	Command   time.Duration // MAIL, RCPT, DATA, STARTTLS, AUTH: 5m (§4.5.3.2.2-4)
	DataBlock time.Duration // each write of the message: 3m (§4.5.3.2.5)
	DataDone  time.Duration // the reply to the final dot: 10m (§4.5.3.2.6)
	Reset     time.Duration // RSET before reusing a connection: 20s (Postfix smtp_rset_timeout)
}

func (t *Timeouts) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Connect, 30*time.Second)
	def(&t.Greeting, 5*time.Minute)
	def(&t.Command, 5*time.Minute)
	def(&t.DataBlock, 3*time.Minute)
	def(&t.DataDone, 10*time.Minute)
	def(&t.Reset, 20*time.Second)
}

// Options configure a Transport.
type Options struct {
	Hostname string // EHLO name (hostname)

	// RelayHost, when set, receives all remote mail not matched by Table
	// (relay_host). RelayUser and RelayPassword, when RelayUser is set,
	// authenticate to it (AUTH PLAIN or LOGIN, over TLS only).
	RelayHost     *Nexthop
	RelayUser     string
	RelayPassword string
	Table         *Table // transport_file; nil: none

	TLSLevel TLSLevel       // "" is may
	RootCAs  *x509.CertPool // for verification; nil: the system's roots

	// DestinationConcurrency bounds the sessions open at once to one
	// destination (a recipient domain, the relay host, a transport
	// table next hop); 0 means 20.
	DestinationConcurrency int
	// IdleTimeout closes a cached connection unused this long (5s);
	// MaxReuse is how many messages one connection carries (100).
	IdleTimeout time.Duration
	MaxReuse    int

	Port     int      // the port of MX hosts and of next hops without one; 0: 25
	Resolver Resolver // nil: net.DefaultResolver
	Timeouts Timeouts
	Logger   *slog.Logger // connection-level events; nil: discard
}

// Transport is the SMTP client side of the queue daemon: it implements
// deliver.RemoteTransport and is safe for concurrent use.
type Transport struct {
	opts  Options
	res   Resolver
	pool  *pool
	limit *limiter
	// dialTCP connects; tests map made-up addresses to loopback servers.
	dialTCP func(ctx context.Context, addr string) (net.Conn, error)
}

var _ deliver.RemoteTransport = (*Transport)(nil)

// New returns a transport. Close it to end the cached connections.
func New(opts Options) (*Transport, error) {
	if opts.Hostname == "" {
		return nil, fmt.Errorf("remote: no hostname for EHLO")
	}
	if opts.TLSLevel == "" {
		opts.TLSLevel = TLSMay
	}
	if _, err := ParseTLSLevel(string(opts.TLSLevel)); err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	if opts.RelayUser != "" && opts.RelayHost == nil {
		return nil, fmt.Errorf("remote: relay_user is set but relay_host is not")
	}
	if opts.RelayUser != "" && opts.TLSLevel == TLSNone {
		return nil, fmt.Errorf("remote: relay_user needs TLS, but tls_security_level is none")
	}
	if opts.DestinationConcurrency <= 0 {
		opts.DestinationConcurrency = 20
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Second
	}
	if opts.MaxReuse <= 0 {
		opts.MaxReuse = 100
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Timeouts.fill()
	t := &Transport{opts: opts, res: opts.Resolver}
	if t.res == nil {
		t.res = net.DefaultResolver
	}
	var d net.Dialer
	t.dialTCP = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	t.pool = newPool(opts.IdleTimeout, opts.MaxReuse)
	t.limit = newLimiter(opts.DestinationConcurrency)
	return t, nil
}

// NewFromConfig builds the transport the [deliver] section describes:
// relay_host, relay_user with the first line of relay_password_file,
// transport_file, tls_security_level, destination_concurrency. Call it
// before dropping privileges: the password file may be root's alone.
func NewFromConfig(cfg *config.Config, logger *slog.Logger) (*Transport, error) {
	d := cfg.Deliver
	opts := Options{
		Hostname:               cfg.Hostname,
		RelayUser:              d.RelayUser,
		DestinationConcurrency: int(d.DestinationConcurrency),
		Logger:                 logger,
	}
	level, err := ParseTLSLevel(d.TLSSecurityLevel)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	opts.TLSLevel = level
	if d.RelayHost != "" {
		hop, err := ParseNexthop(d.RelayHost)
		if err != nil {
			return nil, fmt.Errorf("remote: relay_host: %w", err)
		}
		opts.RelayHost = &hop
	}
	if d.RelayUser != "" {
		pw, err := readPassword(d.RelayPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("remote: relay_password_file: %w", err)
		}
		opts.RelayPassword = pw
	}
	if d.TransportFile != "" {
		tab, err := LoadTable(d.TransportFile)
		if err != nil {
			return nil, fmt.Errorf("remote: %w", err)
		}
		opts.Table = tab
	}
	return New(opts)
}

// readPassword returns the first line of path.
func readPassword(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("relay_user is set but relay_password_file is not")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", err
		}
		return "", fmt.Errorf("%s is empty", path)
	}
	pw := strings.TrimRight(sc.Text(), "\r")
	if pw == "" {
		return "", fmt.Errorf("%s: the first line is empty", path)
	}
	return pw, nil
}

// Close ends every cached connection (QUIT). Sends in flight finish.
func (t *Transport) Close() error {
	t.pool.closeAll()
	return nil
}

// destination is where a group of recipients goes.
type destination struct {
	key        string  // for the concurrency limit and logs
	hop        Nexthop // what to resolve
	configured bool    // from relay_host or transport_file
	auth       bool    // the relay host with relay_user
}

// route picks the destination of a recipient domain: the transport table
// first, then relay_host, then the domain's own MX (as Postfix's
// transport_maps override relayhost).
func (t *Transport) route(domain string) (destination, error) {
	if hop, ok := t.opts.Table.Lookup(domain); ok {
		return destination{key: "transport:" + hop.String(), hop: hop, configured: true,
			auth: t.opts.RelayUser != "" && t.opts.RelayHost != nil && hop == *t.opts.RelayHost}, nil
	}
	if t.opts.RelayHost != nil {
		return destination{key: "relay:" + t.opts.RelayHost.String(), hop: *t.opts.RelayHost, configured: true,
			auth: t.opts.RelayUser != ""}, nil
	}
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		// An address literal (RFC 5321 §4.1.3): that host, no MX.
		lit := strings.TrimPrefix(domain[1:len(domain)-1], "IPv6:")
		if ip := net.ParseIP(lit); ip != nil {
			return destination{key: "[" + ip.String() + "]", hop: Nexthop{Host: ip.String(), NoMX: true}}, nil
		}
		return destination{}, fmt.Errorf("bad address literal %s", domain)
	}
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if !validHost(d) || net.ParseIP(d) != nil {
		return destination{}, fmt.Errorf("bad domain %q", domain)
	}
	return destination{key: d, hop: Nexthop{Host: d}}, nil
}
