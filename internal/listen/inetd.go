package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// openInetd serves the connection on fds 0 and 1.
func openInetd(opts Options) (*Set, error) {
	service, err := connService(opts.Wants, opts.Service, "")
	if err != nil {
		return nil, err
	}
	var c net.Conn
	if _, err := unix.GetsockoptInt(0, unix.SOL_SOCKET, unix.SO_TYPE); err == nil {
		c, err = inetdSocket()
	} else {
		c, err = inetdPipes()
	}
	if err != nil {
		return nil, err
	}
	return &Set{Mode: Inetd, Conn: c, Service: service}, nil
}

// inetdSocket takes the socket on fd 0 (inetd, tcpserver, systemd's
// StandardInput=socket). Its addresses come from the socket itself.
func inetdSocket() (net.Conn, error) {
	c, err := net.FileConn(os.Stdin) // a duplicate; fd 0 stays as it is
	if err != nil {
		return nil, fmt.Errorf("inetd: socket on fd 0: %w", err)
	}
	fds := []int{0}
	if sameFile(0, 1) {
		fds = append(fds, 1)
	}
	if err := pointAtDevNull(fds...); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// inetdPipes takes the pipes (or terminal) on fds 0 and 1, as a test or a
// ucspi tool with pipes gives them.
func inetdPipes() (net.Conn, error) {
	in, err := dupFile(0, "stdin")
	if err != nil {
		return nil, fmt.Errorf("inetd: fd 0: %w", err)
	}
	out, err := dupFile(1, "stdout")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("inetd: fd 1: %w", err), in.Close())
	}
	if err := pointAtDevNull(0, 1); err != nil {
		return nil, errors.Join(err, in.Close(), out.Close())
	}
	return Stdio(in, out), nil
}

// sameFile reports whether two descriptors refer to the same file.
func sameFile(a, b int) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(a, &sa) != nil || unix.Fstat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// dupFile duplicates fd (close-on-exec) into a File of its own.
func dupFile(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// pointAtDevNull replaces the descriptors with /dev/null once the
// connection has been duplicated away from them: the peer then sees the
// end of the connection when the daemon closes it, not when the process
// exits, and output meant for a terminal cannot reach the client.
func pointAtDevNull(fds ...int) error {
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/null: %w", err)
	}
	keep := false
	for _, fd := range fds {
		if fd == null {
			// fd was closed, so /dev/null landed on it already; it must
			// stay open and be inherited like any standard descriptor.
			keep = true
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				return fmt.Errorf("fd %d: clear close-on-exec: %w", fd, err)
			}
			continue
		}
		if err := unix.Dup3(null, fd, 0); err != nil {
			unix.Close(null)
			return fmt.Errorf("point fd %d at /dev/null: %w", fd, err)
		}
	}
	if !keep {
		unix.Close(null)
	}
	return nil
}

// Stdio is a net.Conn over in (read) and out (write), for inetd and
// tcpserver when fd 0 is not a socket. It takes ownership of both files:
// Close closes them. RemoteAddr is a *net.TCPAddr from $TCPREMOTEIP and
// $TCPREMOTEPORT (ucspi-tcp's tcp-environ(5)) when TCPREMOTEIP holds an IP
// address, otherwise an address named "stdin"; LocalAddr likewise from
// $TCPLOCALIP/$TCPLOCALPORT, else "stdout".
//
// Deadlines work when the files are pipes, FIFOs or sockets: Stdio reads and
// writes through non-blocking duplicates of them. A terminal stays blocking
// (changing its mode would outlive the process) and its deadlines fail with
// os.ErrNoDeadline. (Open uses Stdio itself; it is exported for tests.)
func Stdio(in *os.File, out *os.File) net.Conn {
	c := &stdioConn{
		origIn:  in,
		origOut: out,
		remote:  envAddr("TCPREMOTEIP", "TCPREMOTEPORT", "stdin"),
		local:   envAddr("TCPLOCALIP", "TCPLOCALPORT", "stdout"),
	}
	c.in = pollable(in)
	c.out = pollable(out)
	return c
}

type stdioConn struct {
	in, out         *os.File // what Read and Write use: pollable duplicates, or the originals
	origIn, origOut *os.File
	local, remote   net.Addr

	closeOnce sync.Once
	closeErr  error
}

// pollable returns a non-blocking duplicate of f, which the runtime poller
// serves (so deadlines work), when f is a pipe, FIFO or socket; otherwise f.
func pollable(f *os.File) *os.File {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	nfd := -1
	ctlErr := rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil {
			return
		}
		if kind := st.Mode & unix.S_IFMT; kind != unix.S_IFIFO && kind != unix.S_IFSOCK {
			return
		}
		d, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return
		}
		if unix.SetNonblock(d, true) != nil {
			unix.Close(d)
			return
		}
		nfd = d
	})
	if ctlErr != nil || nfd < 0 {
		return f
	}
	// os.NewFile registers a non-blocking descriptor with the poller.
	return os.NewFile(uintptr(nfd), f.Name())
}

func (c *stdioConn) Read(p []byte) (int, error) {
	n, err := c.in.Read(p)
	return n, closedAsNet(err)
}

func (c *stdioConn) Write(p []byte) (int, error) {
	n, err := c.out.Write(p)
	return n, closedAsNet(err)
}

// closedAsNet reports use after Close as net.ErrClosed, as a net.Conn does.
func closedAsNet(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// Close closes the duplicates and the files Stdio was given (each once).
func (c *stdioConn) Close() error {
	c.closeOnce.Do(func() {
		seen := map[*os.File]bool{}
		var errs []error
		for _, f := range []*os.File{c.in, c.out, c.origIn, c.origOut} {
			if seen[f] {
				continue
			}
			seen[f] = true
			if err := f.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

func (c *stdioConn) LocalAddr() net.Addr  { return c.local }
func (c *stdioConn) RemoteAddr() net.Addr { return c.remote }

func (c *stdioConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *stdioConn) SetReadDeadline(t time.Time) error  { return c.in.SetReadDeadline(t) }
func (c *stdioConn) SetWriteDeadline(t time.Time) error { return c.out.SetWriteDeadline(t) }

// pipeAddr is the address of one end of a stdio connection.
type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// envAddr builds a TCP address from ucspi-tcp's variables, or fallback when
// ipVar does not hold an IP address. An unparsable port becomes 0.
func envAddr(ipVar, portVar, fallback string) net.Addr {
	ip := net.ParseIP(os.Getenv(ipVar))
	if ip == nil {
		return pipeAddr(fallback)
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	port, err := strconv.Atoi(os.Getenv(portVar))
	if err != nil || port < 0 || port > 65535 {
		port = 0
	}
	return &net.TCPAddr{IP: ip, Port: port}
}
