// Command deliver is mailroom's delivery agent; this is its MDA mode
// (deliver(8)): one message on standard input, delivered into Maildirs.
//
//	deliver [-c FILE] [-f SENDER] [-a ORIGINAL_RECIPIENT] [-m FOLDER] [-v] [-d USER] [RECIPIENT...] < message
//	deliver [-c FILE] --explain ADDRESS [--json]
//	deliver [-c FILE] --check-config | --print-config
//
// The options are parsed by hand (deliver.ParseArgs), not by urfave/cli:
// MTAs and scripts write glued values such as -fsender, which Go's flag
// package refuses. All behaviour lives in package deliver; this file turns
// the command line and the config file into a call to deliver.Run.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"mailroom/deliver"
	"mailroom/internal/config"
	"mailroom/internal/logging"
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
	})
}

// checkConfig validates the file and the tables it names.
func checkConfig(cfg *config.Config, path string, stdout, stderr io.Writer) int {
	err := errors.Join(cfg.Check(), deliver.CheckTables(cfg))
	if err != nil {
		fmt.Fprintf(stderr, "deliver: %s: %v\n", path, err)
		return exitConfig
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return deliver.ExitOK
}
