package daemon

import (
	"context"
	"log/slog"
	"net"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/tlsconf"
)

// DefaultShutdownTimeout bounds how long a stop waits for sessions in
// flight when the Spec does not say.
const DefaultShutdownTimeout = 30 * time.Second

// Server is a program's protocol engine as the daemon drives it. See the
// package documentation for the contract.
type Server interface {
	// ServeConn serves one accepted connection of service and closes it.
	ServeConn(c net.Conn, service string)
	// Reload makes cfg and store (nil: no certificate) the settings of
	// new sessions, or changes nothing and says why.
	Reload(cfg *config.Config, store *tlsconf.Store) error
	// Shutdown lets sessions in flight finish until ctx ends, then closes
	// what is left.
	Shutdown(ctx context.Context) error
}

// Service is one kind of listener a program offers.
type Service struct {
	// Name is systemd's FileDescriptorName=, the NAME of --listen
	// NAME=ADDR and the value of --service.
	Name string
	// ImplicitTLS: the TLS handshake comes first (RFC 8314 §3.3), so the
	// service cannot run without a certificate.
	ImplicitTLS bool
	// Addrs points at the service's listen addresses in a configuration.
	Addrs func(*config.Config) *[]string
	// Reject is the line (CRLF added) a client over the connection limits
	// is told before the connection is closed; nil closes it silently, as
	// an implicit-TLS client would take any plaintext for a broken
	// handshake.
	Reject func(cfg *config.Config) string
}

// Spec is what one program plugs into the daemon.
type Spec struct {
	Name  string // program name: log tag, error prefix
	Usage string // one line for --help
	// Services are the listeners the program offers; the first is the one
	// a plain --listen ADDR and an unnamed single connection belong to.
	Services []Service
	// SingleService is the service of a single connection (inetd,
	// systemd Accept=yes) when --service does not name one; "" leaves it
	// to the name systemd passes, and refuses to guess among several.
	SingleService string
	// ListenPerService: a --listen NAME=ADDR replaces only that service's
	// configured addresses (smtpd). Otherwise any --listen replaces them
	// all, and a service no flag names is not served (pop3d, imapd).
	ListenPerService bool
	// Limits are max_connections and max_connections_per_client, counted
	// over every listener together (0: unlimited).
	Limits func(*config.Config) (total, perClient int64)
	// Fixed are the program's keys read only at start, beyond the listen
	// addresses of Services and CommonFixed.
	Fixed []Fixed
	// Check is --check-config beyond config.Check and the certificate
	// (tables, spool); nil checks nothing more.
	Check func(*config.Config) error
	// Start builds the server from the first configuration. It runs after
	// the sockets are open and before privileges are dropped, so it may
	// read files only root can read.
	Start func(cfg *config.Config, store *tlsconf.Store, log *slog.Logger) (Server, error)
	// DropPrivileges makes a program started as root continue as its
	// user, and refuses to go on as root.
	DropPrivileges func(*config.Config) error
	// ShutdownTimeout bounds a stop; 0 is DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
}

// service returns the named service, or nil.
func (s *Spec) service(name string) *Service {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}

// serviceNames is "a, b or c", for messages.
func (s *Spec) serviceNames() string {
	out := ""
	for i, sv := range s.Services {
		switch {
		case i == 0:
		case i == len(s.Services)-1:
			out += " or "
		default:
			out += ", "
		}
		out += sv.Name
	}
	return out
}
