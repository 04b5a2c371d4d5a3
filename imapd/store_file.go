package imapd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"mailroom/internal/fsx"
	"mailroom/maildir"
)

// writeMessage puts a message into the Maildir dir the way the engine's
// deliveries do (tmp/, fsync, then cur/ with its flags, fsync of cur/),
// with the mtime set to date first, since INTERNALDATE is the mtime and a
// visible file's mtime never changes. check, if set, may refuse the data
// once it is read (a NUL in a non-binary APPEND). It returns the base.
func writeMessage(dir string, r io.Reader, f maildir.Flags, k maildir.Keywords, date time.Time, check func() error) (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	base := maildir.UniqueBase(time.Now(), host)
	tmp := filepath.Join(dir, "tmp", base)
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create message: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = os.Remove(tmp)
		}
	}()
	var cnt maildir.SizeCounter
	_, err = io.Copy(io.MultiWriter(fh, &cnt), r)
	if err == nil && check != nil {
		err = check()
	}
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if date.IsZero() {
		date = time.Now()
	}
	if err := os.Chtimes(tmp, date, date); err != nil {
		return "", fmt.Errorf("set internal date: %w", err)
	}
	base = maildir.WithSizes(base, cnt.Size, cnt.VSize)
	name := maildir.Name{Base: base, HasInfo: true, Flags: f, Keywords: k}.String()
	dst := filepath.Join(dir, "cur", name)
	if err := os.Link(tmp, dst); err != nil {
		return "", fmt.Errorf("link message: %w", err)
	}
	if err := fsx.SyncDir(filepath.Join(dir, "cur")); err != nil {
		_ = os.Remove(dst)
		return "", err
	}
	done = true
	_ = os.Remove(tmp)
	return base, nil
}

// uidOfBase syncs v and returns the UID the engine gave base.
func (v *view) uidOfBase(base string) (uint32, error) {
	if err := v.sync(); err != nil {
		return 0, err
	}
	m, ok := v.mbox.LookupBase(base)
	if !ok {
		return 0, errors.New("new message not found after sync")
	}
	return m.UID, nil
}
