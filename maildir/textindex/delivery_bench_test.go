package textindex

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"mailroom/internal/message/messagetest"
)

// BenchmarkIndexDelivered is deliver's cost per message for text_index:
// read, parse, gather the words, append one pending record.
func BenchmarkIndexDelivered(b *testing.B) {
	for _, size := range []int{5 << 10, 100 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			dir := b.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "new"), 0o700); err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(dir, "new", "1700000000.M1P2.host")
			if err := os.WriteFile(path, []byte(messagetest.BenchMessage(size)), 0o600); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%1000 == 999 {
					b.StopTimer()
					if err := os.Truncate(filepath.Join(dir, PendingName), 0); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if err := IndexDelivered(path); err != nil {
					b.Fatal(err)
				}
			}
			fi, err := os.Stat(filepath.Join(dir, PendingName))
			if err == nil {
				b.ReportMetric(float64(fi.Size())/float64(max(1, b.N%1000)), "pending-B/msg")
			}
		})
	}
}
