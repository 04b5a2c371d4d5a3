package listen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireTool returns the path of a Debian program an interop test drives.
// A missing program skips the test, or fails it when
// MAILROOM_REQUIRE_INTEROP=1 (make test, CI).
func requireTool(t *testing.T, path string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err == nil {
		return p
	}
	if os.Getenv("MAILROOM_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s is required (MAILROOM_REQUIRE_INTEROP=1): %v", path, err)
	}
	t.Skipf("%s not installed: %v", path, err)
	return ""
}

// output collects a process tree's combined output line by line.
type output struct {
	lines chan string // closed at EOF
	mu    sync.Mutex
	all   bytes.Buffer
}

func collect(r io.ReadCloser) *output {
	o := &output{lines: make(chan string, 1024)}
	go func() {
		defer r.Close()
		defer close(o.lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			o.mu.Lock()
			o.all.WriteString(sc.Text() + "\n")
			o.mu.Unlock()
			o.lines <- sc.Text()
		}
	}()
	return o
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.all.String()
}

// next returns the next line, or false at EOF or after waitLimit.
func (o *output) next() (string, bool) {
	select {
	case line, ok := <-o.lines:
		return line, ok
	case <-time.After(waitLimit):
		return "", false
	}
}

// childReport returns the child's lines up to its "ready" or "error" line.
func (o *output) childReport(t *testing.T) []string {
	t.Helper()
	var report []string
	for range 100 {
		line, ok := o.next()
		if !ok {
			t.Fatalf("no report from the child; output:\n%s", o)
		}
		if !strings.HasPrefix(line, "child: ") {
			continue
		}
		report = append(report, strings.TrimPrefix(line, "child: "))
		if strings.HasPrefix(line, "child: ready") || strings.HasPrefix(line, "child: error") {
			return report
		}
	}
	t.Fatalf("child report too long; output:\n%s", o)
	return nil
}

// freePorts finds n free loopback ports (all at once, so they differ).
// Another process may take one before it is used; startActivator retries.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startActivator runs systemd-socket-activate with n loopback listeners
// (ports chosen here), extra options, and the test binary as the child with
// env. It returns once every socket is listening.
func startActivator(t *testing.T, n int, extra, env []string) (*output, []int) {
	t.Helper()
	ssa := requireTool(t, "/usr/bin/systemd-socket-activate")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const attempts = 5
	for attempt := 1; attempt <= attempts; attempt++ {
		ports := freePorts(t, n)
		var args []string
		for _, p := range ports {
			args = append(args, "-l", fmt.Sprintf("127.0.0.1:%d", p))
		}
		args = append(args, extra...)
		// systemd-socket-activate passes the child only PATH, LISTEN_* and
		// what -E names.
		for _, e := range append([]string{childEnv + "=1", childGORACE()}, env...) {
			args = append(args, "-E", e)
		}
		args = append(args, exe)
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(ssa, args...)
		cmd.Stdout, cmd.Stderr = w, w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		t.Cleanup(func() {
			cmd.Process.Kill() // the activator, or the child it became
			cmd.Wait()
		})
		out := collect(r)
		listening, busy := 0, false
		for listening < n && !busy {
			line, ok := out.next()
			if !ok {
				break
			}
			listening += strings.Count(line, "Listening on ")
			busy = strings.Contains(line, "Address already in use")
		}
		if listening == n {
			return out, ports
		}
		if !busy {
			t.Fatalf("systemd-socket-activate %s did not come up:\n%s", strings.Join(args, " "), out)
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Fatalf("no free ports for systemd-socket-activate after %d attempts", attempts)
	return nil, nil
}

// childGORACE spares a child built with -race the race detector's pause of
// a second at exit, keeping any other GORACE options.
func childGORACE() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}

func dialPort(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	return c
}

// readAllLines reads a connection to its end.
func readAllLines(t *testing.T, c net.Conn) string {
	t.Helper()
	all, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %v: %v", c.RemoteAddr(), err)
	}
	return string(all)
}

// TestSystemdListeners runs the child under systemd-socket-activate as
// systemd runs a service with Accept=no sockets.
func TestSystemdListeners(t *testing.T) {
	tests := []struct {
		name    string
		listens int
		fdnames string
		wants   string
		serve   []string // the Want of each socket, in -l order
		err     string
	}{
		{name: "named", listens: 2, fdnames: "smtp:submission", wants: "smtp,submission,submissions",
			serve: []string{"smtp", "submission"}},
		{name: "unnamed, one want", listens: 2, wants: "imap", serve: []string{"imap", "imap"}},
		{name: "name of no want", listens: 2, fdnames: "smtp:smtps", wants: "smtp,submission",
			err: `fd 4 "smtps" names no service of this program`},
		{name: "unnamed, several wants", listens: 2, wants: "smtp,submission", err: "fd 3 has no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var extra []string
			if tt.fdnames != "" {
				extra = append(extra, "--fdname="+tt.fdnames)
			}
			out, ports := startActivator(t, tt.listens, extra, []string{childWantsEnv + "=" + tt.wants})
			// The activator execs the child at the first connection.
			first := dialPort(t, ports[0])
			report := out.childReport(t)
			if tt.err != "" {
				if len(report) != 1 || !strings.Contains(report[0], tt.err) {
					t.Fatalf("child reported %q, want an error %q", report, tt.err)
				}
				// The listening socket closes with the connection still
				// in its queue: the client sees a reset (or the end).
				if got, err := io.ReadAll(first); len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
					t.Fatalf("a failed child answered %q, %v", got, err)
				}
				return
			}
			var want []string
			for i, name := range tt.serve {
				want = append(want, fmt.Sprintf("listener %s 127.0.0.1:%d cloexec=true", name, ports[i]))
			}
			want = append(want, "ready mode=systemd env-unset=true")
			if strings.Join(report, "\n") != strings.Join(want, "\n") {
				t.Fatalf("child reported\n%s\nwant\n%s", strings.Join(report, "\n"), strings.Join(want, "\n"))
			}
			conns := []net.Conn{first}
			for _, p := range ports[1:] {
				conns = append(conns, dialPort(t, p))
			}
			for i, c := range conns {
				if got, want := readAllLines(t, c), "hello "+tt.serve[i]+"\n"; got != want {
					t.Errorf("socket %d answered %q, want %q", i, got, want)
				}
			}
		})
	}
}

// TestSystemdAccept runs the child under systemd-socket-activate --accept,
// as systemd runs an Accept=yes service: one process per connection, the
// connection on fd 3 (or, with --inetd, on fds 0 and 1).
func TestSystemdAccept(t *testing.T) {
	tests := []struct {
		name  string
		extra []string
		env   []string
		want  []string // substrings of the child's report
		err   string
	}{
		{name: "one want", extra: []string{"--accept"}, env: []string{childWantsEnv + "=imap"},
			want: []string{"conn mode=systemd-accept service=imap ", "fd1-null=false"}},
		{name: "service asked", extra: []string{"--accept"},
			env:  []string{childWantsEnv + "=pop3,pop3s", childServiceEnv + "=pop3s"},
			want: []string{"mode=systemd-accept service=pop3s "}},
		{name: "service from the fd name", extra: []string{"--accept", "--fdname=pop3s"},
			env:  []string{childWantsEnv + "=pop3,pop3s"},
			want: []string{"mode=systemd-accept service=pop3s "}},
		{name: "several wants, no service", extra: []string{"--accept"},
			env: []string{childWantsEnv + "=pop3,pop3s"}, err: "several services (pop3, pop3s)"},
		{name: "inetd style", extra: []string{"--accept", "--inetd"},
			env:  []string{childWantsEnv + "=smtp", childInetdEnv + "=1"},
			want: []string{"conn mode=inetd service=smtp ", "fd0-null=true fd1-null=true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ports := startActivator(t, 1, tt.extra, tt.env)
			for range 2 { // a child per connection
				c := dialPort(t, ports[0])
				got := readAllLines(t, c)
				if tt.err != "" {
					report := out.childReport(t)
					if got != "" || len(report) != 1 || !strings.Contains(report[0], tt.err) {
						t.Fatalf("answer %q, report %q; want an error %q", got, report, tt.err)
					}
					continue
				}
				want := append([]string{
					fmt.Sprintf(" remote=%s loopback=true env-unset=true ", c.LocalAddr()),
				}, tt.want...)
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("child answered %q, want %q in it; output:\n%s", got, w, out)
					}
				}
			}
		})
	}
}

// runInetdChild runs the child with stdin and stdout given, and fd 3 a
// control pipe it waits on before exiting.
func runInetdChild(t *testing.T, stdin, stdout *os.File, env ...string) (cmd *exec.Cmd, control *os.File, stderr *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	controlR, controlW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = new(bytes.Buffer)
	cmd = exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1", childInetdEnv+"=1", childEchoEnv+"=1", childGORACE())
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.ExtraFiles = []*os.File{controlR}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	controlR.Close()
	t.Cleanup(func() {
		controlW.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, controlW, stderr
}

// converse checks the child's report, has a line echoed, and checks that
// the connection ends when the child closes it, while the child still runs.
func converse(t *testing.T, r io.Reader, w io.Writer, wantReport []string) {
	t.Helper()
	br := bufio.NewReader(r)
	report, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no report: %v", err)
	}
	for _, want := range wantReport {
		if !strings.Contains(report, want) {
			t.Errorf("report %q lacks %q", report, want)
		}
	}
	if _, err := io.WriteString(w, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("the connection did not end when the child closed it: %v", err)
	}
	if len(rest) != 0 {
		t.Fatalf("after the echo: %q", rest)
	}
}

func TestInetdPipes(t *testing.T) {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd, control, stderr := runInetdChild(t, inR, outW, childWantsEnv+"=pop3",
		"TCPREMOTEIP=192.0.2.7", "TCPREMOTEPORT=4242")
	inR.Close()
	outW.Close()
	defer inW.Close()
	defer outR.Close()
	outR.SetReadDeadline(time.Now().Add(waitLimit))
	converse(t, outR, inW, []string{
		"conn mode=inetd service=pop3 remote=192.0.2.7:4242 loopback=false env-unset=true fd0-null=true fd1-null=true",
	})
	control.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
}

func TestInetdSocket(t *testing.T) {
	client, server := loopbackPair(t)
	f, err := server.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	// LISTEN_* of another process: ignored, and not passed on.
	cmd, control, stderr := runInetdChild(t, f, f, childWantsEnv+"=smtp,submission", childServiceEnv+"=submission",
		"LISTEN_PID=1", "LISTEN_FDS=1")
	f.Close()
	server.Close()
	client.SetDeadline(time.Now().Add(waitLimit))
	converse(t, client, client, []string{
		fmt.Sprintf("conn mode=inetd service=submission remote=%s loopback=true env-unset=true fd0-null=true fd1-null=true",
			client.LocalAddr()),
	})
	control.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
}

func TestInetdNeedsService(t *testing.T) {
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inW.Close()
	cmd, control, stderr := runInetdChild(t, inR, nil, childWantsEnv+"=imap,imaps")
	inR.Close()
	control.Close()
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "say which with --service") {
		t.Fatalf("child: %v\n%s", err, stderr)
	}
}
