// Command mailroom administers a mailroom installation: users in the
// passwd-file (user add/passwd/del/list) and a sanity check (check).
// See mailroom(8); the behaviour lives in package admin.
package main

import (
	"os"

	"mailroom/admin"
)

func main() {
	os.Exit(admin.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
