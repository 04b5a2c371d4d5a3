// Command mailbench is mailroom's own load generator for `make bench`.
// Each mode prints one line of key=value pairs, so scripts/bench.sh can run
// mailroom and a peer (Dovecot, Postfix) in the same run and print ratios.
//
//	mailbench mda    -n N -p P -msg FILE [-uid U -gid G] -- COMMAND [ARGS...]
//	mailbench engine -n N -p P -msg FILE -dir MAILDIR
//	mailbench disk   -n N -p P -size BYTES -dir DIR
//	mailbench pop3   -addr HOST:PORT -user U -pass P [-tls] [-steps full|login] [-sessions N -mem-pid PID]
//	mailbench imap   -addr HOST:PORT -user U -pass P [-steps full|login] [-search W -search-body W] [-idle N -mem-pid PID]
//	mailbench smtp   -addr HOST:PORT -n N -c C -size BYTES -to RCPT -maildir DIR [-server-pid P,...]
//	mailbench mkmaildir -n N -seed S -dir MAILDIR
//	mailbench sendmail -n N -p P -msg FILE [-uid U -gid G] -- SENDMAIL [ARGS...]
//	mailbench remote -n N -sink-pid PID [-server-pid P,...] -- COMMAND [ARGS...]
//	mailbench pickup -spool DIR
//
// mda runs COMMAND once per message with the message on stdin, P at a time,
// the way an MTA runs an MDA; engine delivers in-process through the maildir
// package; disk measures the raw limit of the file system: write in tmp/,
// fsync, rename into new/, fsync new/ — the least work a durable Maildir
// delivery can do.
package main

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "mda":
		err = runMDA(os.Args[2:])
	case "engine":
		err = runEngine(os.Args[2:])
	case "disk":
		err = runDisk(os.Args[2:])
	case "pop3":
		err = runPOP3(os.Args[2:])
	case "imap":
		err = runIMAP(os.Args[2:])
	case "smtp":
		err = runSMTP(os.Args[2:])
	case "mkmaildir":
		err = runMkMaildir(os.Args[2:])
	case "sendmail":
		err = runSendmail(os.Args[2:])
	case "pickup":
		err = runPickup(os.Args[2:])
	case "remote":
		err = runRemote(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mailbench mda|engine|disk|pop3|imap|smtp|mkmaildir|sendmail|remote|pickup [flags] (see the package comment)")
	os.Exit(2)
}

// result is what every mode reports.
type result struct {
	n, p, ok, failed int64
	elapsed          time.Duration
	cpu              time.Duration // CPU of the delivering processes or of this one
	firstErr         string
}

func (r result) print(mode string, extra string) {
	rate := float64(r.ok) / r.elapsed.Seconds()
	cpuPer := float64(r.cpu.Microseconds()) / 1000 / float64(max(r.ok, 1))
	fmt.Printf("mode=%s n=%d p=%d ok=%d failed=%d elapsed_s=%.3f rate=%.1f cpu_ms_per_msg=%.3f%s\n",
		mode, r.n, r.p, r.ok, r.failed, r.elapsed.Seconds(), rate, cpuPer, extra)
	if r.firstErr != "" {
		fmt.Fprintln(os.Stderr, "mailbench: first failure:", r.firstErr)
	}
}

// parallel runs job(i) for i in [0,n) on p workers, stopping early at the
// deadline so that a stuck peer cannot hang `make bench`.
func parallel(n, p int, timeout time.Duration, job func(i int) error) result {
	var next, ok, failed atomic.Int64
	var first sync.Once
	res := result{n: int64(n), p: int64(p)}
	deadline := time.Now().Add(timeout)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < p; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || time.Now().After(deadline) {
					return
				}
				if err := job(int(i)); err != nil {
					failed.Add(1)
					first.Do(func() { res.firstErr = err.Error() })
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.ok, res.failed = ok.Load(), failed.Load()
	return res
}

func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
