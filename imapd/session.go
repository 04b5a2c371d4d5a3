package imapd

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
	"runtime/debug"
	"time"

	"mailroom/imapd/wire"
	"mailroom/internal/tlsconf"
)

// state is a session state (RFC 9051 §3); a mask in the command table.
type state uint8

const (
	stateNotAuth state = 1 << iota
	stateAuth
	stateSelected
	stateLogout
)

const (
	anyState  = stateNotAuth | stateAuth | stateSelected
	authState = stateAuth | stateSelected
)

// errClose ends a session after the response already written.
var errClose = errors.New("close")

// errShutdown is returned by reads once the server is shutting down.
var errShutdown = errors.New("server shutting down")

// session is one client connection.
type session struct {
	srv    *Server
	conn   net.Conn // the raw connection (deadlines, interrupt)
	wire   net.Conn // conn, or TLS over it
	id     string
	log    *slog.Logger
	remote net.Addr

	br *bufio.Reader
	r  *wire.Reader
	w  *wire.Writer

	state        state
	tls          bool
	user         string    // the logged-in address
	root         string    // the user's Maildir++ root
	rev2         bool      // ENABLE IMAP4rev2
	utf8         bool      // ENABLE UTF8=ACCEPT (or IMAP4rev2)
	ext          modseqExt // CONDSTORE and QRESYNC enabled (condstore.go)
	bad          int       // consecutive BAD responses
	authFailures int
	sel          *selected // the selected mailbox, in stateSelected
	// midCommand is set once a byte of a command has arrived, cleared
	// when the session waits for the next one (or for DONE): see read.
	midCommand bool
}

func newSession(s *Server, c net.Conn) *session {
	ss := &session{srv: s, conn: c, id: connID(), remote: c.RemoteAddr(), state: stateNotAuth}
	ss.log = s.Logger.With("conn", ss.id)
	ss.setWire(c)
	return ss
}

// setWire points the reader and writer at c. Bytes buffered from the old
// wire are dropped: after STARTTLS that is what RFC 9051 §6.2.1 asks for.
func (ss *session) setWire(c net.Conn) {
	ss.wire = c
	if ss.w != nil {
		ss.w.Release() // flushed by whoever switches the wire
	}
	ss.br = bufio.NewReaderSize(readerFunc(ss.read), readBufferSize)
	ss.w = wire.NewPooledWriter(writerFunc(ss.write))
	ss.w.SetUTF8(ss.utf8)
	nonSync := wire.LiteralPlus
	ss.r = wire.NewReader(ss.br, wire.Options{
		Limits:  ss.srv.limits(),
		NonSync: nonSync,
		UTF8:    ss.utf8,
		Continue: func(wire.LiteralInfo) error {
			return ss.w.Continue("go ahead")
		},
	})
}

// readBufferSize is the session's read buffer. Most commands fit; a
// longer line is gathered by the wire.Reader in its own buffer (which it
// lets go after a long command), and literal data larger than this is
// read past it, straight into the caller's buffer. Small, because every
// connection keeps it while it waits.
const readBufferSize = 1 << 10

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// read is the session's only input. Each read gets the timeout of the
// state. Once the server is shutting down it refuses to wait for a new
// command (or for the DONE of an IDLE), but a command already arriving,
// such as an APPEND literal, is read to its end: a read cut by
// Shutdown's interrupt is tried again (the bounded Shutdown closes the
// connection if the client never finishes). The check comes after the
// deadline is set, so the interrupt (which sets the deadline to now) is
// never overwritten unnoticed.
func (ss *session) read(p []byte) (int, error) {
	for range 3 {
		_ = ss.conn.SetReadDeadline(time.Now().Add(ss.readTimeout()))
		if ss.srv.shutting.Load() && !ss.midCommand {
			return 0, errShutdown
		}
		n, err := ss.wire.Read(p)
		if n > 0 {
			ss.midCommand = true
		}
		if err == nil || !ss.srv.shutting.Load() {
			return n, err
		}
		var ne net.Error
		if n > 0 || !ss.midCommand || !errors.As(err, &ne) || !ne.Timeout() {
			return n, errShutdown
		}
		// The interrupt cut a command short: read on.
	}
	return 0, errShutdown
}

func (ss *session) write(p []byte) (int, error) {
	_ = ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return ss.wire.Write(p)
}

// interrupt wakes a session blocked reading a command (Shutdown).
func (ss *session) interrupt() { _ = ss.conn.SetReadDeadline(time.Now()) }

func (ss *session) readTimeout() time.Duration {
	if ss.state&authState != 0 {
		return ss.srv.idleTimeout()
	}
	return ss.srv.loginTimeout()
}

func (ss *session) run(implicitTLS bool) {
	start := time.Now()
	ss.log.Info("connect", "client", ss.remote.String(), "tls", implicitTLS)
	err := ss.serveRecover(implicitTLS)
	ss.unselect()
	if ss.root != "" {
		ss.srv.releaseUser(ss.root)
	}
	// The last response, best effort; after the release, so a client
	// that has read its LOGOUT reply may log in again at once.
	_ = ss.w.Flush()
	if cerr := ss.conn.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	attrs := []any{"duration", time.Since(start).Round(time.Millisecond)}
	if ss.user != "" {
		attrs = append(attrs, "user", ss.user)
	}
	if err != nil && !errors.Is(err, errClose) && !errors.Is(err, io.EOF) && !errors.Is(err, errShutdown) {
		attrs = append(attrs, "err", err)
	}
	ss.log.Info("disconnect", attrs...)
}

// serveRecover runs the session; a panic ends this session only, logged
// with its stack, and the client is told.
func (ss *session) serveRecover(implicitTLS bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			ss.log.Error("panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			ss.w.Status("", "BYE", "SERVERBUG", "internal error")
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return ss.serve(implicitTLS)
}

func (ss *session) serve(implicitTLS bool) error {
	if implicitTLS {
		if err := ss.handshake(); err != nil {
			return err
		}
	}
	// RFC 9051 §7.1.1: the greeting, with the capabilities so clients
	// need not ask (RFC 9051 §7.1 CAPABILITY response code).
	ss.w.Status("", "OK", "CAPABILITY "+ss.capabilities(), "mailroom ready")
	for {
		if err := ss.flushIfIdle(); err != nil {
			return err
		}
		ss.midCommand = false
		cmd, err := ss.r.ReadCommand()
		if err != nil {
			if err := ss.readError(err); err != nil {
				return err
			}
			continue
		}
		if err := ss.dispatch(cmd); err != nil {
			return err
		}
		if ss.state == stateLogout {
			return errClose
		}
	}
}

// readError answers a command the Reader refused; it returns an error
// when the session must end.
func (ss *session) readError(err error) error {
	e, ok := wire.AsError(err)
	if !ok {
		return ss.readFailed(err)
	}
	if e.Class == wire.ClassEmpty {
		return nil
	}
	if e.StatusWord() == "BAD" {
		if ss.countBad() {
			e.Fatal = true
		}
	}
	ss.w.WriteError(e)
	if e.Fatal {
		ss.w.Status("", "BYE", "", "too many errors or unrecoverable input, closing connection")
		return errClose
	}
	return nil
}

// countBad counts a BAD response and reports whether there were too
// many in a row: a client looping on errors is broken or probing.
func (ss *session) countBad() bool {
	ss.bad++
	return ss.bad >= ss.srv.maxBad()
}

// readFailed ends the session after a failed read, telling the client why
// when it may still listen.
func (ss *session) readFailed(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, errShutdown):
		ss.w.Status("", "BYE", "", "shutting down")
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		// RFC 9051 §5.4 autologout.
		ss.w.Status("", "BYE", "", "autologout; idle for too long")
		err = fmt.Errorf("idle timeout: %w", err)
	}
	return err
}

// flushIfIdle sends the buffered responses unless more pipelined commands
// are already waiting, and then gives the write buffer back to the pool:
// a session waiting for its client holds none.
func (ss *session) flushIfIdle() error {
	if ss.br.Buffered() > 0 {
		return nil
	}
	if err := ss.w.Flush(); err != nil {
		return err
	}
	ss.w.Release()
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

// untagged writes "* " + text + CRLF for text built from the grammar.
func (ss *session) untagged(text string) {
	ss.w.Untagged()
	ss.w.Raw(text)
	ss.w.CRLF()
}
