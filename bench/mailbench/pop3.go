package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runPOP3 measures one POP3 server the way a simple client uses it: one
// command at a time, each reply read before the next command (no RFC 2449
// pipelining).
//
//	-steps full   connect+USER/PASS+STAT, UIDL, RETR 1..n, DELE 1..n + QUIT
//	-steps login  connect+USER/PASS+STAT, QUIT
//	-sessions N   N sessions at once, users -user with %d = 1..N, each
//	              logged in with STAT done; with -mem-pid, the memory of
//	              that server's process tree before and after
//
// RETR replies are checked: "+OK", every line ending in CRLF, the
// terminating ".\r\n", and the octets after un-stuffing equal to the
// message's LIST size (LIST is sent, untimed, between UIDL and RETR).
func runPOP3(args []string) error {
	fs := flag.NewFlagSet("pop3", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:110", "server HOST:PORT")
	user := fs.String("user", "", "login name (with -sessions: a format with %d)")
	pass := fs.String("pass", "", "password")
	useTLS := fs.Bool("tls", false, "STLS before logging in (certificate not verified)")
	steps := fs.String("steps", "full", "full or login")
	sessions := fs.Int("sessions", 0, "hold N logged-in sessions at once and measure memory")
	memPID := fs.Int("mem-pid", 0, "with -sessions: the server's top process")
	settle := fs.Duration("settle", time.Second, "with -sessions: wait this long before measuring")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on a reply after this long")
	fs.Parse(args)
	if *user == "" {
		return fmt.Errorf("pop3: need -user and -pass")
	}
	dial := func(u string) (*popClient, error) {
		return dialPOP3(*addr, u, *pass, *useTLS, *timeout)
	}
	if *sessions > 0 {
		return pop3Sessions(dial, *user, *sessions, *memPID, *settle)
	}
	switch *steps {
	case "full":
		return pop3Full(dial, *user)
	case "login":
		start := time.Now()
		c, err := dial(*user)
		if err != nil {
			return err
		}
		loginStat := time.Since(start)
		if err := c.quit(); err != nil {
			return err
		}
		if err := c.closeWait(); err != nil {
			return err
		}
		fmt.Printf("mode=pop3 steps=login msgs=%d login_stat_s=%.4f\n", c.count, loginStat.Seconds())
		return nil
	}
	return fmt.Errorf("pop3: -steps %q: want full or login", *steps)
}

func pop3Full(dial func(string) (*popClient, error), user string) error {
	t0 := time.Now()
	c, err := dial(user)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	t1 := time.Now()
	uidls, err := c.multi("UIDL")
	if err != nil {
		return err
	}
	t2 := time.Now()
	if len(uidls) != c.count {
		return fmt.Errorf("pop3: UIDL listed %d messages, STAT said %d", len(uidls), c.count)
	}
	sizes, err := c.listSizes()
	if err != nil {
		return err
	}
	t3 := time.Now()
	var bytesRETR, octets int64
	mismatched := 0
	for i := 1; i <= c.count; i++ {
		wire, body, err := c.retr(i)
		if err != nil {
			return err
		}
		bytesRETR += wire
		octets += body
		if body != sizes[i-1] {
			mismatched++
		}
	}
	t4 := time.Now()
	for i := 1; i <= c.count; i++ {
		if _, err := c.cmd("DELE " + strconv.Itoa(i)); err != nil {
			return err
		}
	}
	t5 := time.Now()
	if err := c.quit(); err != nil {
		return err
	}
	t6 := time.Now()
	if err := c.closeWait(); err != nil {
		return err
	}
	fmt.Printf("mode=pop3 steps=full msgs=%d login_stat_s=%.4f uidl_s=%.4f retr_all_s=%.4f retr_bytes=%d retr_mb=%.1f size_mismatch=%d dele_all_s=%.4f quit_s=%.4f dele_quit_s=%.4f\n",
		c.count, t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), t4.Sub(t3).Seconds(), bytesRETR,
		float64(octets)/1e6, mismatched, t5.Sub(t4).Seconds(), t6.Sub(t5).Seconds(), t6.Sub(t4).Seconds())
	return nil
}

// pop3Sessions logs N users in at once (20 logins in flight), measures
// the server's memory with all of them holding their maildrop, then QUITs.
func pop3Sessions(dial func(string) (*popClient, error), userFmt string, n, pid int, settle time.Duration) error {
	before, err := treeMemory(pid)
	if err != nil {
		return err
	}
	clients := make([]*popClient, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 20)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			clients[i], errs[i] = dial(fmt.Sprintf(userFmt, i+1))
		}()
	}
	wg.Wait()
	loginAll := time.Since(start)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.conn.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	time.Sleep(settle) // let the server finish what it does after +OK (no protocol event to wait for)
	after, err := treeMemory(pid)
	if err != nil {
		return err
	}
	for _, c := range clients {
		if err := c.quit(); err != nil {
			return err
		}
		if err := c.closeWait(); err != nil {
			return err
		}
	}
	per := func(a, b int64) int64 { return (a - b) / int64(n) }
	fmt.Printf("mode=pop3-mem sessions=%d msgs=%d login_all_s=%.3f procs_before=%d procs_after=%d pss_before_kb=%d pss_after_kb=%d rss_before_kb=%d rss_after_kb=%d pss_per_session_kb=%d rss_per_session_kb=%d top_rss_kb=%d top_hwm_kb=%d\n",
		n, clients[0].count, loginAll.Seconds(), before.procs, after.procs, before.pss, after.pss, before.rss, after.rss,
		per(after.pss, before.pss), per(after.rss, before.rss), after.topRSS, after.topHWM)
	return nil
}

// memory is a process tree's memory in KiB (from /proc, Linux only).
type memory struct {
	procs    int
	pss, rss int64 // summed over the tree (smaps_rollup)
	topHWM   int64 // VmHWM of the top process
	topRSS   int64 // VmRSS of the top process
}

// treeMemory sums Pss and Rss of pid and all its descendants. PSS splits
// shared pages (libraries, the binary) between the processes mapping
// them, so for a process-per-session server it counts what a session
// really adds; RSS counts the shared pages again in every process.
func treeMemory(pid int) (memory, error) {
	var m memory
	if pid <= 0 {
		return m, fmt.Errorf("pop3: -sessions needs -mem-pid")
	}
	for p := range processTree(pid) {
		roll, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p))
		if err != nil {
			continue // exited meanwhile
		}
		m.procs++
		m.pss += kbField(roll, "Pss:")
		m.rss += kbField(roll, "Rss:")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, fmt.Errorf("pop3: server process: %w", err)
	}
	m.topHWM = kbField(status, "VmHWM:")
	m.topRSS = kbField(status, "VmRSS:")
	return m, nil
}

// popClient is a minimal POP3 client: one command, one reply.
type popClient struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	count   int // from STAT
}

// dialPOP3 connects, reads the greeting, optionally starts TLS, logs in
// with USER/PASS (RFC 1939 §7) and sends STAT.
func dialPOP3(addr, user, pass string, useTLS bool, timeout time.Duration) (*popClient, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("pop3: %w", err)
	}
	c := &popClient{conn: conn, timeout: timeout}
	c.r, c.w = bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 4<<10)
	err = c.login(addr, user, pass, useTLS)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *popClient) login(addr, user, pass string, useTLS bool) error {
	if _, err := c.reply(); err != nil {
		return fmt.Errorf("pop3: greeting: %w", err)
	}
	if useTLS {
		if _, err := c.cmd("STLS"); err != nil {
			return err
		}
		host, _, _ := net.SplitHostPort(addr)
		// A loopback benchmark against a throwaway certificate.
		tc := tls.Client(c.conn, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		c.conn = tc
		c.r.Reset(tc)
		c.w.Reset(tc)
	}
	if _, err := c.cmd("USER " + user); err != nil {
		return err
	}
	if _, err := c.cmd("PASS " + pass); err != nil {
		return err
	}
	line, err := c.cmd("STAT")
	if err != nil {
		return err
	}
	f := strings.Fields(line)
	if len(f) < 3 {
		return fmt.Errorf("pop3: STAT: %q", line)
	}
	c.count, err = strconv.Atoi(f[1])
	if err != nil {
		return fmt.Errorf("pop3: STAT: %q", line)
	}
	return nil
}

// cmd sends one command and returns its +OK line.
func (c *popClient) cmd(line string) (string, error) {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return "", fmt.Errorf("pop3: %s: %w", verb(line), err)
	}
	if err := c.w.Flush(); err != nil {
		return "", fmt.Errorf("pop3: %s: %w", verb(line), err)
	}
	reply, err := c.reply()
	if err != nil {
		return "", fmt.Errorf("pop3: %s: %w", verb(line), err)
	}
	return reply, nil
}

func verb(line string) string {
	v, _, _ := strings.Cut(line, " ")
	return v
}

// reply reads one status line; -ERR is an error.
func (c *popClient) reply() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "+OK") {
		return "", fmt.Errorf("server said %q", line)
	}
	return line, nil
}

// multi sends a command with a multi-line reply and returns its lines.
func (c *popClient) multi(command string) ([]string, error) {
	if _, err := c.cmd(command); err != nil {
		return nil, err
	}
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("pop3: %s: %w", command, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "." {
			return lines, nil
		}
		lines = append(lines, line)
	}
}

// listSizes returns every message's LIST size, by message number.
func (c *popClient) listSizes() ([]int64, error) {
	lines, err := c.multi("LIST")
	if err != nil {
		return nil, err
	}
	sizes := make([]int64, c.count)
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("pop3: LIST line %q", l)
		}
		n, err1 := strconv.Atoi(f[0])
		s, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || n < 1 || n > c.count {
			return nil, fmt.Errorf("pop3: LIST line %q", l)
		}
		sizes[n-1] = s
	}
	return sizes, nil
}

// retr downloads message n and returns the octets on the wire (status line
// and terminator excluded) and the message's octets after un-stuffing.
func (c *popClient) retr(n int) (wire, body int64, err error) {
	if _, err := c.cmd("RETR " + strconv.Itoa(n)); err != nil {
		return 0, 0, err
	}
	for atStart := true; ; {
		// ReadSlice keeps long lines from being copied; a line longer
		// than the buffer comes in pieces (ErrBufferFull).
		chunk, err := c.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return wire, body, fmt.Errorf("pop3: RETR %d: %w", n, err)
		}
		if atStart && string(chunk) == ".\r\n" {
			return wire, body, nil
		}
		complete := err == nil
		if complete && !bytes.HasSuffix(chunk, []byte("\r\n")) {
			return wire, body, fmt.Errorf("pop3: RETR %d: line without CRLF: %q", n, chunk)
		}
		wire += int64(len(chunk))
		body += int64(len(chunk))
		if atStart && chunk[0] == '.' {
			body-- // RFC 1939 §3: the stuffed dot is not part of the message
		}
		atStart = complete
	}
}

// quit ends the session (the UPDATE state commits the DELEs) and returns
// at the +OK; the connection is closed by closeWait.
func (c *popClient) quit() error {
	if _, err := c.cmd("QUIT"); err != nil {
		return err
	}
	return nil
}

// closeWait waits (untimed) for the server to close the connection, so
// that a next session does not race the server's release of the maildrop
// lock, then closes our end.
func (c *popClient) closeWait() error {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	_, err := c.r.Discard(1 << 30)
	if err != nil && !errors.Is(err, io.EOF) {
		return errors.Join(fmt.Errorf("pop3: after QUIT: %w", err), c.conn.Close())
	}
	return c.conn.Close()
}
