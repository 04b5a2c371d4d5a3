package sendmail

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"mailroom/spool"
)

// queueEntry is one message as mailq shows it; also its --json form.
type queueEntry struct {
	ID         string      `json:"id"`
	Maildrop   bool        `json:"maildrop,omitempty"` // submitted, not yet picked up
	Size       int64       `json:"size"`
	Arrived    time.Time   `json:"arrived"`
	Sender     string      `json:"sender"` // "" is the null sender
	Recipients []queueRcpt `json:"recipients"`
}

type queueRcpt struct {
	Address  string     `json:"address"`
	Status   string     `json:"status"`
	Attempts int        `json:"attempts"`
	Next     *time.Time `json:"next,omitempty"`
	Reason   string     `json:"reason,omitempty"`
}

// mailq is -bp: the queue in Postfix's layout (what check_mailq and
// people read), or JSON.
func (r *run) mailq() int {
	sp, err := spool.Open(r.cfg.SpoolDir)
	if err != nil {
		return r.fail(ExitTempFail, "cannot open the spool: %v", err)
	}
	entries, err := r.readQueue(sp)
	if errors.Is(err, fs.ErrPermission) {
		return r.fail(ExitNoPerm, "cannot read the queue in %s: permission denied (mailq works for root and members of group %s)",
			sp.Dir(), spoolGroup(sp.Dir()))
	}
	if err != nil {
		return r.fail(ExitTempFail, "cannot read the queue: %v", err)
	}
	if r.opt.JSON {
		enc := json.NewEncoder(r.sys.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(entries)
	} else {
		err = writeQueue(r.sys.Stdout, entries)
	}
	if err != nil {
		return r.fail(ExitTempFail, "writing the listing: %v", err)
	}
	return ExitOK
}

// readQueue reads queue/ and, when this user may list it, maildrop/.
func (r *run) readQueue(sp *spool.Spool) ([]queueEntry, error) {
	ids, err := sp.List()
	if err != nil {
		return nil, err
	}
	entries := []queueEntry{}
	for _, id := range ids {
		m, err := sp.Message(id)
		if errors.Is(err, spool.ErrNotFound) {
			continue // delivered and removed while we looked
		}
		if err != nil {
			return nil, err
		}
		entries = append(entries, entryOf(m))
	}
	// maildrop/ is 1733: only its owner and root can list it. Anyone else
	// sees the queue without the few drops not yet picked up.
	drops, err := sp.ListMaildrop()
	if errors.Is(err, fs.ErrPermission) {
		return entries, nil
	}
	if err != nil {
		return nil, err
	}
	for _, id := range drops {
		fi, err := os.Lstat(filepath.Join(sp.Dir(), "maildrop", string(id)))
		if err != nil {
			continue // picked up meanwhile
		}
		e := queueEntry{ID: string(id), Maildrop: true, Size: fi.Size(), Arrived: fi.ModTime(), Recipients: []queueRcpt{}}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.Arrived = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

func entryOf(m *spool.Message) queueEntry {
	e := queueEntry{
		ID:      string(m.ID),
		Size:    m.Envelope.Size,
		Arrived: m.Envelope.Arrived,
		Sender:  m.Envelope.Sender,
	}
	for i, rc := range m.Envelope.Recipients {
		q := queueRcpt{Address: rc.Addr, Status: string(spool.StatusPending)}
		if i < len(m.States) {
			st := m.States[i]
			q.Status, q.Attempts, q.Reason = string(st.Status), st.Attempts, st.Reason
			if st.Status == spool.StatusDeferred && !st.Next.IsZero() {
				next := st.Next
				q.Next = &next
			}
		}
		e.Recipients = append(e.Recipients, q)
	}
	return e
}

// Column layout: a 20-character queue id, the size, the arrival time,
// then sender and recipients, as Postfix's showq prints them.
const (
	queueLine   = "%-20s %8s %-20s %s\n"
	queueIndent = 20 + 1 + 8 + 1 + 20 + 1
)

// writeQueue prints the classic listing. Only recipients still to be
// delivered are shown, each under the last error it met, in parentheses.
// The last line is "-- N Kbytes in M Requests." or "Mail queue is empty",
// which monitoring plugins (check_mailq) read.
func writeQueue(w io.Writer, entries []queueEntry) error {
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "Mail queue is empty")
		return err
	}
	bw := &errWriter{w: w}
	bw.printf(queueLine, "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")
	var total int64
	for _, e := range entries {
		total += e.Size
		sender := e.Sender
		switch {
		case e.Maildrop:
			sender = "(submitted, not yet picked up)"
		case sender == "":
			sender = "MAILER-DAEMON"
		}
		bw.printf(queueLine, e.ID, strconv.FormatInt(e.Size, 10), e.Arrived.Local().Format("Mon Jan _2 15:04:05"), sender)
		lastReason := ""
		for _, rc := range e.Recipients {
			if spool.Status(rc.Status).Final() {
				continue
			}
			if rc.Reason != "" && rc.Reason != lastReason {
				bw.printf("%*s(%s)\n", queueIndent, "", oneLine(rc.Reason))
				lastReason = rc.Reason
			}
			bw.printf("%*s%s\n", queueIndent, "", rc.Address)
		}
		bw.printf("\n")
	}
	plural := "s"
	if len(entries) == 1 {
		plural = ""
	}
	bw.printf("-- %d Kbytes in %d Request%s.\n", (total+1023)/1024, len(entries), plural)
	return bw.err
}

// oneLine keeps a stored reason on its line.
func oneLine(s string) string {
	out := []rune(s)
	for i, c := range out {
		if c < 0x20 || c == 0x7f {
			out[i] = ' '
		}
	}
	return string(out)
}

// spoolGroup names the group owning the spool's queue, for the error.
func spoolGroup(dir string) string {
	fi, err := os.Stat(filepath.Join(dir, "queue"))
	if err != nil {
		return "of the spool"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "of the spool"
	}
	if g, err := user.LookupGroupId(strconv.Itoa(int(st.Gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(st.Gid))
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
