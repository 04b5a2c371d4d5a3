// Command smtpd is mailroom's SMTP server (smtpd(8)): MX (smtp), submission
// and submissions, storing accepted mail in the spool.
// The command line, the sockets, the signals and the privilege drop are
// internal/daemon's; what is smtpd's own is smtpd.Spec.
package main

import (
	"io"
	"os"

	"mailroom/internal/daemon"
	"mailroom/smtpd"
)

// exitConfig is EX_CONFIG: a bad configuration, or a refusal to run as root.
const exitConfig = daemon.ExitConfig

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return daemon.Command(smtpd.Spec(), args, stdout, stderr)
}
