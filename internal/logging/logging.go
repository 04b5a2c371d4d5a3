package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// Formats and levels, as mailroom.conf spells them.
const (
	FormatLogfmt = "logfmt"
	FormatSyslog = "syslog"
)

// DefaultSyslogAddr is the local syslog daemon's datagram socket on Linux.
const DefaultSyslogAddr = "/dev/log"

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// Options is the whole configuration of a logger.
type Options struct {
	Format string    // FormatLogfmt or FormatSyslog
	Level  string    // debug, info, warn or error: records below it are dropped
	Stderr io.Writer // logfmt's destination, and syslog's fallback
	Tag    string    // syslog tag: the program name
	// SyslogAddr is the unix datagram socket of the syslog daemon;
	// "" means DefaultSyslogAddr. Tests point it at their own socket.
	SyslogAddr string
}

// New returns the logger for format and level ("logfmt" writes to stderr;
// "syslog" to the local syslog daemon as tag, facility mail, or to stderr
// with one warning line when there is none). An unknown format or level is
// an error.
func New(format, level string, stderr io.Writer, tag string) (*slog.Logger, error) {
	return Open(Options{Format: format, Level: level, Stderr: stderr, Tag: tag})
}

// Open is New with every option, including the syslog socket.
func Open(o Options) (*slog.Logger, error) {
	lvl, ok := levels[o.Level]
	if !ok {
		return nil, fmt.Errorf("logging: unknown level %q (want debug, info, warn or error)", o.Level)
	}
	text := func() *slog.Logger {
		return slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: lvl}))
	}
	switch o.Format {
	case FormatLogfmt:
		return text(), nil
	case FormatSyslog:
		addr := o.SyslogAddr
		if addr == "" {
			addr = DefaultSyslogAddr
		}
		h, err := newSyslogHandler(addr, o.Tag, lvl, o.Stderr)
		if err != nil {
			// Logging must never stop mail: say once where the lines went.
			l := text()
			l.Warn("syslog unavailable, logging to stderr", "addr", addr, "err", err)
			return l, nil
		}
		return slog.New(h), nil
	}
	return nil, fmt.Errorf("logging: unknown format %q (want logfmt or syslog)", o.Format)
}
