// Package admin is the "mailroom" administration command: user management
// on the passwd-file (internal/account) and a sanity check of the
// installation. cmd/mailroom only hands it argv and the standard streams.
//
// Contract with scripts: a password is read from stdin (one line; the
// newline is stripped) or from --password-file; "user list" prints one
// address per line; exit status follows sysexits(3): 0 success, 1 "check"
// found problems, 64 usage (including a --home that is relative or not
// below mail_root), 65 bad input (invalid address, unknown or duplicate
// user, bad --quota, malformed file), 74 I/O error, 75 temporary failure
// (the passwd lock was busy).
//
// "user add --quota" reads a size as mailroom.conf does (bytes, or k, M, G,
// 1024-based) and writes Dovecot's userdb_quota_rule with an explicit unit;
// "check" reports, besides file and Maildir problems, an empty domains
// list and every user whose Maildir is not below mail_root or whose domain
// is not hosted, all of which make deliver refuse that user's mail; and
// every wrong owner or mode of the spool, the passwd file, the TLS key,
// mail_root and mailroom.conf (perms.go), one line each, ending in
// "fix: " and a shell command that mends it.
package admin

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"mailroom/internal/account"
	"mailroom/internal/config"
)

// Exit statuses (sysexits.h).
const (
	ExitOK       = 0
	ExitProblems = 1  // check found problems
	ExitUsage    = 64 // EX_USAGE
	ExitDataErr  = 65 // EX_DATAERR
	ExitIOErr    = 74 // EX_IOERR
	ExitTempFail = 75 // EX_TEMPFAIL
)

// exitError carries the exit status chosen where the error was understood.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func usageErrorf(format string, a ...any) error {
	return withCode(ExitUsage, fmt.Errorf(format, a...))
}

// errProblems is returned by "check" after it has printed the problems.
var errProblems = errors.New("problems found")

// errDone ends a run that a global flag (--check-config, --print-config)
// has completed.
var errDone = errors.New("done")

// Main runs the command line args (args[0] is the program name) and returns
// the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := NewApp(stdin, stdout, stderr).Run(args)
	switch {
	case err == nil, errors.Is(err, errDone):
		return ExitOK
	case errors.Is(err, errProblems):
		return ExitProblems
	}
	fmt.Fprintf(stderr, "mailroom: %v\n", err)
	return exitCode(err)
}

// exitCode maps an error to an exit status: the one attached with
// withCode, else by kind.
func exitCode(err error) int {
	var ee *exitError
	var pe *fs.PathError
	var le *os.LinkError
	var se *os.SyscallError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, account.ErrLockTimeout):
		return ExitTempFail
	case errors.Is(err, account.ErrUserExists), errors.Is(err, account.ErrNoSuchUser):
		return ExitDataErr
	case errors.As(err, &pe), errors.As(err, &le), errors.As(err, &se):
		return ExitIOErr
	}
	return ExitDataErr
}

// NewApp builds the command tree. Errors are returned from Run, never
// turned into os.Exit by the cli package.
func NewApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "mailroom",
		Usage:     "administer mailroom users and check the installation",
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Value: config.DefaultPath, Usage: "configuration `FILE`", TakesFile: true},
			&cli.BoolFlag{Name: "check-config", Usage: "load the configuration, report errors and exit"},
			&cli.BoolFlag{Name: "print-config", Usage: "print the effective configuration and exit"},
		},
		Before:          globalFlags,
		Action:          noCommand,
		Commands:        []*cli.Command{userCommand(), checkCommand()},
		HideHelpCommand: true,
		OnUsageError:    onUsageError,
		ExitErrHandler:  func(*cli.Context, error) {},
	}
	setUsageHandler(app.Commands)
	return app
}

// onUsageError turns a flag-parsing error into exit status 64.
func onUsageError(_ *cli.Context, err error, _ bool) error {
	return withCode(ExitUsage, err)
}

// setUsageHandler installs onUsageError on every command: the cli package
// does not pass the App's handler down to subcommands.
func setUsageHandler(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		setUsageHandler(c.Subcommands)
	}
}

func noCommand(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf("unknown command %q (want user or check)", c.Args().First())
	}
	_ = cli.ShowAppHelp(c) // help text is a courtesy; the exit status says it all
	return usageErrorf("no command given")
}

// globalFlags runs --check-config and --print-config, which end the run.
func globalFlags(c *cli.Context) error {
	if !c.Bool("check-config") && !c.Bool("print-config") {
		return nil
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if c.Bool("print-config") {
		if err := config.Print(c.App.Writer, cfg); err != nil {
			return withCode(ExitIOErr, fmt.Errorf("print config: %w", err))
		}
	}
	return errDone
}

// loadConfig loads --config. When the flag was not given and the default
// file does not exist, the built-in defaults apply, so that the tool works
// before mailroom.conf is written.
func loadConfig(c *cli.Context) (*config.Config, error) {
	path := c.String("config")
	cfg, err := config.Load(path)
	switch {
	case err == nil:
		return cfg, nil
	case !c.IsSet("config") && errors.Is(err, fs.ErrNotExist):
		return config.Default(), nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return nil, withCode(ExitIOErr, err)
	}
	return nil, withCode(ExitDataErr, err)
}

// fileMissing reports whether err says a file does not exist.
func fileMissing(err error) bool { return errors.Is(err, os.ErrNotExist) }
