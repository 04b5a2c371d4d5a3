package listen

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the daemon the activation tests start: with
// childEnv set, TestMain runs runChild instead of the tests. The child's
// options come from the environment too.
const (
	childEnv        = "MAILROOM_LISTEN_CHILD" // "1": run as the child
	childWantsEnv   = "MAILROOM_LISTEN_WANTS" // comma-separated Want names
	childServiceEnv = "MAILROOM_LISTEN_SERVICE"
	childInetdEnv   = "MAILROOM_LISTEN_INETD" // "1": Options.Inetd
	childEchoEnv    = "MAILROOM_LISTEN_ECHO"  // "1": echo a line, close, wait for fd 3 to end
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild calls Open as a daemon would and reports what it got: listeners
// as "child: listener NAME ADDR cloexec=BOOL" lines on stdout followed by
// "child: ready ..."; then it greets one connection on each listener with
// "hello NAME". A single connection is greeted with "conn ..." (see
// describeConn). Errors go to stderr as "child: error ...".
func runChild() int {
	opts := Options{
		Service: os.Getenv(childServiceEnv),
		Inetd:   os.Getenv(childInetdEnv) == "1",
	}
	for _, name := range strings.Split(os.Getenv(childWantsEnv), ",") {
		if name != "" {
			opts.Wants = append(opts.Wants, Want{Name: name})
		}
	}
	set, err := Open(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: error %v\n", err)
		return 1
	}
	defer set.Close()
	if set.Conn != nil {
		return childConn(set)
	}
	return childListeners(set)
}

// envUnset reports whether Open removed the LISTEN_* variables.
func envUnset() bool {
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			return false
		}
	}
	return true
}

func childListeners(set *Set) int {
	for _, l := range set.Listeners {
		fmt.Printf("child: listener %s %s cloexec=%v\n", l.Name, l.Addr(), closeOnExec(l.Listener))
	}
	fmt.Printf("child: ready mode=%v env-unset=%v\n", set.Mode, envUnset())
	var wg sync.WaitGroup
	for _, l := range set.Listeners {
		wg.Go(func() {
			c, err := l.Accept()
			if err != nil {
				fmt.Fprintf(os.Stderr, "child: error accept %s: %v\n", l.Name, err)
				return
			}
			fmt.Fprintf(c, "hello %s\n", l.Name)
			c.Close()
		})
	}
	wg.Wait()
	return 0
}

// closeOnExec reports whether a listener's descriptor has FD_CLOEXEC.
func closeOnExec(l net.Listener) bool {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var flags int
	var fcntlErr error
	if err := rc.Control(func(fd uintptr) { flags, fcntlErr = unix.FcntlInt(fd, unix.F_GETFD, 0) }); err != nil {
		return false
	}
	return fcntlErr == nil && flags&unix.FD_CLOEXEC != 0
}

// isDevNull reports whether fd now refers to /dev/null.
func isDevNull(fd int) bool {
	var st, null unix.Stat_t
	if unix.Fstat(fd, &st) != nil || unix.Stat("/dev/null", &null) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == null.Rdev
}

// describeConn is the child's report on its single connection.
func describeConn(set *Set) string {
	c := set.Conn
	return fmt.Sprintf("conn mode=%v service=%s remote=%v loopback=%v env-unset=%v fd0-null=%v fd1-null=%v",
		set.Mode, set.Service, c.RemoteAddr(), IsLoopback(c.RemoteAddr()), envUnset(), isDevNull(0), isDevNull(1))
}

func childConn(set *Set) int {
	l := Single(set.Conn)
	c, err := l.Accept()
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: error Single: %v\n", err)
		return 1
	}
	fmt.Fprintln(c, describeConn(set))
	if os.Getenv(childEchoEnv) != "1" {
		c.Close()
		return 0
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: error read: %v\n", err)
		return 1
	}
	fmt.Fprintf(c, "echo %s", line)
	c.Close()
	if _, err := l.Accept(); err != net.ErrClosed {
		fmt.Fprintf(os.Stderr, "child: error Accept after Close = %v\n", err)
		return 1
	}
	// Stay alive until the test has seen the connection end: it ends
	// only if Open moved it off fds 0 and 1.
	control := os.NewFile(3, "control")
	if _, err := io.Copy(io.Discard, control); err != nil {
		fmt.Fprintf(os.Stderr, "child: error control: %v\n", err)
		return 1
	}
	return 0
}
