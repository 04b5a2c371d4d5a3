// Command deliver is mailroom's delivery agent (deliver(8)): in MDA mode
// one message on standard input, delivered into Maildirs; with --queue the
// daemon that consumes the spool.
//
//	deliver [-c FILE] [-f SENDER] [-a ORIGINAL_RECIPIENT] [-m FOLDER] [-v] [-d USER] [RECIPIENT...] < message
//	deliver [-c FILE] --queue
//	deliver [-c FILE] --explain ADDRESS [--json]
//	deliver [-c FILE] --check-config | --print-config
//
// The options are parsed by hand (deliver.ParseArgs), not by urfave/cli:
// MTAs and scripts write glued values such as -fsender, which Go's flag
// package refuses. All behaviour lives in package deliver; this file turns
// the command line and the config file into a call to deliver.Run.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"mailroom/deliver"
	"mailroom/deliver/remote"
	"mailroom/internal/config"
	"mailroom/internal/daemon"
	"mailroom/internal/listen"
	"mailroom/internal/logging"
	"mailroom/internal/privs"
	"mailroom/spool"
)

// exitConfig is EX_CONFIG, the status of a failed --check-config.
const exitConfig = 78

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opt, err := deliver.ParseArgs(args)
	if err != nil {
		// RFC 3463 X.3.0: the MTA's command line for us is wrong.
		fmt.Fprintf(stderr, "5.3.0 deliver: %v\n%s", err, deliver.Usage)
		return deliver.ExitUsage
	}
	if opt.Help {
		fmt.Fprint(stdout, deliver.Usage)
		return deliver.ExitOK
	}
	path := opt.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	cfg, err := config.Load(path)
	switch {
	case err != nil && (opt.CheckConfig || opt.PrintConfig):
		fmt.Fprintf(stderr, "deliver: %v\n", err)
		return exitConfig
	case err != nil:
		// Unreadable configuration is transient: the MTA keeps the mail
		// queued while the admin fixes it (X.3.5: system incorrectly
		// configured).
		fmt.Fprintf(stderr, "4.3.5 mail system configuration error: %v\n", err)
		return deliver.ExitTempFail
	}
	switch {
	case opt.CheckConfig:
		return checkConfig(cfg, path, stdout, stderr)
	case opt.PrintConfig:
		if err := config.Print(stdout, cfg); err != nil {
			fmt.Fprintf(stderr, "deliver: %v\n", err)
			return exitConfig
		}
		return deliver.ExitOK
	case opt.Queue:
		return runQueue(cfg, path, stderr)
	}
	return deliver.Run(cfg, opt, deliver.System{
		Stdin:     stdin,
		Stdout:    stdout,
		Stderr:    stderr,
		LookupEnv: os.LookupEnv,
		// log_format and log_level; deliver holds back what goes to w
		// until the status line is out.
		NewLogger: func(w io.Writer) (*slog.Logger, error) {
			return logging.New(cfg.LogFormat, cfg.LogLevel, w, "deliver")
		},
		BeforeWrite: func() error { return dropRoot(cfg.MailRoot) },
	})
}

// dropRoot makes a deliver started as root (a cron job, a root shell, an
// MTA's root-run command) write as the owner of mail_root: mail written by
// root would be unreadable to the imapd and pop3d running as that owner,
// and root must not create files in directories other users control. It
// runs after the tables are read, so they may stay readable by root alone
// (docs/security.md). Anyone else writes as themselves, as before.
func dropRoot(mailRoot string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, err := mailOwner(mailRoot)
	if err != nil {
		return err
	}
	if err := privs.DropTo(uid, gid); err != nil {
		return fmt.Errorf("refusing to deliver as root: becoming uid %d gid %d, the owner of mail_root: %w", uid, gid, err)
	}
	return nil
}

// mailOwner is the owner of mail_root, refused if it is root.
func mailOwner(mailRoot string) (uid, gid int, err error) {
	uid, gid, err = privs.Owner(mailRoot)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0, 0, fmt.Errorf("refusing to deliver as root: mail_root %s does not exist", mailRoot)
	case err != nil:
		return 0, 0, fmt.Errorf("refusing to deliver as root: mail_root: %w", err)
	case uid == 0:
		return 0, 0, fmt.Errorf("refusing to deliver as root: mail_root %s is owned by root", mailRoot)
	case gid == 0:
		// Writing with root's group is root's privilege too.
		return 0, 0, fmt.Errorf("refusing to deliver as root: mail_root %s has group root", mailRoot)
	}
	return uid, gid, nil
}

// runQueue is deliver --queue: prepare the spool, drop root, run the
// daemon until SIGTERM; SIGHUP reads the configuration file at path again
// (reloadQueue).
func runQueue(cfg *config.Config, path string, stderr io.Writer) int {
	logs, err := logging.New(cfg.LogFormat, cfg.LogLevel, stderr, "deliver")
	if err != nil {
		fmt.Fprintf(stderr, "deliver: %v\n", err)
		return exitConfig
	}
	// Built before dropping root: relay_password_file may be root's alone.
	remoteTransport, err := remote.NewFromConfig(cfg, logs)
	if err != nil {
		logs.Error("start", "err", err)
		return exitConfig
	}
	defer remoteTransport.Close()
	if err := prepareQueue(cfg); err != nil {
		logs.Error("start", "err", err)
		return exitConfig
	}
	q, err := deliver.NewQueue(cfg, deliver.QueueOptions{Logger: logs, Remote: remoteTransport, Ready: func() { notify(logs, "READY=1") }})
	if err != nil {
		logs.Error("start", "err", err)
		return deliver.ExitTempFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		cur := cfg
		for {
			select {
			case <-hup:
				notify(logs, "RELOADING=1")
				cur = reloadQueue(q, path, cur, logs)
				notify(logs, "READY=1")
			case <-ctx.Done():
				// Deliveries in flight finish (or stay in the spool for
				// the next start); nothing new is taken.
				notify(logs, "STOPPING=1")
				return
			}
		}
	}()
	if err := q.Run(ctx); err != nil {
		logs.Error("stop", "err", err)
		return deliver.ExitTempFail
	}
	return deliver.ExitOK
}

// queueFixed are the keys deliver --queue reads only at start: the
// common ones, and those its workers, Maildir writer and remote transport
// were built with.
var queueFixed = append(append([]daemon.Fixed(nil), daemon.CommonFixed...),
	daemon.Fixed{Key: "hostname", Field: func(c *config.Config) any { return &c.Hostname }},
	daemon.Fixed{Key: "[deliver] queue_concurrency", Field: func(c *config.Config) any { return &c.Deliver.QueueConcurrency }},
	daemon.Fixed{Key: "[deliver] relay_host", Field: func(c *config.Config) any { return &c.Deliver.RelayHost }},
	daemon.Fixed{Key: "[deliver] relay_user", Field: func(c *config.Config) any { return &c.Deliver.RelayUser }},
	daemon.Fixed{Key: "[deliver] relay_password_file", Field: func(c *config.Config) any { return &c.Deliver.RelayPasswordFile }},
	daemon.Fixed{Key: "[deliver] transport_file", Field: func(c *config.Config) any { return &c.Deliver.TransportFile }},
	daemon.Fixed{Key: "[deliver] tls_security_level", Field: func(c *config.Config) any { return &c.Deliver.TLSSecurityLevel }},
	daemon.Fixed{Key: "[deliver] destination_concurrency", Field: func(c *config.Config) any { return &c.Deliver.DestinationConcurrency }},
)

// reloadQueue is SIGHUP: read and check the file, keep the keys that need
// a restart, swap in the tables and routing of the rest. A file that does
// not load or check, or whose tables do not load, is refused whole; it
// returns the configuration now in force.
func reloadQueue(q *deliver.Queue, path string, cur *config.Config, logs *slog.Logger) *config.Config {
	next, err := daemon.ReadConfig(path, cur)
	if err == nil {
		restart := daemon.KeepFixed(cur, next, queueFixed)
		if err = q.ReloadConfig(next); err == nil {
			for _, key := range restart {
				logs.Warn("reload", "what", "config", "key", key, "reason", "needs a restart")
			}
			logs.Info("reload", "what", "config", "file", path)
			return next
		}
	}
	logs.Error("reload", "what", "config", "file", path, "err", err, "action", "keeping the old configuration")
	return cur
}

func notify(logs *slog.Logger, state string) {
	if err := listen.Notify(state); err != nil {
		logs.Warn("notify", "err", err)
	}
}

// prepareQueue creates the spool and, started as root, gives it to the
// ids the daemons share (privs.MailIDs: the owner of mail_root, the group
// of the [smtpd] user, which smtpd writes with) and drops to them, so the
// daemon can read what smtpd spools; it refuses to go on as root.
func prepareQueue(cfg *config.Config) error {
	if os.Geteuid() != 0 {
		if os.Getuid() == 0 {
			return errors.New("refusing to run the queue as uid 0")
		}
		return spool.Setup(cfg.SpoolDir)
	}
	uid, gid, err := privs.MailIDs(cfg.MailRoot, cfg.Smtpd.User)
	if err != nil {
		return fmt.Errorf("refusing to run the queue as root: %w", err)
	}
	if err := spool.Setup(cfg.SpoolDir); err != nil {
		return err
	}
	if err := spool.SetOwner(cfg.SpoolDir, uid, gid); err != nil {
		return err
	}
	if err := privs.DropTo(uid, gid); err != nil {
		return fmt.Errorf("refusing to run as root: becoming uid %d gid %d: %w", uid, gid, err)
	}
	return nil
}

// checkRemote builds the remote transport the queue daemon would use
// (relay_host, the relay password, transport_file, tls_security_level)
// and closes it again: building it opens no connection.
func checkRemote(cfg *config.Config) error {
	t, err := remote.NewFromConfig(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	return t.Close()
}

// checkConfig validates the file and the tables it names.
func checkConfig(cfg *config.Config, path string, stdout, stderr io.Writer) int {
	err := errors.Join(cfg.Check(), deliver.CheckTables(cfg), checkRemote(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "deliver: %s: %v\n", path, err)
		return exitConfig
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return deliver.ExitOK
}
