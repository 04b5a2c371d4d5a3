// Command smtpd is mailroom's SMTP server: MX (smtp), submission and
// submissions, storing accepted mail in the spool (smtpd(8)). All
// behaviour lives in package smtpd; this file turns flags and the
// configuration file into a call to smtpd.Run.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"mailroom/internal/config"
	"mailroom/smtpd"
)

// exitConfig is EX_CONFIG: the configuration (or a table it names) is wrong.
const exitConfig = 78

func main() {
	app := &cli.App{
		Name:      "smtpd",
		Usage:     "mailroom's SMTP server (MX, submission, submissions)",
		UsageText: "smtpd [--config FILE] [--listen [NAME=]ADDR]... [--inetd [--service NAME]] | --check-config | --print-config",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Value: config.DefaultPath, Usage: "configuration `FILE`"},
			&cli.BoolFlag{Name: "check-config", Usage: "check the configuration and the tables it names, then exit"},
			&cli.BoolFlag{Name: "print-config", Usage: "print the effective configuration, then exit"},
			&cli.StringSliceFlag{Name: "listen", Usage: "listen on `[NAME=]ADDR` (NAME: smtp, submission or submissions; default smtp); replaces that service's configured addresses"},
			&cli.BoolFlag{Name: "inetd", Usage: "serve the one connection on standard input and output"},
			&cli.StringFlag{Name: "service", Usage: "the service (smtp, submission, submissions) of an --inetd or Accept=yes connection"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "smtpd: %v\n", err)
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

func run(c *cli.Context) error {
	path := c.String("config")
	cfg, err := config.Load(path)
	if err != nil {
		return cli.Exit(err, exitConfig)
	}
	if err := applyListen(cfg, c.StringSlice("listen")); err != nil {
		return cli.Exit(err, exitConfig)
	}
	if err := cfg.Check(); err != nil {
		return cli.Exit(fmt.Errorf("%s: %w", path, err), exitConfig)
	}
	switch {
	case c.Bool("print-config"):
		if err := config.Print(os.Stdout, cfg); err != nil {
			return cli.Exit(err, exitConfig)
		}
		return nil
	case c.Bool("check-config"):
		if err := smtpd.Check(cfg); err != nil {
			return cli.Exit(fmt.Errorf("%s: %w", path, err), exitConfig)
		}
		fmt.Printf("%s: ok\n", path)
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return smtpd.Run(ctx, cfg, smtpd.Options{Inetd: c.Bool("inetd"), Service: c.String("service")})
}

// applyListen puts --listen addresses in place of the configured ones:
// "name=addr" for a service, a plain address for smtp. The first address
// given for a service replaces its list, later ones add to it.
func applyListen(cfg *config.Config, flags []string) error {
	replaced := map[string]bool{}
	for _, f := range flags {
		name, addr, ok := strings.Cut(f, "=")
		if !ok {
			name, addr = smtpd.ServiceSMTP, f
		}
		var list *[]string
		switch name {
		case smtpd.ServiceSMTP:
			list = &cfg.Smtpd.ListenSMTP
		case smtpd.ServiceSubmission:
			list = &cfg.Smtpd.ListenSubmission
		case smtpd.ServiceSubmissions:
			list = &cfg.Smtpd.ListenSubmissions
		default:
			return fmt.Errorf("--listen %s: unknown service %q (smtp, submission, submissions)", f, name)
		}
		if addr == "" {
			return fmt.Errorf("--listen %s: empty address", f)
		}
		if !replaced[name] {
			*list, replaced[name] = nil, true
		}
		*list = append(*list, addr)
	}
	return nil
}
