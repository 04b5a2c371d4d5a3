package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runIMAP measures one IMAP server on one big mailbox, the way a client
// that syncs a whole mailbox uses it: one command at a time, each response
// read to its tagged OK before the next command (no pipelining).
//
//	-steps full   LOGIN+SELECT, then each timed: FETCH 1:* (UID FLAGS),
//	              UID FETCH 1:* (ENVELOPE) twice, UID FETCH 1:*
//	              (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]), UID SEARCH
//	              SUBJECT <word>, UID SEARCH BODY <absent word>, UID STORE 1:*
//	              +FLAGS (\Seen), UID FETCH <1,000 spread UIDs> (BODY.PEEK[])
//	              as one command, UID STORE <1,000> +FLAGS.SILENT (\Deleted)
//	              and EXPUNGE, LOGOUT
//	-steps login  LOGIN+SELECT, LOGOUT
//	-repeat N     run each step that changes nothing N times (full: FETCH
//	              FLAGS, the second ENVELOPE, HEADER.FIELDS, SEARCH SUBJECT;
//	              login: the whole login) and report the fastest: on a
//	              shared machine the minimum is the least disturbed run
//	-idle N       N connections at once (users -user with %d = 1..N), each
//	              LOGIN, SELECT INBOX, IDLE; the memory of the server's
//	              process tree (-mem-pid) before and after, per connection
//
// Responses are checked only as far as a client relies on them: a tagged
// OK for every command, one FETCH response per message, the EXPUNGE count.
// Literals ({n} at the end of a line, RFC 9051 §4.3) are read and counted,
// never parsed.
func runIMAP(args []string) error {
	fs := flag.NewFlagSet("imap", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:143", "server HOST:PORT")
	user := fs.String("user", "", "login name (with -idle: a format with %d)")
	pass := fs.String("pass", "", "password")
	steps := fs.String("steps", "full", "full or login")
	word := fs.String("search", "invoice", "a word of the subject vocabulary, for SEARCH SUBJECT")
	absent := fs.String("search-body", "xyzzy", "a word in no message, for SEARCH BODY (a full scan)")
	spread := fs.Int("spread", 1000, "messages fetched whole, and expunged, spread over the mailbox")
	idle := fs.Int("idle", 0, "hold N connections in IDLE and measure memory")
	memPID := fs.Int("mem-pid", 0, "with -idle: the server's top process")
	settle := fs.Duration("settle", 2*time.Second, "with -idle: wait this long before measuring")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up on a response after this long")
	repeat := fs.Int("repeat", 1, "run the read-only steps this many times, report the fastest")
	fs.Parse(args)
	*repeat = max(1, *repeat)
	if *user == "" {
		return fmt.Errorf("imap: need -user and -pass")
	}
	dial := func(u string) (*imapClient, error) { return dialIMAP(*addr, u, *pass, *timeout) }
	if *idle > 0 {
		return imapIdle(dial, *user, *idle, *memPID, *settle)
	}
	switch *steps {
	case "full":
		return imapFull(dial, *user, *word, *absent, *spread, *repeat)
	case "login":
		var best time.Duration
		exists := 0
		for i := 0; i < *repeat; i++ {
			start := time.Now()
			c, err := dial(*user)
			if err != nil {
				return err
			}
			d := time.Since(start)
			if err := c.logout(); err != nil {
				return err
			}
			if i == 0 || d < best {
				best = d
			}
			exists = c.exists
		}
		fmt.Printf("mode=imap steps=login msgs=%d login_select_s=%.4f repeat=%d\n", exists, best.Seconds(), *repeat)
		return nil
	}
	return fmt.Errorf("imap: -steps %q: want full or login", *steps)
}

// imapStep is one timed command of the full session.
type imapStep struct {
	key string // prefix of the key=value pairs printed
	run func() (extra string, err error)
	// again: the step changes nothing, so -repeat may run it again.
	again bool
}

func imapFull(dial func(string) (*imapClient, error), user, word, absent string, spread, repeat int) error {
	start := time.Now()
	c, err := dial(user)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	out := fmt.Sprintf("mode=imap steps=full msgs=%d login_select_s=%.4f", c.exists, time.Since(start).Seconds())
	var uids []uint32
	fetchAll := func(cmd string) func() (string, error) {
		return func() (string, error) {
			r, err := c.command(cmd, nil)
			if err != nil {
				return "", err
			}
			if r.fetches != c.exists {
				return "", fmt.Errorf("imap: %s: %d FETCH responses for %d messages", cmd, r.fetches, c.exists)
			}
			return fmt.Sprintf("_mb=%.1f", float64(r.bytes)/1e6), nil
		}
	}
	steps := []imapStep{
		{"fetch_flags", func() (string, error) {
			uids = uids[:0]
			r, err := c.command("FETCH 1:* (UID FLAGS)", func(line []byte) {
				if u, ok := fetchUID(line); ok {
					uids = append(uids, u)
				}
			})
			if err != nil {
				return "", err
			}
			if r.fetches != c.exists || len(uids) != c.exists {
				return "", fmt.Errorf("imap: FETCH 1:* (UID FLAGS): %d responses, %d UIDs, %d messages", r.fetches, len(uids), c.exists)
			}
			return "", nil
		}, true},
		{"envelope1", fetchAll("UID FETCH 1:* (ENVELOPE)"), false},
		{"envelope2", fetchAll("UID FETCH 1:* (ENVELOPE)"), true},
		{"headers", fetchAll("UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"), true},
		{"search_subject", c.search("UID SEARCH SUBJECT " + quote(word)), true},
		{"search_body", c.search("UID SEARCH BODY " + quote(absent)), false},
		{"store_seen", func() (string, error) {
			r, err := c.command(`UID STORE 1:* +FLAGS (\Seen)`, nil)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("_fetches=%d", r.fetches), nil
		}, false},
		{"fetch_spread", func() (string, error) {
			set := spreadSet(uids, spread, 0)
			r, err := c.command("UID FETCH "+set+" (BODY.PEEK[])", nil)
			if err != nil {
				return "", err
			}
			if want := strings.Count(set, ",") + 1; r.fetches != want || r.literals != want {
				return "", fmt.Errorf("imap: UID FETCH of %d whole messages: %d responses, %d literals", want, r.fetches, r.literals)
			}
			return fmt.Sprintf("_mb=%.1f", float64(r.litBytes)/1e6), nil
		}, false},
		{"store_deleted", func() (string, error) {
			_, err := c.command("UID STORE "+spreadSet(uids, spread, 1)+` +FLAGS.SILENT (\Deleted)`, nil)
			return "", err
		}, false},
		{"expunge", func() (string, error) {
			r, err := c.command("EXPUNGE", nil)
			if err != nil {
				return "", err
			}
			if want := min(spread, len(uids)); r.expunges != want {
				return "", fmt.Errorf("imap: EXPUNGE: %d expunged, want %d", r.expunges, want)
			}
			return "", nil
		}, false},
	}
	for _, s := range steps {
		n := 1
		if s.again {
			n = repeat
		}
		var best time.Duration
		var extra string
		for i := 0; i < n; i++ {
			t := time.Now()
			x, err := s.run()
			if err != nil {
				return err
			}
			if d := time.Since(t); i == 0 || d < best {
				best = d
			}
			extra = x
		}
		out += fmt.Sprintf(" %s_s=%.4f", s.key, best.Seconds())
		if extra != "" {
			out += " " + s.key + extra
		}
	}
	if err := c.logout(); err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}

// spreadSet returns a UID set of n UIDs evenly spread over uids (all of
// them if there are fewer), starting offset places into each stride, so
// that two offsets pick different messages.
func spreadSet(uids []uint32, n, offset int) string {
	n = min(n, len(uids))
	var b strings.Builder
	for i := range n {
		j := min(i*len(uids)/n+offset, len(uids)-1)
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(uids[j]), 10))
	}
	return b.String()
}

// quote makes an IMAP quoted string (RFC 9051 §4.3) of a plain word.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// search returns a step that runs a UID SEARCH and reports the hits.
func (c *imapClient) search(cmd string) func() (string, error) {
	return func() (string, error) {
		hits := 0
		_, err := c.command(cmd, func(line []byte) {
			if rest, ok := bytes.CutPrefix(line, []byte("* SEARCH")); ok {
				hits += len(bytes.Fields(rest))
			}
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("_hits=%d", hits), nil
	}
}

// fetchUID finds "UID n" in an untagged FETCH response.
func fetchUID(line []byte) (uint32, bool) {
	if !bytes.HasPrefix(line, []byte("* ")) {
		return 0, false
	}
	i := bytes.Index(line, []byte("UID "))
	if i < 0 {
		return 0, false
	}
	f := bytes.FieldsFunc(line[i+4:], func(r rune) bool { return r == ' ' || r == ')' })
	if len(f) == 0 {
		return 0, false
	}
	u, err := strconv.ParseUint(string(f[0]), 10, 32)
	return uint32(u), err == nil
}

// imapIdle holds n connections in IDLE (20 logins in flight) and measures
// the memory of the server's process tree with all of them idling.
func imapIdle(dial func(string) (*imapClient, error), userFmt string, n, pid int, settle time.Duration) error {
	before, err := treeMemory(pid)
	if err != nil {
		return err
	}
	clients := make([]*imapClient, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 20)
	var wg sync.WaitGroup
	var refused atomic.Int64
	start := time.Now()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dial(fmt.Sprintf(userFmt, i+1))
			if err == nil {
				err = c.startIdle()
			}
			if errors.Is(err, errIdleRefused) {
				// Still logged in with INBOX selected: it counts for
				// memory, and the refusals are reported.
				refused.Add(1)
				err = nil
			}
			clients[i], errs[i] = c, err
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
	time.Sleep(settle) // let the server finish what it does after "+ idling" (no protocol event to wait for)
	after, err := treeMemory(pid)
	if err != nil {
		return err
	}
	for _, c := range clients {
		if c.idleTag != "" { // else IDLE was refused
			if err := c.stopIdle(); err != nil {
				return err
			}
		}
		if err := c.logout(); err != nil {
			return err
		}
	}
	per := func(a, b int64) int64 { return (a - b) / int64(n) }
	fmt.Printf("mode=imap-idle conns=%d idle_refused=%d msgs=%d login_all_s=%.3f logins_per_s=%.1f procs_before=%d procs_after=%d pss_before_kb=%d pss_after_kb=%d rss_before_kb=%d rss_after_kb=%d pss_per_conn_kb=%d rss_per_conn_kb=%d top_rss_kb=%d top_hwm_kb=%d\n",
		n, refused.Load(), clients[0].exists, loginAll.Seconds(), float64(n)/loginAll.Seconds(), before.procs, after.procs,
		before.pss, after.pss, before.rss, after.rss, per(after.pss, before.pss), per(after.rss, before.rss),
		after.topRSS, after.topHWM)
	return nil
}

// imapClient is a minimal IMAP client: one command at a time, responses
// counted rather than parsed.
type imapClient struct {
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	timeout time.Duration
	tag     int
	idleTag string
	exists  int    // from SELECT and later EXISTS responses
	line    []byte // the response being read, literals left out
}

// imapResult is what one command's responses came to.
type imapResult struct {
	fetches, expunges int
	literals          int
	litBytes, bytes   int64 // literal octets; every octet read
}

// dialIMAP connects, reads the greeting, logs in with LOGIN (RFC 9051
// §6.2.3; the servers allow it without TLS on loopback) and selects INBOX.
func dialIMAP(addr, user, pass string, timeout time.Duration) (*imapClient, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("imap: %w", err)
	}
	c := &imapClient{conn: conn, timeout: timeout}
	c.r, c.w = bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 16<<10)
	if err := c.login(user, pass); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *imapClient) login(user, pass string) error {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.readResponse(nil); err != nil {
		return fmt.Errorf("imap: greeting: %w", err)
	}
	if !bytes.HasPrefix(c.line, []byte("* OK")) {
		return fmt.Errorf("imap: greeting: %q", c.line)
	}
	if _, err := c.command("LOGIN "+quote(user)+" "+quote(pass), nil); err != nil {
		return err
	}
	c.exists = -1
	if _, err := c.command("SELECT INBOX", nil); err != nil {
		return err
	}
	if c.exists < 0 {
		return fmt.Errorf("imap: SELECT INBOX: no EXISTS response")
	}
	return nil
}

// command sends one command and reads its responses up to the tagged one,
// which must be OK. fn, if set, sees every untagged response (literals
// left out; the slice is only valid during the call).
func (c *imapClient) command(cmd string, fn func(line []byte)) (imapResult, error) {
	var res imapResult
	tag, err := c.send(cmd)
	if err != nil {
		return res, err
	}
	return res, c.readUntil(tag, cmd, &res, fn)
}

func (c *imapClient) send(cmd string) (string, error) {
	c.tag++
	tag := "a" + strconv.Itoa(c.tag)
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.w.WriteString(tag + " " + cmd + "\r\n"); err != nil {
		return "", fmt.Errorf("imap: %s: %w", imapVerb(cmd), err)
	}
	if err := c.w.Flush(); err != nil {
		return "", fmt.Errorf("imap: %s: %w", imapVerb(cmd), err)
	}
	return tag, nil
}

// readUntil reads responses until the one tagged tag; a continuation
// request is an error (this client sends no literals).
func (c *imapClient) readUntil(tag, cmd string, res *imapResult, fn func(line []byte)) error {
	for {
		if _, err := c.readResponse(res); err != nil {
			return fmt.Errorf("imap: %s: %w", imapVerb(cmd), err)
		}
		if rest, ok := bytes.CutPrefix(c.line, []byte(tag+" ")); ok {
			if !bytes.HasPrefix(rest, []byte("OK")) {
				return fmt.Errorf("imap: %s: server said %q", imapVerb(cmd), c.line)
			}
			return nil
		}
		if !bytes.HasPrefix(c.line, []byte("* ")) {
			return fmt.Errorf("imap: %s: unexpected %q", imapVerb(cmd), c.line)
		}
		c.untagged(res)
		if fn != nil {
			fn(c.line)
		}
	}
}

// untagged counts "* n FETCH", "* n EXPUNGE" and notes "* n EXISTS".
func (c *imapClient) untagged(res *imapResult) {
	f := bytes.SplitN(c.line[2:], []byte(" "), 3)
	if len(f) < 2 {
		return
	}
	n, err := strconv.Atoi(string(f[0]))
	if err != nil {
		return
	}
	switch {
	case bytes.EqualFold(f[1], []byte("FETCH")):
		res.fetches++
	case bytes.EqualFold(f[1], []byte("EXPUNGE")):
		res.expunges++
		c.exists--
	case bytes.EqualFold(f[1], []byte("EXISTS")):
		c.exists = n
	}
}

// readResponse reads one whole response into c.line: a line, and if it
// ends in a literal's size ({n} or {n+}, RFC 9051 §4.3), the n octets
// (counted, not kept) and the rest of the response after them.
func (c *imapClient) readResponse(res *imapResult) (int64, error) {
	c.line = c.line[:0]
	var read int64
	for {
		start := len(c.line)
		for {
			chunk, err := c.r.ReadSlice('\n')
			c.line = append(c.line, chunk...)
			read += int64(len(chunk))
			if err == nil {
				break
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				return read, err
			}
		}
		c.line = bytes.TrimRight(c.line, "\r\n")
		n, ok := literalSize(c.line[start:])
		if !ok {
			if res != nil {
				res.bytes += read
			}
			return read, nil
		}
		got, err := io.CopyN(io.Discard, c.r, n)
		read += got
		if err != nil {
			return read, fmt.Errorf("literal of %d octets: %w", n, err)
		}
		if res != nil {
			res.literals++
			res.litBytes += n
		}
	}
}

// literalSize returns n if line ends with "{n}" or "{n+}".
func literalSize(line []byte) (int64, bool) {
	if !bytes.HasSuffix(line, []byte("}")) {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(line[i+1:len(line)-1], []byte("+"))
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// errIdleRefused is a NO or BAD in answer to IDLE.
var errIdleRefused = errors.New("imap: IDLE refused")

// startIdle sends IDLE (RFC 2177) and returns at the server's continuation
// request, when the connection is idling.
func (c *imapClient) startIdle() error {
	tag, err := c.send("IDLE")
	if err != nil {
		return err
	}
	for {
		if _, err := c.readResponse(nil); err != nil {
			return fmt.Errorf("imap: IDLE: %w", err)
		}
		switch {
		case bytes.HasPrefix(c.line, []byte("+")):
			c.idleTag = tag
			return nil
		case bytes.HasPrefix(c.line, []byte(tag+" ")):
			return fmt.Errorf("%w: server said %q", errIdleRefused, c.line)
		}
	}
}

// stopIdle sends DONE and reads up to IDLE's tagged OK.
func (c *imapClient) stopIdle() error {
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.w.WriteString("DONE\r\n"); err != nil {
		return fmt.Errorf("imap: DONE: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("imap: DONE: %w", err)
	}
	var res imapResult
	return c.readUntil(c.idleTag, "IDLE", &res, nil)
}

// logout ends the session and closes the connection.
func (c *imapClient) logout() error {
	_, err := c.command("LOGOUT", nil)
	return errors.Join(err, c.conn.Close())
}

func imapVerb(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) > 1 && strings.EqualFold(f[0], "UID") {
		return f[0] + " " + f[1]
	}
	if len(f) > 0 {
		return f[0]
	}
	return cmd
}
