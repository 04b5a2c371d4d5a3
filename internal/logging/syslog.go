package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"sync"
	"time"
)

// Why not syslog.New: log/syslog writes the local format (no host name,
// which rsyslog's and journald's socket readers expect) only for the
// sockets it finds itself, and cannot be pointed at another one; given an
// address it writes the network format, whose host name those readers take
// for the tag. So the sink below writes log/syslog's local format to a
// socket of our choosing; log/syslog supplies the priority values.

// facility is where mail programs log (RFC 5424 §6.2.1, facility 2).
const facility = syslog.LOG_MAIL

// severity maps a slog level to an RFC 5424 severity (§6.2.1 table 2).
func severity(l slog.Level) syslog.Priority {
	switch {
	case l >= slog.LevelError:
		return syslog.LOG_ERR
	case l >= slog.LevelWarn:
		return syslog.LOG_WARNING
	case l >= slog.LevelInfo:
		return syslog.LOG_INFO
	}
	return syslog.LOG_DEBUG
}

// sink is the connection to the syslog daemon, shared by a handler and
// every handler derived from it (WithAttrs, WithGroup).
type sink struct {
	mu       sync.Mutex
	addr     string
	tag      string
	conn     net.Conn
	buf      bytes.Buffer // the record being formatted, under mu
	fallback io.Writer    // where a line goes when the daemon cannot take it
}

func dial(addr string) (net.Conn, error) {
	return net.DialTimeout("unixgram", addr, 5*time.Second)
}

// send writes one datagram; on failure it reconnects once (the daemon may
// have restarted) and, failing that, writes the line to the fallback.
func (s *sink) send(p syslog.Priority, msg []byte) error {
	line := fmt.Sprintf("<%d>%s %s[%d]: %s", facility|p, time.Now().Format(time.Stamp), s.tag, os.Getpid(), msg)
	_, err := s.conn.Write([]byte(line))
	if err == nil {
		return nil
	}
	if conn, derr := dial(s.addr); derr == nil {
		s.conn.Close()
		s.conn = conn
		if _, err = s.conn.Write([]byte(line)); err == nil {
			return nil
		}
	}
	if _, ferr := fmt.Fprintf(s.fallback, "%s\n", msg); ferr != nil {
		return fmt.Errorf("syslog %s: %w (stderr: %v)", s.addr, err, ferr)
	}
	return fmt.Errorf("syslog %s: %w", s.addr, err)
}

// syslogHandler formats a record with slog's text rules (without time and
// level, which the syslog header carries) and sends it as one datagram.
type syslogHandler struct {
	text slog.Handler // writes into out.buf
	out  *sink
}

func newSyslogHandler(addr, tag string, level slog.Level, fallback io.Writer) (*syslogHandler, error) {
	conn, err := dial(addr)
	if err != nil {
		return nil, err
	}
	s := &sink{addr: addr, tag: tag, conn: conn, fallback: fallback}
	text := slog.NewTextHandler(&s.buf, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	return &syslogHandler{text: text, out: s}, nil
}

func (h *syslogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.text.Enabled(ctx, l)
}

func (h *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.buf.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return err
	}
	return h.out.send(severity(r.Level), bytes.TrimSuffix(h.out.buf.Bytes(), []byte("\n")))
}

func (h *syslogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &syslogHandler{text: h.text.WithAttrs(attrs), out: h.out}
}

func (h *syslogHandler) WithGroup(name string) slog.Handler {
	return &syslogHandler{text: h.text.WithGroup(name), out: h.out}
}
