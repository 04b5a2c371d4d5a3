package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// runRemote measures how fast an MTA drains a queue to a remote host. The
// queue is filled beforehand and the sink (Postfix's smtp-sink with -M N,
// which exits after N messages) already listens; runRemote then starts
// COMMAND — the thing that sets delivery going: mailroom's `deliver
// --queue`, Postfix's `postfix reload` or `postqueue -f` — and the clock
// runs until the sink process has exited.
//
//	-sink-pid P            the sink; its end is the finish line
//	-server-pid P[,P...]   processes already running whose whole trees
//	                       do the work (Postfix's master)
//
// COMMAND is stopped with SIGTERM once the sink is done if it still runs
// (a daemon). CPU per message is COMMAND's (with every descendant it
// reaped) plus the growth of the server trees' CPU, over -n.
func runRemote(args []string) error {
	fs := flag.NewFlagSet("remote", flag.ExitOnError)
	n := fs.Int("n", 1000, "messages the sink must receive")
	sinkPID := fs.Int("sink-pid", 0, "PID of the sink, which exits after -n messages")
	pids := fs.String("server-pid", "", "comma-separated top PIDs of an already running server")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Parse(args)
	argv := fs.Args()
	if *sinkPID <= 0 || len(argv) == 0 {
		return errors.New("remote: need -sink-pid PID -- COMMAND")
	}
	tops, err := smtpParsePIDs(*pids)
	if err != nil {
		return err
	}
	tree0, err := smtpTreeCPU(tops)
	if err != nil {
		return err
	}
	kids0 := rusageCPU(syscall.RUSAGE_CHILDREN)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	done, reaped, cmdErr := remoteWaitSink(*sinkPID, exited, start.Add(*timeout))
	elapsed := time.Since(start)
	if !reaped {
		cmdErr = remoteStop(cmd, exited)
	}
	tree1, err := smtpTreeCPU(tops)
	if err != nil {
		return err
	}
	cpu := rusageCPU(syscall.RUSAGE_CHILDREN) - kids0 + tree1 - tree0
	fmt.Printf("mode=remote n=%d finished=%t elapsed_s=%.3f rate=%.1f cpu_ms_per_msg=%.3f\n",
		*n, done, elapsed.Seconds(), float64(*n)/elapsed.Seconds(),
		float64(cpu.Microseconds())/1000/float64(max(*n, 1)))
	if cmdErr != nil {
		return fmt.Errorf("remote: %s: %w", argv[0], cmdErr)
	}
	if !done {
		return fmt.Errorf("remote: the sink did not receive %d messages within %s", *n, *timeout)
	}
	return nil
}

// remoteWaitSink polls until the sink process is gone (or a zombie its
// parent has not reaped yet), COMMAND fails, or the deadline passes. A
// COMMAND that exits 0 (postqueue -f) is fine: the work goes on in the
// server. reaped says whether COMMAND has ended.
func remoteWaitSink(pid int, exited <-chan error, deadline time.Time) (done, reaped bool, err error) {
	for {
		if !remoteAlive(pid) {
			return true, reaped, nil
		}
		select {
		case err := <-exited:
			if err != nil {
				return false, true, err
			}
			reaped, exited = true, nil // exited 0; keep waiting for the sink
		default:
		}
		if time.Now().After(deadline) {
			return false, reaped, nil
		}
		time.Sleep(2 * time.Millisecond) // polling a process that is not our child
	}
}

// remoteAlive reports whether pid runs and is not a zombie.
func remoteAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

// remoteStop ends COMMAND, which has not been reaped yet, with SIGTERM
// and 30 s of grace, and returns how it ended; a daemon that exits 0 on
// SIGTERM or dies of it counts as a clean end.
func remoteStop(cmd *exec.Cmd, exited <-chan error) error {
	select {
	case err := <-exited:
		return err
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM {
			return nil
		}
		return err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("did not stop within 30s of SIGTERM")
	}
}
