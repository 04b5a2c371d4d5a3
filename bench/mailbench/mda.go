package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// runMDA starts COMMAND once per message, message on stdin, and counts the
// CPU of the children (RUSAGE_CHILDREN covers every reaped descendant).
func runMDA(args []string) error {
	fs := flag.NewFlagSet("mda", flag.ExitOnError)
	n := fs.Int("n", 500, "deliveries")
	p := fs.Int("p", 1, "deliveries in parallel")
	msgPath := fs.String("msg", "", "message file fed on stdin")
	uid := fs.Int("uid", -1, "run COMMAND as this uid (needs root)")
	gid := fs.Int("gid", -1, "run COMMAND as this gid (needs root)")
	timeout := fs.Duration("timeout", 5*time.Minute, "stop starting deliveries after this long")
	fs.Parse(args)
	argv := fs.Args()
	if *msgPath == "" || len(argv) == 0 {
		return fmt.Errorf("mda: need -msg FILE -- COMMAND")
	}
	msg, err := os.ReadFile(*msgPath)
	if err != nil {
		return err
	}
	var cred *syscall.Credential
	if *uid >= 0 {
		cred = &syscall.Credential{Uid: uint32(*uid), Gid: uint32(*gid), NoSetGroups: true}
	}
	cpu0 := rusageCPU(syscall.RUSAGE_CHILDREN)
	res := parallel(*n, *p, *timeout, func(int) error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(msg)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%v: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		return nil
	})
	res.cpu = rusageCPU(syscall.RUSAGE_CHILDREN) - cpu0
	res.print("mda", fmt.Sprintf(" msg_bytes=%d", len(msg)))
	return nil
}
