// Command imapd is mailroom's IMAP server (imapd(8)): IMAP4rev1 and
// IMAP4rev2 with STARTTLS and implicit TLS over users' Maildirs.
// The command line, the sockets, the signals and the privilege drop are
// internal/daemon's; what is imapd's own is imapd.Spec.
package main

import (
	"io"
	"os"

	"mailroom/imapd"
	"mailroom/internal/daemon"
)

// exitConfig is EX_CONFIG: a bad configuration, or a refusal to run as root.
const exitConfig = daemon.ExitConfig

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return daemon.Command(imapd.Spec(), args, stdout, stderr)
}
