package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"mailroom/internal/config"
	"mailroom/internal/privs"
)

// Exit statuses of the daemons' command line.
const (
	ExitOK     = 0
	ExitError  = 1  // a listener failed, or anything else at run time
	ExitUsage  = 2  // the command line does not parse
	ExitConfig = 78 // EX_CONFIG: a bad configuration, or a refusal to run as root
)

// Main runs spec's command line on os.Args and exits with its status.
func Main(spec *Spec) {
	os.Exit(Command(spec, os.Args, os.Stdout, os.Stderr))
}

// Command is the command line every daemon shares:
//
//	NAME [--config FILE] [--listen [SERVICE=]ADDR]... [--inetd [--service SERVICE]]
//	NAME [--config FILE] --check-config | --print-config
//
// It returns the exit status; every error is one line "NAME: ..." on
// stderr.
func Command(spec *Spec, args []string, stdout, stderr io.Writer) int {
	code := ExitOK
	app := &cli.App{
		Name:      spec.Name,
		Usage:     spec.Usage,
		UsageText: spec.Name + " [--config FILE] [--listen [SERVICE=]ADDR]... [--inetd [--service SERVICE]] | --check-config | --print-config",
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Value: config.DefaultPath, Usage: "configuration `FILE`"},
			&cli.BoolFlag{Name: "check-config", Usage: "check the configuration and the files it names, then exit"},
			&cli.BoolFlag{Name: "print-config", Usage: "print the effective configuration, then exit"},
			&cli.StringSliceFlag{Name: "listen", Usage: listenUsage(spec)},
			&cli.BoolFlag{Name: "inetd", Usage: "serve the one connection on standard input and output"},
			&cli.StringFlag{Name: "service", Usage: "the service (" + spec.serviceNames() + ") of an --inetd or systemd Accept=yes connection"},
		},
		HideHelpCommand: true,
		Action: func(c *cli.Context) error {
			code = action(spec, c, stdout, stderr)
			return nil
		},
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return ExitUsage
	}
	return code
}

func listenUsage(spec *Spec) string {
	how := "replaces the configured addresses of every service"
	if spec.ListenPerService {
		how = "replaces that service's configured addresses"
	}
	return fmt.Sprintf("listen on `[SERVICE=]ADDR` (SERVICE: %s; default %s); %s", spec.serviceNames(), spec.Services[0].Name, how)
}

func action(spec *Spec, c *cli.Context, stdout, stderr io.Writer) int {
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return code
	}
	path := c.String("config")
	cfg, err := config.Load(path)
	if err != nil {
		return fail(ExitConfig, err)
	}
	if err := applyListen(spec, cfg, c.StringSlice("listen")); err != nil {
		return fail(ExitConfig, err)
	}
	if err := cfg.Check(); err != nil {
		return fail(ExitConfig, fmt.Errorf("%s: %w", path, err))
	}
	switch {
	case c.Bool("print-config"):
		if err := config.Print(stdout, cfg); err != nil {
			return fail(ExitConfig, err)
		}
		return ExitOK
	case c.Bool("check-config"):
		if spec.Check != nil {
			if err := spec.Check(cfg); err != nil {
				return fail(ExitConfig, fmt.Errorf("%s: %w", path, err))
			}
		}
		fmt.Fprintf(stdout, "%s: ok\n", path)
		return ExitOK
	}
	if s := c.String("service"); s != "" && spec.service(s) == nil {
		return fail(ExitConfig, fmt.Errorf("--service %s: want %s", s, spec.serviceNames()))
	}
	err = Run(stopContext(), spec, cfg, Options{
		ConfigPath: path,
		Listen:     c.StringSlice("listen"),
		Inetd:      c.Bool("inetd"),
		Service:    c.String("service"),
		Stderr:     stderr,
	})
	switch {
	case errors.Is(err, privs.ErrRoot):
		return fail(ExitConfig, err)
	case err != nil:
		return fail(ExitError, err)
	}
	return ExitOK
}

// stopContext is cancelled by the first SIGTERM or SIGINT. The signals
// stay caught until the process exits: a second SIGTERM during the stop
// must not kill it with the default action.
func stopContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		cancel()
	}()
	return ctx
}
