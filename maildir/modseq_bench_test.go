package maildir

import (
	"os"
	"path/filepath"
	"testing"
)

// benchModseqMaildir is a warm 100,000-message Maildir, its
// mailroom-modseq written by the first open.
func benchModseqMaildir(b *testing.B) string {
	return benchMaildir(b, 100000)
}

// BenchmarkOpenModSeq100k is OpenMailbox of a warm 100,000-message Maildir
// with mailroom-modseq present (read once, every message found in it) and
// absent (every open starts it over: 2.4 MB written, fsync'd, renamed).
func BenchmarkOpenModSeq100k(b *testing.B) {
	root := benchModseqMaildir(b)
	for _, present := range []bool{true, false} {
		name := "with-file"
		if !present {
			name = "without-file"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !present {
					b.StopTimer()
					if err := os.Remove(filepath.Join(root, ModSeqName)); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				m, err := OpenMailbox(root)
				if err != nil {
					b.Fatal(err)
				}
				if m.Len() != 100000 || m.HighestModSeq() == 0 {
					b.Fatalf("%d messages, highest %d", m.Len(), m.HighestModSeq())
				}
			}
		})
	}
}

// BenchmarkModSeqLoad100k is the MODSEQ share of an open: reading the file
// of a 100,000-message Maildir and settling the view with it.
func BenchmarkModSeqLoad100k(b *testing.B) {
	root := benchModseqMaildir(b)
	m, err := OpenMailbox(root)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	m.mu.Lock()
	defer m.mu.Unlock()
	for b.Loop() {
		m.ms.file.loaded = false
		if err := m.modseqSyncLocked(m.msgs); err != nil {
			b.Fatal(err)
		}
		if !m.ms.file.loaded {
			b.Fatal("not loaded")
		}
	}
}

// BenchmarkSyncModSeq100k is Sync of an open 100,000-message Maildir where
// nothing changed: "settled" takes the quick path (stamps and one stat of
// mailroom-modseq), "listed" lists the directories (as after any change
// in them) and merges the view with the log's empty tail.
func BenchmarkSyncModSeq100k(b *testing.B) {
	root := benchModseqMaildir(b)
	benchSettle(b, root)
	m, err := OpenMailbox(root)
	if err != nil {
		b.Fatal(err)
	}
	for _, listed := range []bool{false, true} {
		name := "settled"
		if listed {
			name = "listed"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			before := syncScans.Load()
			for b.Loop() {
				if listed {
					m.mu.Lock()
					m.quick.valid = false
					m.mu.Unlock()
				}
				ch, err := m.Sync()
				if err != nil || !ch.Empty() {
					b.Fatalf("%+v, %v", ch, err)
				}
			}
			b.ReportMetric(float64(syncScans.Load()-before)/float64(b.N), "listings/op")
		})
	}
}
