package main

import (
	"errors"
	"flag"
	"fmt"

	"mailroom/spool"
)

// runPickup moves every maildrop entry of a spool into its queue, as the
// queue daemon's pickup would, so that a benchmark can start the daemon
// on a full queue/ (as Postfix's is measured from its deferred queue)
// rather than time pickup and delivery together. Run it as the spool's
// owner.
func runPickup(args []string) error {
	fs := flag.NewFlagSet("pickup", flag.ExitOnError)
	dir := fs.String("spool", "", "spool directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("pickup: -spool is required")
	}
	sp, err := spool.Open(*dir)
	if err != nil {
		return err
	}
	ids, err := sp.ListMaildrop()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := sp.Pickup(id); err != nil {
			return fmt.Errorf("pickup %s: %w", id, err)
		}
	}
	fmt.Printf("mode=pickup n=%d\n", len(ids))
	return nil
}
