// Command imapd is mailroom's IMAP server (imapd(8)): IMAP4rev1 and
// IMAP4rev2 with STARTTLS and implicit TLS over users' Maildirs. This file turns the command line and the
// config file into a call to imapd.Run.
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

	"mailroom/imapd"
	"mailroom/internal/config"
)

// exitConfig is EX_CONFIG: a bad configuration, or a refusal to run as root.
const exitConfig = 78

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	code := 0
	app := &cli.App{
		Name:      "imapd",
		Usage:     "IMAP4rev1 and IMAP4rev2 server over Maildirs",
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Value: config.DefaultPath, Usage: "configuration `FILE`"},
			&cli.BoolFlag{Name: "check-config", Usage: "check the configuration and exit"},
			&cli.BoolFlag{Name: "print-config", Usage: "print the effective configuration and exit"},
			&cli.StringSliceFlag{Name: "listen", Usage: "listen on `ADDR` (imap) or imap=ADDR, imaps=ADDR instead of the default addresses"},
			&cli.BoolFlag{Name: "inetd", Usage: "serve the one connection on standard input"},
			&cli.StringFlag{Name: "service", Usage: "with --inetd or systemd Accept=yes: imap or imaps"},
		},
		Action: func(c *cli.Context) error {
			code = action(c, stdout, stderr)
			return nil
		},
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintf(stderr, "imapd: %v\n", err)
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
		_, err = imapd.Wants(cfg, c.StringSlice("listen"))
	}
	if err != nil {
		fmt.Fprintf(stderr, "imapd: %v\n", err)
		return exitConfig
	}
	switch {
	case c.Bool("check-config"):
		fmt.Fprintf(stdout, "%s: ok\n", path)
		return 0
	case c.Bool("print-config"):
		if err := config.Print(stdout, cfg); err != nil {
			fmt.Fprintf(stderr, "imapd: %v\n", err)
			return exitConfig
		}
		return 0
	}
	switch s := c.String("service"); s {
	case "", imapd.ServiceIMAP, imapd.ServiceIMAPS:
	default:
		fmt.Fprintf(stderr, "imapd: --service %s: want imap or imaps\n", s)
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = imapd.Run(ctx, cfg, imapd.Options{
		Listen:  c.StringSlice("listen"),
		Inetd:   c.Bool("inetd"),
		Service: c.String("service"),
		Stderr:  stderr,
	})
	switch {
	case errors.Is(err, imapd.ErrRoot):
		fmt.Fprintf(stderr, "imapd: %v\n", err)
		return exitConfig
	case err != nil:
		fmt.Fprintf(stderr, "imapd: %v\n", err)
		return 1
	}
	return 0
}
