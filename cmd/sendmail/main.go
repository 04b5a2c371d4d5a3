// Command sendmail is mailroom's sendmail(8): how local programs submit
// mail. Installed also as mailq(1) and newaliases(8), it chooses its job
// by the name it is run as. The command line is sendmail's own grammar,
// parsed by hand in package sendmail (urfave/cli cannot read -oi,
// -fADDR or a bare -q); this file only hands over the process.
package main

import (
	"os"

	"mailroom/sendmail"
)

func main() {
	os.Exit(sendmail.Run(os.Args[0], os.Args[1:], sendmail.OSSystem()))
}
