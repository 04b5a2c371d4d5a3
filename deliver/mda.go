package deliver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/logging"
	"mailroom/internal/route"
	"mailroom/maildir"
)

// System is what Run may touch of the process: its standard streams, its
// environment, its clock and its log. cmd/deliver passes the real ones;
// tests pass their own.
type System struct {
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	LookupEnv func(string) (string, bool) // nil: an empty environment
	Now       func() time.Time            // nil: time.Now

	// NewLogger builds the run's logger (cmd/deliver: internal/logging
	// from log_format and log_level). Whatever the logger writes to w
	// (logfmt lines, syslog's fallback) Run holds back and copies to
	// Stderr after the status line, on success or with -v only; a logger
	// writing elsewhere (syslog) gets every line as it happens. nil means
	// logfmt at cfg.LogLevel.
	NewLogger func(w io.Writer) (*slog.Logger, error)

	// BeforeWrite, if set, is called once in MDA mode after the accounts
	// and aliases are loaded and before the message is read or anything
	// is written. cmd/deliver drops root here: the tables may be readable
	// by root alone, the Maildirs must not be written by root. An error
	// defers the message (4.3.5, exit 75) with the error's text as the
	// status line, so it should name the problem for the administrator.
	// Run itself never changes the process's credentials.
	BeforeWrite func() error
}

func (s System) env(name string) (string, bool) {
	if s.LookupEnv == nil {
		return "", false
	}
	return s.LookupEnv(name)
}

func (s System) newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, error) {
	if s.NewLogger == nil {
		return logging.New(logging.FormatLogfmt, cfg.LogLevel, w, "deliver")
	}
	return s.NewLogger(w)
}

func (s System) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Run delivers the message on sys.Stdin as opt says (or explains a route)
// and returns the exit status. On failure the first line on sys.Stderr is
// the RFC 3463 status text of the outcome that decided the exit status.
func Run(cfg *config.Config, opt Options, sys System) int {
	if opt.Explain != "" {
		return explain(cfg, opt, sys)
	}
	m := &mda{cfg: cfg, opt: opt, sys: sys, start: sys.now()}
	logs, err := sys.newLogger(cfg, &m.logBuf)
	if err != nil {
		fmt.Fprintf(sys.Stderr, "4.3.5 mail system configuration error: %v\n", err)
		return ExitTempFail
	}
	if opt.QueueID != "" {
		// The MTA's queue id (Postfix pipe(8) ${queue_id}) ties every line
		// of this run to the MTA's own log lines about the message.
		logs = logs.With("msgid", opt.QueueID)
	}
	m.logs = logs
	final := m.run()
	if final.failed() {
		fmt.Fprintln(sys.Stderr, final)
		for _, o := range m.failures {
			if o != final {
				fmt.Fprintln(sys.Stderr, o)
			}
		}
		if final.code == ExitUsage {
			fmt.Fprint(sys.Stderr, Usage)
		}
	}
	if !final.failed() || opt.Verbose {
		// Logs go after the status line: Postfix quotes a failed command's
		// output in the bounce, and mailbox paths have no place there.
		sys.Stderr.Write(m.logBuf.Bytes())
	}
	return final.code
}

// mda is one run of deliver in MDA mode.
type mda struct {
	cfg   *config.Config
	opt   Options
	sys   System
	start time.Time

	tables   *tables
	sender   string
	failures []outcome // one per failed recipient, in order
	logs     *slog.Logger
	logBuf   bytes.Buffer
}

func (m *mda) run() outcome {
	rcpts := m.recipients()
	if len(rcpts) == 0 {
		return permFail(ExitUsage, "5.3.0", "no recipient: give RECIPIENT or -d USER, or set $RECIPIENT")
	}
	if o := m.load(); o.failed() {
		return o
	}
	if m.sys.BeforeWrite != nil {
		if err := m.sys.BeforeWrite(); err != nil {
			m.logs.Error("privileges", "err", err)
			return tempFail("4.3.5", "%v", err)
		}
	}
	br := bufio.NewReaderSize(m.sys.Stdin, headerScanLimit)
	env, err := inspect(br)
	m.sender = m.envelopeSender(env)
	if err != nil {
		return m.failAll(rcpts, classify(err, m.cfg.Deliver.OverQuota), []any{"err", err})
	}
	if strings.IndexFunc(m.sender, isControl) >= 0 {
		// It goes into Return-Path: a line break would forge header fields
		// in the stored message. RFC 3463 X.1.7: bad sender address syntax.
		return m.failAll(rcpts, permFail(ExitDataErr, "5.1.7", "envelope sender contains a control character"), nil)
	}

	final := delivered
	var groups []*group
	for _, rcpt := range rcpts {
		g, o := m.tables.plan(rcpt, env, m.sender, m.folder(), func(t route.Target) outcome {
			return targetRefusal(rcpt, t)
		})
		if o.failed() {
			m.fail(rcpt, o, nil)
			final = worse(final, o)
			continue
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return final
	}
	return worse(final, m.deliverGroups(br, groups))
}

// recipients are the operands and -d/-r values, else $RECIPIENT (set by
// Postfix's local(8) for mailbox_command and by qmail-local), so that
// "mailbox_command = deliver" works with no arguments.
func (m *mda) recipients() []string {
	if len(m.opt.Recipients) > 0 {
		return m.opt.Recipients
	}
	if r, ok := m.sys.env("RECIPIENT"); ok && r != "" {
		return []string{r}
	}
	return nil
}

// envelopeSender is -f, else $SENDER (Postfix, qmail: present and empty for
// the null sender), else the From_ line's sender, else the null sender.
// Postfix pipe(8) writes the null sender as MAILER-DAEMON unless told
// otherwise; it becomes <> here.
func (m *mda) envelopeSender(env envelope) string {
	s, ok := m.opt.Sender, m.opt.SenderSet
	if !ok {
		s, ok = m.sys.env("SENDER")
	}
	if !ok {
		s = env.fromLineSender
	}
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
	if strings.EqualFold(s, "MAILER-DAEMON") {
		return ""
	}
	return s
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// load reads the accounts and aliases. Unreadable files are a transient
// problem (the admin is probably editing them): RFC 3463 X.3.5, system
// incorrectly configured.
func (m *mda) load() outcome {
	tabs, err := loadTables(m.cfg)
	if err != nil {
		m.logs.Error("config", "err", err)
		return tempFail("4.3.5", "mail system configuration error")
	}
	m.tables = tabs
	return delivered
}

// folder is -m's folder in maildir's naming, "" when not given.
func (m *mda) folder() string {
	if m.opt.Folder == "" {
		return ""
	}
	return imapFolder(m.opt.Folder)
}

// targetRefusal is the outcome for a target MDA mode cannot serve.
func targetRefusal(rcpt string, t route.Target) outcome {
	switch t.Kind {
	case route.Remote:
		// Forwarding needs the spool; in MDA mode there is none to hand to.
		return permFail(ExitNoPerm, "5.3.3", "<%s>: forwarding to %s is not supported in MDA mode", rcpt, t.Address)
	case route.Pipe, route.File:
		return permFail(ExitNoPerm, "5.3.3", "<%s>: %s targets are not supported in MDA mode", rcpt, t.Kind)
	}
	return unusableTarget(rcpt, t)
}

// fail records a failed recipient and its log line.
func (m *mda) fail(rcpt string, o outcome, extra []any) {
	m.failures = append(m.failures, o)
	status := "bounced"
	if o.code == ExitTempFail {
		status = "deferred"
	}
	args := append([]any{"from", m.sender, "to", rcpt, "status", status, "dsn", o.status,
		"reason", o.text, "delay", m.delay()}, extra...)
	m.logs.Warn("delivery", args...)
}

// failAll records o for every recipient and returns it.
func (m *mda) failAll(rcpts []string, o outcome, extra []any) outcome {
	for _, rcpt := range rcpts {
		m.fail(rcpt, o, extra)
	}
	return o
}

func (m *mda) delay() string {
	return m.sys.now().Sub(m.start).Round(time.Millisecond).String()
}

// imapFolder maps -m's argument to maildir's folder naming: Dovecot's
// Maildir++ layout writes the hierarchy separator as '.', maildir's API as
// '/', and a level can hold no '.', so both mean the same.
func imapFolder(f string) string { return strings.ReplaceAll(f, ".", "/") }

// existingFolder is the folder the engine is given for the one asked for:
// folder itself if it exists under root, else "" (the INBOX), as
// dovecot-lda falls back. "INBOX" in any case, an invalid name and a folder
// of a Maildir not created yet are the INBOX too.
func existingFolder(root, folder string) string {
	dir, err := maildir.FolderPath(root, folder)
	if err != nil || dir == root {
		return ""
	}
	if fi, err := os.Stat(filepath.Join(dir, "cur")); err != nil || !fi.IsDir() {
		return ""
	}
	return folder
}
