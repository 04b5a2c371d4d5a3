package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenFDsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFDsStart = 3

// maxListenFDs bounds LISTEN_FDS so that a corrupt value cannot make Open
// take over (and close) descriptors the process holds for other reasons.
const maxListenFDs = 1024

// The variables of sd_listen_fds(3).
const (
	envListenPID     = "LISTEN_PID"
	envListenFDs     = "LISTEN_FDS"
	envListenFDNames = "LISTEN_FDNAMES"
)

// activation is what the LISTEN_* variables said: count descriptors from
// fd 3 on, and their names (nil when LISTEN_FDNAMES was absent).
type activation struct {
	count int
	names []string
}

// takeActivation reads and then unsets the LISTEN_* variables. They are
// unset even when they were meant for another process (LISTEN_PID differs)
// or malformed, as sd_listen_fds(3) does with unset_environment, so no child
// ever sees them.
func takeActivation() (activation, error) {
	pid, fds, names := os.Getenv(envListenPID), os.Getenv(envListenFDs), os.Getenv(envListenFDNames)
	var errs []error
	for _, k := range []string{envListenPID, envListenFDs, envListenFDNames} {
		if err := os.Unsetenv(k); err != nil {
			errs = append(errs, fmt.Errorf("unset %s: %w", k, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return activation{}, err
	}
	return parseActivation(pid, fds, names, os.Getpid())
}

// parseActivation interprets the LISTEN_* values for the process ourPID.
// Without LISTEN_PID, or with another process's, nothing was passed.
func parseActivation(pidVal, fdsVal, namesVal string, ourPID int) (activation, error) {
	if pidVal == "" {
		return activation{}, nil
	}
	pid, err := strconv.Atoi(pidVal)
	if err != nil || pid <= 0 {
		return activation{}, fmt.Errorf("systemd activation: bad %s %q", envListenPID, pidVal)
	}
	if pid != ourPID {
		// Meant for another process (we were started by the one systemd
		// started, and it did not unset them): not ours.
		return activation{}, nil
	}
	if fdsVal == "" {
		return activation{}, nil
	}
	n, err := strconv.Atoi(fdsVal)
	if err != nil || n < 0 || n > maxListenFDs {
		return activation{}, fmt.Errorf("systemd activation: bad %s %q", envListenFDs, fdsVal)
	}
	act := activation{count: n}
	if namesVal != "" && n > 0 {
		act.names = strings.Split(namesVal, ":")
		if len(act.names) != n {
			return activation{}, fmt.Errorf("systemd activation: %s has %d names for %d descriptors",
				envListenFDNames, len(act.names), n)
		}
	}
	return act, nil
}

// name returns the name of the i-th passed descriptor, "" when unnamed.
func (a activation) name(i int) string {
	if a.names == nil {
		return ""
	}
	return a.names[i]
}

// passedFD is one inherited descriptor, classified.
type passedFD struct {
	fd        int
	name      string
	listening bool // SO_ACCEPTCONN: a listening socket, not a connection
}

// openSystemd turns the passed descriptors into listeners (Accept=no) or
// the one connection (Accept=yes).
func openSystemd(act activation, opts Options) (*Set, error) {
	// FD_CLOEXEC first of all, so that no path below leaks them to a child.
	for i := 0; i < act.count; i++ {
		syscall.CloseOnExec(listenFDsStart + i)
	}
	files := make([]*os.File, act.count)
	for i := range files {
		files[i] = os.NewFile(uintptr(listenFDsStart+i), fdLabel(listenFDsStart+i, act.name(i)))
	}
	// net.FileListener and net.FileConn duplicate the descriptor, so the
	// originals are closed whatever happens.
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	passed := make([]passedFD, act.count)
	for i := range passed {
		p, err := classify(listenFDsStart+i, act.name(i))
		if err != nil {
			return nil, err
		}
		passed[i] = p
	}
	if len(passed) == 1 && !passed[0].listening {
		return systemdConn(files[0], passed[0], opts)
	}
	return systemdListeners(files, passed, opts.Wants)
}

// classify checks that fd is a stream socket and whether it is listening.
func classify(fd int, name string) (passedFD, error) {
	p := passedFD{fd: fd, name: name}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return p, fmt.Errorf("systemd activation: %s is not a socket: %w", fdLabel(fd, name), err)
	}
	if typ != unix.SOCK_STREAM {
		return p, fmt.Errorf("systemd activation: %s is not a stream socket (type %d)", fdLabel(fd, name), typ)
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return p, fmt.Errorf("systemd activation: %s: SO_ACCEPTCONN: %w", fdLabel(fd, name), err)
	}
	p.listening = acc != 0
	return p, nil
}

// systemdConn serves Accept=yes: one connected socket, usually named
// "connection".
func systemdConn(f *os.File, p passedFD, opts Options) (*Set, error) {
	service, err := connService(opts.Wants, opts.Service, p.name)
	if err != nil {
		return nil, err
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("systemd activation: %s: %w", fdLabel(p.fd, p.name), err)
	}
	return &Set{Mode: SystemdAccept, Conn: c, Service: service}, nil
}

// systemdListeners serves Accept=no: every descriptor a listening socket,
// matched by name to a Want.
func systemdListeners(files []*os.File, passed []passedFD, wants []Want) (*Set, error) {
	set := &Set{Mode: Systemd}
	for i, p := range passed {
		if !p.listening {
			err := fmt.Errorf("systemd activation: %s is a connection among %d descriptors (Accept=yes passes one)",
				fdLabel(p.fd, p.name), len(passed))
			return nil, errors.Join(err, set.Close())
		}
		service, err := listenerService(wants, p)
		if err != nil {
			return nil, errors.Join(err, set.Close())
		}
		l, err := net.FileListener(files[i])
		if err != nil {
			err = fmt.Errorf("systemd activation: %s: %w", fdLabel(p.fd, p.name), err)
			return nil, errors.Join(err, set.Close())
		}
		set.Listeners = append(set.Listeners, Named{Name: service, Listener: l})
	}
	return set, nil
}

// listenerService matches a listening socket's name to a Want. A missing or
// "unknown" name (the socket unit set no FileDescriptorName=, or an old
// systemd passed no names) is unambiguous only with a single Want.
func listenerService(wants []Want, p passedFD) (string, error) {
	if hasWant(wants, p.name) {
		return p.name, nil
	}
	if (p.name == "" || p.name == "unknown") && len(wants) == 1 {
		return wants[0].Name, nil
	}
	if p.name == "" || p.name == "unknown" {
		return "", fmt.Errorf("systemd activation: %s has no name; set FileDescriptorName= to one of: %s",
			fdLabel(p.fd, p.name), wantNames(wants))
	}
	return "", fmt.Errorf("systemd activation: %s names no service of this program (have %s)",
		fdLabel(p.fd, p.name), wantNames(wants))
}

// fdLabel names a passed descriptor in errors: `fd 3 "smtp"`.
func fdLabel(fd int, name string) string {
	if name == "" {
		return "fd " + strconv.Itoa(fd)
	}
	return fmt.Sprintf("fd %d %q", fd, name)
}
