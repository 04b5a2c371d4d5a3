// Command pop3d is mailroom's POP3 server (pop3d(8)): POP3 with STLS and
// POP3S over users' Maildirs.
// The command line, the sockets, the signals and the privilege drop are
// internal/daemon's; what is pop3d's own is pop3d.Spec.
package main

import (
	"io"
	"os"

	"mailroom/internal/daemon"
	"mailroom/pop3d"
)

// exitConfig is EX_CONFIG: a bad configuration, or a refusal to run as root.
const exitConfig = daemon.ExitConfig

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return daemon.Command(pop3d.Spec(), args, stdout, stderr)
}
