package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"

	"mailroom/maildir"
)

// runEngine delivers in-process through maildir.Deliverer, P goroutines at a
// time: the engine's cost without process start, config or routing.
func runEngine(args []string) error {
	fs := flag.NewFlagSet("engine", flag.ExitOnError)
	n := fs.Int("n", 2000, "messages")
	p := fs.Int("p", 1, "deliveries in parallel")
	msgPath := fs.String("msg", "", "message file")
	dir := fs.String("dir", "", "Maildir root to deliver into")
	fs.Parse(args)
	if *dir == "" || *msgPath == "" {
		return fmt.Errorf("engine: need -msg FILE -dir MAILDIR")
	}
	msg, err := os.ReadFile(*msgPath)
	if err != nil {
		return err
	}
	d := &maildir.Deliverer{Host: "bench"}
	targets := []maildir.Target{{Root: *dir}}
	cpu0 := rusageCPU(syscall.RUSAGE_SELF)
	res := parallel(*n, *p, 5*time.Minute, func(int) error {
		results, err := d.Deliver(bytes.NewReader(msg), targets)
		if err != nil {
			return err
		}
		return results[0].Err
	})
	res.cpu = rusageCPU(syscall.RUSAGE_SELF) - cpu0
	res.print("engine", fmt.Sprintf(" msg_bytes=%d", len(msg)))
	return nil
}
