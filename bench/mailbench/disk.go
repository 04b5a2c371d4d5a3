package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// runDisk measures the raw durable-delivery limit: per message a file in
// tmp/ written and fsync'd, renamed into new/, and new/ fsync'd.
func runDisk(args []string) error {
	fs := flag.NewFlagSet("disk", flag.ExitOnError)
	n := fs.Int("n", 2000, "messages")
	p := fs.Int("p", 1, "writers in parallel")
	size := fs.Int("size", 5120, "bytes per message")
	dir := fs.String("dir", "", "scratch directory (tmp/ and new/ are made in it)")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("disk: need -dir")
	}
	for _, d := range []string{"tmp", "new"} {
		if err := os.MkdirAll(filepath.Join(*dir, d), 0o700); err != nil {
			return err
		}
	}
	body := bytes.Repeat([]byte("x"), *size)
	pid := os.Getpid()
	cpu0 := rusageCPU(syscall.RUSAGE_SELF)
	res := parallel(*n, *p, 5*time.Minute, func(i int) error {
		name := fmt.Sprintf("%d.P%dQ%d.bench", time.Now().Unix(), pid, i)
		return diskDeliver(*dir, name, body)
	})
	res.cpu = rusageCPU(syscall.RUSAGE_SELF) - cpu0
	res.print("disk", fmt.Sprintf(" msg_bytes=%d", *size))
	return nil
}

func diskDeliver(dir, name string, body []byte) error {
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
		return err
	}
	d, err := os.Open(filepath.Join(dir, "new"))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
