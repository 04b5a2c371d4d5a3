package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"
)

// runSendmail measures local submission the way a caller sees it: COMMAND
// (a sendmail(8), ours or Postfix's) is started once per message with the
// message on stdin, P at a time, and each invocation's latency is the time
// from fork until it exits 0 — for both, the moment the message is durable
// in the maildrop. Printed: the rate over the whole run, the median, p95
// and maximum latency per invocation, and the CPU of the children
// (RUSAGE_CHILDREN: sendmail and whatever it ran, such as Postfix's
// postdrop).
func runSendmail(args []string) error {
	fs := flag.NewFlagSet("sendmail", flag.ExitOnError)
	n := fs.Int("n", 500, "submissions")
	p := fs.Int("p", 1, "submissions in parallel")
	msgPath := fs.String("msg", "", "message file fed on stdin")
	uid := fs.Int("uid", -1, "run COMMAND as this uid (needs root)")
	gid := fs.Int("gid", -1, "run COMMAND as this gid (needs root)")
	timeout := fs.Duration("timeout", 5*time.Minute, "stop starting submissions after this long")
	fs.Parse(args)
	argv := fs.Args()
	if *msgPath == "" || len(argv) == 0 {
		return fmt.Errorf("sendmail: need -msg FILE -- COMMAND")
	}
	msg, err := os.ReadFile(*msgPath)
	if err != nil {
		return err
	}
	cred := sendmailCredential(*uid, *gid)
	// One slot per submission: workers never write the same index.
	lat := make([]time.Duration, *n)
	cpu0 := rusageCPU(syscall.RUSAGE_CHILDREN)
	res := parallel(*n, *p, *timeout, func(i int) error {
		d, err := sendmailOnce(argv, msg, cred)
		lat[i] = d
		return err
	})
	res.cpu = rusageCPU(syscall.RUSAGE_CHILDREN) - cpu0
	p50, p95, worst := sendmailPercentiles(lat)
	res.print("sendmail", fmt.Sprintf(" msg_bytes=%d lat_p50_ms=%.2f lat_p95_ms=%.2f lat_max_ms=%.2f",
		len(msg), ms(p50), ms(p95), ms(worst)))
	if res.failed > 0 {
		return fmt.Errorf("sendmail: %d of %d submissions failed", res.failed, res.n)
	}
	return nil
}

func sendmailCredential(uid, gid int) *syscall.Credential {
	if uid < 0 {
		return nil
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
}

// sendmailOnce runs one submission and returns how long it took; a
// non-zero exit is an error carrying sendmail's one-line reason.
func sendmailOnce(argv []string, msg []byte, cred *syscall.Credential) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return d, nil
}

// sendmailPercentiles returns the median, 95th percentile (nearest rank)
// and maximum of the submissions that ran (zero entries never started).
func sendmailPercentiles(lat []time.Duration) (p50, p95, worst time.Duration) {
	ran := slices.DeleteFunc(slices.Clone(lat), func(d time.Duration) bool { return d == 0 })
	if len(ran) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ran)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(ran))+0.999999) - 1 // nearest rank, 1-based
		return ran[min(max(i, 0), len(ran)-1)]
	}
	return rank(0.50), rank(0.95), ran[len(ran)-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
