package deliver

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/message/messagetest"
	"mailroom/maildir"
	"mailroom/maildir/textindex"
	"mailroom/spool"
)

// foldInto folds the pending records of the Maildir at dir into its text
// index, as imapd does, and returns what the fold did and the UIDs whose
// body holds word.
func foldInto(t *testing.T, dir, word string) (textindex.FoldStats, []uint32) {
	t.Helper()
	mbox, err := maildir.OpenMailbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := textindex.Open(dir, mbox.UIDValidity())
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	st, err := ix.FoldPending(func(base string) (uint32, bool) {
		m, ok := mbox.LookupBase(base)
		return m.UID, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	ans, err := ix.Candidates(textindex.Body, textindex.Fold([]byte(word)))
	if err != nil {
		t.Fatal(err)
	}
	var hits []uint32
	mbox.Range(func(m maildir.Message) bool {
		if ix.Covered(m.UID) && ans.Candidates.Has(m.UID) {
			hits = append(hits, m.UID)
		}
		return true
	})
	return st, hits
}

const indexedMsg = "From: s@sender.test\nSubject: hi\n\nthe quarterly xylophone report\n"

func TestTextIndexAtDeliveryMDA(t *testing.T) {
	t.Run("on: every mailbox of the hard-linked file gets the record", func(t *testing.T) {
		e := newMDAEnv(t)
		if !e.cfg.Deliver.TextIndex {
			t.Fatal("text_index is not on by default")
		}
		r := e.runString(indexedMsg, "-f", "s@sender.test", "list@example.test")
		if r.code != ExitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		for _, u := range []string{"a", "b"} {
			st, hits := foldInto(t, e.maildirOf(u), "xylophone")
			if st.Folded != 1 || len(hits) != 1 {
				t.Errorf("%s: fold %+v, hits %v; want one message folded and found", u, st, hits)
			}
		}
	})
	t.Run("off: no pending file", func(t *testing.T) {
		e := newMDAEnv(t)
		e.cfg.Deliver.TextIndex = false
		r := e.runString(indexedMsg, "-f", "s@sender.test", "a@example.test")
		if r.code != ExitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		onlyMessage(t, e.maildirOf("a"))
		if _, err := os.Stat(filepath.Join(e.maildirOf("a"), textindex.PendingName)); !os.IsNotExist(err) {
			t.Fatalf("pending file with text_index = no: %v", err)
		}
	})
	t.Run("a failure to index is logged and the delivery stands", func(t *testing.T) {
		e := newMDAEnv(t)
		r := e.runString(simpleMsg, "-f", "s@sender.test", "a@example.test") // creates the Maildir
		if r.code != ExitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		pending := filepath.Join(e.maildirOf("a"), textindex.PendingName)
		if err := os.Remove(pending); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(pending, 0o700); err != nil { // cannot be opened for writing
			t.Fatal(err)
		}
		r = e.runString(indexedMsg, "-f", "s@sender.test", "a@example.test")
		if r.code != ExitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		if n := len(files(t, filepath.Join(e.maildirOf("a"), "new"))); n != 2 {
			t.Fatalf("%d messages in new/, want 2", n)
		}
		if !strings.Contains(r.stderr, "text index: message not indexed at delivery") || !strings.Contains(r.stderr, "status=sent") {
			t.Fatalf("log %q lacks the index warning or the delivery", r.stderr)
		}
	})
}

func TestTextIndexAtDeliveryQueue(t *testing.T) {
	for _, on := range []bool{true, false} {
		qe := newQueueEnv(t)
		qe.cfg.Deliver.TextIndex = on
		qe.start(nil)
		qe.submit(spool.Envelope{Sender: "s@sender.test", Recipients: rcpts("a@example.test")}, indexedMsg)
		qe.waitUntil("delivery", func() bool { return len(qe.newFiles("a")) == 1 && qe.queueEmpty() })
		qe.shutdown()
		st, hits := foldInto(t, qe.maildirOf("a"), "xylophone")
		if want := map[bool]int{true: 1, false: 0}[on]; st.Folded != want || len(hits) != want {
			t.Errorf("text_index=%v: fold %+v, hits %v; want %d", on, st, hits, want)
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeliverTextIndex is the local write path's cost per message
// (the engine's delivery, fsyncs included) with and without text_index;
// cpu-us/msg is the process's CPU time per message, the figure that
// matters on a CPU-bound SMTP path.
func BenchmarkDeliverTextIndex(b *testing.B) {
	for _, size := range []int{5 << 10, 100 << 10} {
		msg := messagetest.BenchMessage(size)
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("%dKB/text_index=%v", size>>10, on), func(b *testing.B) {
				root := filepath.Join(b.TempDir(), "u")
				var d maildir.Deliverer
				log := slog.New(slog.DiscardHandler)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu0 := cpuTime(b)
				for i := 0; b.Loop(); i++ {
					res, err := d.Deliver(strings.NewReader(msg), []maildir.Target{{Root: root}})
					if err != nil || res[0].Err != nil {
						b.Fatal(err, res)
					}
					if on {
						indexDelivered(res, log)
					}
					if i%2000 == 1999 { // keep the pending file under its bound
						b.StopTimer()
						_ = os.Remove(filepath.Join(root, textindex.PendingName))
						b.StartTimer()
					}
				}
				b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
			})
		}
	}
}
