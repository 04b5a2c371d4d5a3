package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// runSMTP measures SMTP ingest end to end: -n messages of about -size bytes
// sent by -c concurrent clients, one message per connection (EHLO, MAIL,
// RCPT, DATA, QUIT, each reply read before the next command, as Postfix's
// smtp-source does without -d), and the clock runs until -n new files are
// in -maildir's new/ and cur/ (beyond those there at the start).
//
//	-server-pid P[,P...]   the server's top processes (mailroom: smtpd and
//	                       deliver; Postfix: master): CPU of their whole
//	                       trees and RSS are reported
//
// Printed: accept_s (last 250 after DATA), e2e_s (last file in the
// Maildir), rates from both, cpu_ms_per_msg of the server trees, and their
// summed RSS and peak RSS (VmHWM) at the end.
func runSMTP(args []string) error {
	fs := flag.NewFlagSet("smtp", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:25", "server HOST:PORT")
	n := fs.Int("n", 1000, "messages")
	conc := fs.Int("c", 1, "concurrent clients")
	size := fs.Int("size", 5120, "approximate message size in bytes")
	from := fs.String("from", "sender@source.test", "envelope sender")
	to := fs.String("to", "", "envelope recipient")
	dir := fs.String("maildir", "", "the recipient's Maildir, counted until -n messages arrived")
	pids := fs.String("server-pid", "", "comma-separated top PIDs of the server")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Parse(args)
	if *to == "" || *dir == "" {
		return errors.New("smtp: need -to and -maildir")
	}
	tops, err := smtpParsePIDs(*pids)
	if err != nil {
		return err
	}
	base, err := smtpCountMaildir(*dir)
	if err != nil {
		return err
	}
	cpu0, err := smtpTreeCPU(tops)
	if err != nil {
		return err
	}
	body := smtpBody(*size)
	deadline := time.Now().Add(*timeout)
	start := time.Now()
	var lastAck atomic.Int64 // ns since start of the last 250 after DATA
	res := parallel(*n, *conc, *timeout, func(i int) error {
		err := smtpSendOne(*addr, *from, *to, i, body, deadline)
		if err == nil {
			d := int64(time.Since(start))
			for {
				old := lastAck.Load()
				if d <= old || lastAck.CompareAndSwap(old, d) {
					break
				}
			}
		}
		return err
	})
	arrived := smtpWaitArrivals(*dir, base, int(res.ok), deadline)
	e2e := time.Since(start)
	cpu1, err := smtpTreeCPU(tops)
	if err != nil {
		return err
	}
	rss, hwm := smtpTreeMemory(tops)
	accept := time.Duration(lastAck.Load())
	cpuPer := float64((cpu1 - cpu0).Microseconds()) / 1000 / float64(max(arrived, 1))
	fmt.Printf("mode=smtp n=%d c=%d body_bytes=%d ok=%d failed=%d arrived=%d accept_s=%.3f e2e_s=%.3f accept_rate=%.1f e2e_rate=%.1f cpu_ms_per_msg=%.3f rss_kb=%d hwm_kb=%d\n",
		*n, *conc, len(body), res.ok, res.failed, arrived, accept.Seconds(), e2e.Seconds(),
		float64(res.ok)/accept.Seconds(), float64(arrived)/e2e.Seconds(), cpuPer, rss, hwm)
	if res.firstErr != "" {
		fmt.Fprintln(os.Stderr, "mailbench: first failure:", res.firstErr)
	}
	if arrived < int(res.ok) {
		return fmt.Errorf("smtp: %d of %d acknowledged messages in %s before the timeout", arrived, res.ok, *dir)
	}
	if res.failed > 0 {
		return fmt.Errorf("smtp: %d messages failed", res.failed)
	}
	return nil
}

// smtpBody is a plain-text message body of about size bytes with CRLF
// line ends and no line starting with a dot.
func smtpBody(size int) string {
	const line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
	var b strings.Builder
	for b.Len()+len(line) <= max(size-250, len(line)) { // ~250 bytes of header
		b.WriteString(line)
	}
	return b.String()
}

// smtpSendOne delivers message i over its own connection.
func smtpSendOne(addr, from, to string, i int, body string, deadline time.Time) error {
	c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	w := bufio.NewWriterSize(c, 64<<10)
	step := func(cmd, code string) error {
		if cmd != "" {
			if _, err := w.WriteString(cmd); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		return smtpExpect(r, code, cmd)
	}
	if err := step("", "220"); err != nil {
		return err
	}
	for _, s := range [][2]string{
		{"EHLO mailbench.test\r\n", "250"},
		{"MAIL FROM:<" + from + ">\r\n", "250"},
		{"RCPT TO:<" + to + ">\r\n", "250"},
		{"DATA\r\n", "354"},
	} {
		if err := step(s[0], s[1]); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "From: <%s>\r\nTo: <%s>\r\nSubject: mailbench %d\r\nDate: %s\r\nMessage-ID: <%d.%d@mailbench.test>\r\n\r\n",
		from, to, i, time.Now().Format(time.RFC1123Z), time.Now().UnixNano(), i)
	if err := step(body+".\r\n", "250"); err != nil {
		return err
	}
	return step("QUIT\r\n", "221")
}

// smtpExpect reads one (possibly multi-line) reply and checks its code.
func smtpExpect(r *bufio.Reader, code, after string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reply to %q: %w", strings.TrimSpace(after), err)
		}
		if !strings.HasPrefix(line, code) {
			return fmt.Errorf("reply to %q: %q, want %s", strings.TrimSpace(after), strings.TrimSpace(line), code)
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}

// smtpCountMaildir counts the files in dir/new and dir/cur.
func smtpCountMaildir(dir string) (int, error) {
	total := 0
	for _, sub := range []string{"new", "cur"} {
		f, err := os.Open(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		total += len(names)
	}
	return total, nil
}

// smtpWaitArrivals polls the Maildir until want new files are there or the
// deadline passes, and returns how many arrived.
func smtpWaitArrivals(dir string, base, want int, deadline time.Time) int {
	for {
		n, err := smtpCountMaildir(dir)
		if err == nil && n-base >= want {
			return n - base
		}
		if time.Now().After(deadline) {
			return n - base
		}
		time.Sleep(5 * time.Millisecond) // polling a directory another process fills
	}
}

func smtpParsePIDs(s string) ([]int, error) {
	var pids []int
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("-server-pid %q: %w", s, err)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// smtpTreeCPU is the CPU time of the trees: every living process's own and
// reaped children's time. A child that ends between two readings is
// counted in its parent's cutime/cstime once reaped.
func smtpTreeCPU(tops []int) (time.Duration, error) {
	var ticks int64
	for _, st := range processTree(tops...) {
		ticks += st.cpu
	}
	const clkTck = 100 // sysconf(_SC_CLK_TCK) on Linux
	return time.Duration(ticks) * time.Second / clkTck, nil
}

// smtpTreeMemory sums VmRSS and VmHWM (kB) over the trees.
func smtpTreeMemory(tops []int) (rss, hwm int64) {
	for pid := range processTree(tops...) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		rss += kbField(b, "VmRSS:")
		hwm += kbField(b, "VmHWM:")
	}
	return rss, hwm
}
