package listen

import (
	"errors"
	"fmt"
	"net"
)

// Want names one service a daemon offers: Name is the systemd
// FileDescriptorName ("smtp", "submission", "submissions", "pop3", "pop3s",
// "imap", "imaps") and Addrs the standalone addresses from the configuration
// or --listen.
type Want struct {
	Name  string
	Addrs []string
}

// Options says what a daemon offers and how it was started.
type Options struct {
	Wants []Want
	// Inetd is --inetd: the connection is on fd 0 (a socket, or a
	// stdin/stdout pipe pair).
	Inetd bool
	// Service is --service: with Inetd or systemd Accept=yes, which Want the
	// single connection is for.
	Service string
}

// Mode is how the sockets came to the process.
type Mode int

// The modes Open can choose.
const (
	Standalone    Mode = iota // bound by Open from Want.Addrs
	Systemd                   // listening sockets from systemd (Accept=no)
	SystemdAccept             // one connected socket from systemd (Accept=yes)
	Inetd                     // one connection on fd 0/1
)

func (m Mode) String() string {
	switch m {
	case Standalone:
		return "standalone"
	case Systemd:
		return "systemd"
	case SystemdAccept:
		return "systemd-accept"
	case Inetd:
		return "inetd"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Named is a listener and the service (Want.Name) it serves.
type Named struct {
	Name string
	net.Listener
}

// Set is what Open found or made.
type Set struct {
	Mode Mode
	// Listeners holds the listening sockets in Standalone and Systemd mode;
	// it is empty otherwise.
	Listeners []Named
	// Conn is the one connection in SystemdAccept and Inetd mode; nil
	// otherwise.
	Conn net.Conn
	// Service is the service Conn belongs to.
	Service string
}

// Close closes every listener and the connection; it returns their errors
// joined.
func (s *Set) Close() error {
	var errs []error
	for _, l := range s.Listeners {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s listener: %w", l.Name, err))
		}
	}
	if s.Conn != nil {
		if err := s.Conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s connection: %w", s.Service, err))
		}
	}
	return errors.Join(errs...)
}

// Open decides the mode (see the package documentation), in this order:
// systemd socket activation, inetd (opts.Inetd), standalone. It always unsets
// the LISTEN_* variables so children do not inherit them.
func Open(opts Options) (*Set, error) {
	act, err := takeActivation()
	if err != nil {
		return nil, err
	}
	if act.count > 0 {
		return openSystemd(act, opts)
	}
	if opts.Inetd {
		return openInetd(opts)
	}
	return openStandalone(opts.Wants)
}

// openStandalone binds every address of every Want.
func openStandalone(wants []Want) (*Set, error) {
	set := &Set{Mode: Standalone}
	for _, w := range wants {
		for _, addr := range w.Addrs {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				err = fmt.Errorf("listen for %s on %s: %w", w.Name, addr, err)
				return nil, errors.Join(err, set.Close())
			}
			set.Listeners = append(set.Listeners, Named{Name: w.Name, Listener: l})
		}
	}
	if len(set.Listeners) == 0 {
		return nil, errors.New("listen: no address to listen on")
	}
	return set, nil
}

// connService picks the service of a single connection: the one asked for,
// else the Want the passed name matches, else the only Want.
func connService(wants []Want, asked, passedName string) (string, error) {
	if asked != "" {
		if len(wants) > 0 && !hasWant(wants, asked) {
			return "", fmt.Errorf("listen: unknown service %q (have %s)", asked, wantNames(wants))
		}
		return asked, nil
	}
	if passedName != "" && hasWant(wants, passedName) {
		return passedName, nil
	}
	switch len(wants) {
	case 0:
		return "", errors.New("listen: no service for the connection")
	case 1:
		return wants[0].Name, nil
	}
	return "", fmt.Errorf("listen: one connection but several services (%s): say which with --service", wantNames(wants))
}

func hasWant(wants []Want, name string) bool {
	for _, w := range wants {
		if w.Name == name {
			return true
		}
	}
	return false
}

func wantNames(wants []Want) string {
	s := ""
	for i, w := range wants {
		if i > 0 {
			s += ", "
		}
		s += w.Name
	}
	return s
}
