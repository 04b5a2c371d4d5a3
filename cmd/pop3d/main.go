// Command pop3d is mailroom's POP3 server (pop3d(8)): POP3 with STLS and
// POP3S over users' Maildirs. This file turns the command line and the
// config file into a call to pop3d.Run.
package main

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
	"mailroom/pop3d"
)

// exitConfig is EX_CONFIG: a bad configuration, or a refusal to run as root.
const exitConfig = 78

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	code := 0
	app := &cli.App{
		Name:      "pop3d",
		Usage:     "POP3 and POP3S server over Maildirs",
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Value: config.DefaultPath, Usage: "configuration `FILE`"},
			&cli.BoolFlag{Name: "check-config", Usage: "check the configuration and exit"},
			&cli.BoolFlag{Name: "print-config", Usage: "print the effective configuration and exit"},
			&cli.StringSliceFlag{Name: "listen", Usage: "listen on `ADDR` (pop3) or pop3=ADDR, pop3s=ADDR instead of the configured addresses"},
			&cli.BoolFlag{Name: "inetd", Usage: "serve the one connection on standard input"},
			&cli.StringFlag{Name: "service", Usage: "with --inetd or systemd Accept=yes: pop3 or pop3s"},
		},
		Action: func(c *cli.Context) error {
			code = action(c, stdout, stderr)
			return nil
		},
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintf(stderr, "pop3d: %v\n", err)
		return 2
	}
	return code
}

func action(c *cli.Context, stdout, stderr io.Writer) int {
	path := c.String("config")
	cfg, err := config.Load(path)
	if err == nil {
		err = cfg.Check()
	}
	if err == nil {
		_, err = pop3d.Wants(cfg, c.StringSlice("listen"))
	}
	if err != nil {
		fmt.Fprintf(stderr, "pop3d: %v\n", err)
		return exitConfig
	}
	switch {
	case c.Bool("check-config"):
		fmt.Fprintf(stdout, "%s: ok\n", path)
		return 0
	case c.Bool("print-config"):
		if err := config.Print(stdout, cfg); err != nil {
			fmt.Fprintf(stderr, "pop3d: %v\n", err)
			return exitConfig
		}
		return 0
	}
	switch s := c.String("service"); s {
	case "", pop3d.ServicePOP3, pop3d.ServicePOP3S:
	default:
		fmt.Fprintf(stderr, "pop3d: --service %s: want pop3 or pop3s\n", s)
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = pop3d.Run(ctx, cfg, pop3d.Options{
		Listen:  c.StringSlice("listen"),
		Inetd:   c.Bool("inetd"),
		Service: c.String("service"),
		Stderr:  stderr,
	})
	switch {
	case errors.Is(err, pop3d.ErrRoot):
		fmt.Fprintf(stderr, "pop3d: %v\n", err)
		return exitConfig
	case err != nil:
		fmt.Fprintf(stderr, "pop3d: %v\n", err)
		return 1
	}
	return 0
}
