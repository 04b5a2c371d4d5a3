package deliver

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"mailroom/maildir"
)

// deliverGroups writes the message for every planned recipient.
//
// One recipient (the usual case: Postfix runs a mailbox_command once per
// recipient, dovecot-lda takes one) streams stdin straight into the engine,
// which writes one tmp/ file and hard-links it into each mailbox. Several
// recipients need the body once per recipient, because each file carries
// that recipient's Delivered-To; stdin is copied once into an unlinked
// scratch file first, which also checks the whole message before any
// mailbox sees it.
func (m *mda) deliverGroups(br *bufio.Reader, groups []*group) outcome {
	g := &guard{r: br, max: m.cfg.Deliver.MaxMessageSize}
	d := &maildir.Deliverer{Host: m.cfg.Hostname, Confine: m.cfg.MailRoot, Now: m.sys.Now}
	if len(groups) == 1 {
		return m.deliverGroup(d, groups[0], g, g)
	}
	scratch, size, err := spoolBody(g, scratchDir(groups))
	if err != nil {
		if g.err != nil {
			err = g.err
		}
		o := classify(err, m.cfg.Deliver.OverQuota)
		for _, grp := range groups {
			m.fail(grp.rcpt, o, []any{"err", err})
		}
		return o
	}
	defer scratch.Close()
	final := delivered
	for _, grp := range groups {
		final = worse(final, m.deliverGroup(d, grp, io.NewSectionReader(scratch, 0, size), g))
	}
	return final
}

// deliverGroup writes one recipient's file and links it into its mailboxes.
func (m *mda) deliverGroup(d *maildir.Deliverer, grp *group, body io.Reader, g *guard) outcome {
	r := writeGroup(d, grp, body, g, m.cfg.Deliver.OverQuota, m.logs)
	if r.err != nil {
		m.fail(grp.rcpt, r.final, []any{"err", r.err})
		return r.final
	}
	for i, res := range r.results {
		m.logTarget(grp, i, res, r.outcomes[i])
	}
	if r.final.failed() {
		m.failures = append(m.failures, r.final)
	}
	return r.final
}

// logTarget writes the summary line of one mailbox of a recipient.
func (m *mda) logTarget(grp *group, i int, r maildir.Result, o outcome) {
	args := []any{"from", m.sender, "to", grp.rcpt}
	if m.opt.OriginalRecipient != "" {
		args = append(args, "orig_to", m.opt.OriginalRecipient)
	}
	args = append(args, "mailbox", grp.mailbox[i], "folder", folderName(grp.targets[i].Folder))
	if grp.targets[i].Folder == "" && !strings.EqualFold(folderName(grp.folder[i]), "INBOX") {
		args = append(args, "folder_requested", grp.folder[i])
	}
	if !o.failed() {
		args = append(args, "status", "sent", "path", r.Path, "delay", m.delay())
		m.logs.Info("delivery", args...)
		return
	}
	status := "bounced"
	if o.code == ExitTempFail {
		status = "deferred"
	}
	args = append(args, "status", status, "dsn", o.status, "reason", o.text, "delay", m.delay(), "err", r.Err)
	m.logs.Warn("delivery", args...)
}

func folderName(f string) string {
	if f == "" {
		return "INBOX"
	}
	return f
}

// scratchDir is where the multi-recipient scratch copy goes: the first
// mailbox's tmp/, on the file system the mail goes to (so a full disk shows
// up before any delivery), else the system's temporary directory.
func scratchDir(groups []*group) string {
	for _, grp := range groups {
		for _, t := range grp.targets {
			dir := filepath.Join(t.Root, "tmp")
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
				return dir
			}
		}
	}
	return os.TempDir()
}

// spoolBody copies r into a scratch file in dir that is unlinked at once,
// so it can never be left behind, and returns it with its size.
func spoolBody(r io.Reader, dir string) (*os.File, int64, error) {
	f, err := os.CreateTemp(dir, ".deliver-scratch-*")
	if err != nil {
		return nil, 0, fmt.Errorf("scratch copy: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("scratch copy: %w", err)
	}
	n, err := io.Copy(f, r)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("scratch copy: %w", err)
	}
	return f, n, nil
}
