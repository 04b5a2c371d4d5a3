package smtpd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// connState is one client connection: what outlives go-smtp's sessions
// (a STARTTLS ends one session and the next EHLO starts another).
type connState struct {
	s        *Server
	id       string
	service  string
	raw      *watchedConn
	obs      *observer
	remote   net.Addr
	ip       string
	loopback bool
	log      *slog.Logger
	start    time.Time

	esmtp        atomic.Bool // the last greeting was EHLO
	errors       atomic.Int64
	messages     atomic.Int64
	loggedReject atomic.Bool // the session logged the error reply about to go out
	bareData     atomic.Bool // the observer saw a bare CR or LF inside DATA
	closeAfter   atomic.Bool // close once the next reply is out

	mu           sync.Mutex
	smtpConn     *smtp.Conn // go-smtp's view of the connection, from NewSession
	inTx         bool       // between an accepted MAIL and the end of its transaction
	draining     bool       // the server is shutting down
	tlsLogged    bool
	authFailures int
}

// serve runs the SMTP dialogue until the connection ends.
func (cs *connState) serve() {
	cs.log.Info("connect", "service", cs.service, "client", cs.remote.String())
	var nc net.Conn = cs.raw
	if cs.service == ServiceSubmissions {
		// RFC 8314 §3.3: implicit TLS; go-smtp does the handshake
		// before its greeting when it is given a *tls.Conn.
		nc = tls.Server(cs.raw, cs.s.tlsConfig())
	}
	gs := cs.s.newSMTPServer(cs)
	// Serve returns once the connection is closed; Shutdown then waits
	// for go-smtp's connection goroutine to return, so the counts below
	// are final.
	_ = gs.Serve(&oneShot{conn: nc, done: cs.raw.done})
	_ = gs.Shutdown(context.Background())
	cs.close()
	cs.log.Info("disconnect", "messages", cs.messages.Load(), "errors", cs.errors.Load(),
		"duration", time.Since(cs.start).Round(time.Millisecond))
}

// close ends the connection; go-smtp's next read or write fails.
func (cs *connState) close() { cs.raw.Close() }

// drain is Shutdown's request: close now if no transaction is under way,
// else when it ends (endTx).
func (cs *connState) drain() {
	cs.mu.Lock()
	cs.draining = true
	idle := !cs.inTx
	cs.mu.Unlock()
	if idle {
		cs.close()
	}
}

// beginTx marks an accepted MAIL; it reports false when the server is
// shutting down.
func (cs *connState) beginTx() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.draining {
		return false
	}
	cs.inTx = true
	return true
}

// endTx marks the end of a transaction (its reply is out, or it was
// reset); a draining connection closes now.
func (cs *connState) endTx() {
	cs.mu.Lock()
	cs.inTx = false
	draining := cs.draining
	cs.mu.Unlock()
	if draining {
		cs.close()
	}
}

// setSMTPConn records go-smtp's connection (for TLS state and for writing
// our own 421 through the TLS layer).
func (cs *connState) setSMTPConn(c *smtp.Conn) {
	cs.mu.Lock()
	cs.smtpConn = c
	cs.mu.Unlock()
}

// tlsState returns the connection's TLS state, if it has one.
func (cs *connState) tlsState() (tls.ConnectionState, bool) {
	cs.mu.Lock()
	c := cs.smtpConn
	cs.mu.Unlock()
	if c == nil {
		return tls.ConnectionState{}, false
	}
	return c.TLSConnectionState()
}

// rejected is called by the session when it logged the reason of the
// error reply it returns, so that replyError does not log it again.
func (cs *connState) rejected(msg string, args ...any) {
	cs.loggedReject.Store(true)
	cs.log.Info(msg, args...)
}

// replyError counts an error reply (final line, 4xx or 5xx) and enforces
// max_errors.
func (cs *connState) replyError(code int, line string) {
	n := cs.errors.Add(1)
	if !cs.loggedReject.Swap(false) {
		cs.log.Info("reject", "reply", line)
	}
	if max := cs.s.cfg.Smtpd.MaxErrors; code != 421 && max > 0 && n >= max {
		cs.tooManyErrors()
	}
}

// tooManyErrors ends a connection that has had max_errors error replies
// (Postfix's smtpd_hard_error_limit).
func (cs *connState) tooManyErrors() {
	cs.log.Info("reject", "reason", "too many errors", "errors", cs.errors.Load())
	cs.mu.Lock()
	c := cs.smtpConn
	cs.mu.Unlock()
	var w net.Conn = cs.raw
	if c != nil {
		w = c.Conn() // the TLS layer after STARTTLS
	} else if cs.service == ServiceSubmissions {
		w = nil // no way to write through TLS yet; just close
	}
	if w != nil {
		fmt.Fprintf(w, "421 4.7.0 %s Error: too many errors\r\n", cs.s.cfg.Hostname)
		cs.obs.synced()
	}
	cs.close()
}

// forbidden ends a connection that sent an HTTP request line.
func (cs *connState) forbidden(verb string) {
	cs.log.Warn("forbidden", "command", verb, "reason", "non-SMTP command")
	cs.close()
}

func (cs *connState) logPanic(r any) {
	cs.log.Error("panic", "err", fmt.Sprint(r), "stack", string(debug.Stack()))
}

// errorLog is go-smtp's ErrorLog for one connection: failed handshakes,
// I/O errors and recovered panics, with the connection's id.
type errorLog struct{ cs *connState }

func (l errorLog) Printf(format string, v ...any) { l.print(fmt.Sprintf(format, v...)) }
func (l errorLog) Println(v ...any)               { l.print(fmt.Sprintln(v...)) }

func (l errorLog) print(s string) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "panic") {
		l.cs.log.Error("panic", "err", s)
		return
	}
	l.cs.log.Info("error", "err", s)
}
