package pop3d

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"mailroom/internal/tlsconf"
)

// state is a POP3 session state (RFC 1939 §3). UPDATE is not a state a
// command can run in: it is what QUIT does in TRANSACTION.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
)

func (st state) String() string {
	if st == stateTransaction {
		return "TRANSACTION"
	}
	return "AUTHORIZATION"
}

// command is one entry of the command table.
type command struct {
	states  state // the states it is valid in
	handler func(ss *session, arg string) error
}

// commands maps keywords (upper case; RFC 1939 §3 makes them
// case-insensitive) to handlers. A handler's error ends the session.
var commands map[string]command

func init() {
	both := stateAuthorization | stateTransaction
	commands = map[string]command{
		"CAPA": {both, (*session).cmdCapa},
		"QUIT": {both, (*session).cmdQuit},
		"NOOP": {stateTransaction, (*session).cmdNoop},
		"STLS": {stateAuthorization, (*session).cmdStls},
		"USER": {stateAuthorization, (*session).cmdUser},
		"PASS": {stateAuthorization, (*session).cmdPass},
		"AUTH": {stateAuthorization, (*session).cmdAuth},
		"STAT": {stateTransaction, (*session).cmdStat},
		"LIST": {stateTransaction, (*session).cmdList},
		"RETR": {stateTransaction, (*session).cmdRetr},
		"DELE": {stateTransaction, (*session).cmdDele},
		"RSET": {stateTransaction, (*session).cmdRset},
		"TOP":  {stateTransaction, (*session).cmdTop},
		"UIDL": {stateTransaction, (*session).cmdUidl},
	}
}

// errClose ends a session after the reply already written.
var errClose = errors.New("close")

// errShutdown is returned by reads once the server is shutting down.
var errShutdown = errors.New("server shutting down")

// session is one client connection.
type session struct {
	srv    *Server
	conn   net.Conn // the raw connection
	wire   net.Conn // what r and w use: a deadlineConn, or TLS over one
	r      *bufio.Reader
	w      *bufio.Writer
	id     string
	log    *slog.Logger
	remote net.Addr

	state        state
	tls          bool
	user         string // from USER, waiting for PASS
	address      string // the logged-in user
	authFailures int
	errors       int
	drop         *maildrop // the locked snapshot, from login on
}

func newSession(s *Server, c net.Conn) *session {
	ss := &session{srv: s, conn: c, id: connID(), remote: c.RemoteAddr(), state: stateAuthorization}
	ss.log = s.Logger.With("conn", ss.id)
	dc := &deadlineConn{Conn: c, read: ss.readTimeout, write: ss.readTimeout}
	ss.setWire(dc)
	return ss
}

// setWire points the reader and writer at c. Bytes buffered from the old
// wire are dropped: after STLS that is what RFC 2595 §4 asks for.
func (ss *session) setWire(c net.Conn) {
	ss.wire = c
	ss.r = bufio.NewReaderSize(readerFunc(ss.read), 1024)
	if ss.w != nil {
		ss.w.Reset(c)
	}
}

// writerPool holds the reply buffers of sessions: a session takes one when
// a command arrives and gives it back once its replies are flushed and it
// waits for the next, so the many sessions of a server that sit idle
// between commands hold no 32 KB buffer each.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32*1024) }}

// out returns the session's reply writer, taking one from the pool if it
// has none.
func (ss *session) out() *bufio.Writer {
	if ss.w == nil {
		ss.w = writerPool.Get().(*bufio.Writer)
		ss.w.Reset(ss.wire)
	}
	return ss.w
}

// releaseWriter flushes the replies and gives the writer back to the pool.
// After a failed flush the writer is kept: the session is ending.
func (ss *session) releaseWriter() error {
	if ss.w == nil {
		return nil
	}
	if err := ss.w.Flush(); err != nil {
		return err
	}
	ss.w.Reset(nil)
	writerPool.Put(ss.w)
	ss.w = nil
	return nil
}

// read is the session's only input: it refuses to block once the server
// is shutting down (Shutdown's interrupt wakes a blocked one).
func (ss *session) read(p []byte) (int, error) {
	if ss.srv.shutting.Load() {
		return 0, errShutdown
	}
	n, err := ss.wire.Read(p)
	if err != nil && ss.srv.shutting.Load() {
		return n, errShutdown
	}
	return n, err
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// interrupt wakes a session blocked reading a command (Shutdown).
func (ss *session) interrupt() { _ = ss.conn.SetReadDeadline(time.Now()) }

func (ss *session) readTimeout() time.Duration {
	if ss.state == stateTransaction {
		return ss.srv.idleTimeout()
	}
	return ss.srv.loginTimeout()
}

func (ss *session) run(implicitTLS bool) {
	start := time.Now()
	ss.log.Info("connect", "client", ss.remote.String(), "tls", implicitTLS)
	err := ss.serve(implicitTLS)
	// The mailbox lock goes first, then the last reply: a client that
	// reconnects as soon as it reads +OK to QUIT (fetchmail polling) must
	// not find its own session still holding the mailbox ([IN-USE]).
	if ss.drop != nil {
		if rerr := ss.drop.release(); rerr != nil {
			ss.log.Error("unlock", "err", rerr)
		}
	}
	// Whatever ended the session, the last reply goes out (best effort:
	// the client may be gone).
	_ = ss.releaseWriter()
	if cerr := ss.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	attrs := []any{"duration", time.Since(start).Round(time.Millisecond)}
	if ss.address != "" {
		attrs = append(attrs, "user", ss.address)
	}
	if err != nil && !errors.Is(err, errClose) && !errors.Is(err, io.EOF) {
		attrs = append(attrs, "err", err)
	}
	ss.log.Info("disconnect", attrs...)
}

func (ss *session) serve(implicitTLS bool) error {
	if implicitTLS {
		if err := ss.handshake(); err != nil {
			return err
		}
	}
	// RFC 1939 §4: the greeting. No APOP timestamp: APOP needs
	// plaintext-equivalent passwords, which mailroom does not keep.
	ss.reply("+OK %s POP3 server ready", ss.srv.Hostname)
	for {
		if err := ss.flushIfIdle(); err != nil {
			return err
		}
		line, err := readLine(ss.r, MaxLine)
		switch {
		case err == nil:
		case errors.Is(err, errLineTooLong):
			if err := ss.fail("line too long"); err != nil {
				return err
			}
			continue
		default:
			return ss.readFailed(err)
		}
		if err := ss.dispatch(string(line)); err != nil {
			return err
		}
	}
}

// readFailed ends the session after a failed read, telling the client why
// when it may still listen. Nothing is expunged: only QUIT does that.
func (ss *session) readFailed(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdown):
		ss.reply("-ERR [SYS/TEMP] server shutting down")
	case errors.Is(err, errLineHuge):
		ss.reply("-ERR line too long, closing connection")
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		ss.reply("-ERR disconnected for inactivity")
		err = fmt.Errorf("idle timeout: %w", err)
	}
	return err
}

// flushIfIdle sends the buffered replies unless more pipelined commands
// are already waiting (RFC 2449 §6.6 PIPELINING).
func (ss *session) flushIfIdle() error {
	if ss.r.Buffered() > 0 {
		return nil
	}
	return ss.releaseWriter()
}

func (ss *session) dispatch(line string) error {
	ss.out() // handlers may use ss.w directly
	keyword, arg, _ := strings.Cut(line, " ")
	keyword = strings.ToUpper(keyword)
	cmd, ok := commands[keyword]
	switch {
	case !ok:
		return ss.fail("unknown command")
	case cmd.states&ss.state == 0:
		return ss.fail("command not valid in " + ss.state.String() + " state")
	}
	return cmd.handler(ss, arg)
}

// reply writes one response line.
func (ss *session) reply(format string, args ...any) {
	w := ss.out()
	fmt.Fprintf(w, format, args...)
	w.WriteString("\r\n")
}

// fail answers -ERR text and counts the error; too many close the
// connection (a client looping on errors is either broken or probing).
func (ss *session) fail(text string) error {
	ss.errors++
	if ss.errors >= ss.srv.maxErrors() {
		ss.reply("-ERR %s; too many errors, closing connection", text)
		return errClose
	}
	ss.reply("-ERR %s", text)
	return nil
}

// handshake runs the TLS server handshake on the current wire and
// switches the session to it.
func (ss *session) handshake() error {
	cfg := ss.srv.tlsConfig()
	if cfg == nil {
		return errors.New("TLS is not configured")
	}
	tc := tls.Server(ss.wire, cfg)
	// The deadlineConn under tc moves the deadline on every read, so a
	// slow-dripping client could stretch the handshake: the context bounds
	// it as a whole.
	ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	ss.tls = true
	ss.setWire(tc)
	ss.log.Info("tls", "tls", tlsconf.Describe(tc.ConnectionState()))
	return nil
}
