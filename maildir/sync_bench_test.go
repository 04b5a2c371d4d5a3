package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchMaildir makes a Maildir of n empty messages in cur/ named the way
// bench/mailbench mkmaildir (and Dovecot) names them, and syncs it once so
// the dovecot-uidlist exists: what a warm login opens.
func benchMaildir(b *testing.B, n int) string {
	b.Helper()
	root := filepath.Join(b.TempDir(), "Maildir")
	if err := Create(root); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		size := 1000 + (i*7919)%60000
		flags := []string{"S", "", "RS", "FS"}[i%4]
		name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,%s", 1732300000+i/3, (i*104729)%1000000, 10000+i%5000, size, size+size/40, flags)
		if err := os.WriteFile(filepath.Join(root, "cur", name), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := OpenMailbox(root); err != nil {
		b.Fatal(err)
	}
	return root
}

// BenchmarkOpenSync10k is a fresh OpenMailbox of a warm 10,000-message
// Maildir: parse the uidlist, list cur/ and new/, match, build the view.
// pop3d does this at every login.
func BenchmarkOpenSync10k(b *testing.B) {
	root := benchMaildir(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m, err := OpenMailbox(root)
		if err != nil {
			b.Fatal(err)
		}
		if got := len(m.msgs); got != 10000 {
			b.Fatalf("%d messages, want 10000", got)
		}
	}
}
