package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// benchVisitor counts what a Snapshot passes.
type benchVisitor struct{ n int }

func (v *benchVisitor) Begin(SnapshotInfo) error        { return nil }
func (v *benchVisitor) Message(m SnapshotMessage) error { v.n++; return nil }

// benchSettle waits until root's new/ and cur/ are older than the window
// in which a listing cannot be trusted, so the listing cache is written and
// used, as for a Maildir that got no mail in the last second.
func benchSettle(b *testing.B, root string) {
	b.Helper()
	for _, d := range []string{"new", "cur"} {
		st, err := syncStampOf(filepath.Join(root, d))
		if err != nil {
			b.Fatal(err)
		}
		if wait := time.Until(st.ctime.Add(syncDirtyWindow + 50*time.Millisecond)); wait > 0 {
			time.Sleep(wait)
		}
	}
}

// BenchmarkSnapshot10k is Snapshot of a 10,000-message Maildir whose
// uidlist is up to date: what a POP3 login costs in maildir. "listed" has
// no listing cache (a login after new mail: list, match, write the cache),
// "cached" reads the cache of an unchanged Maildir.
func BenchmarkSnapshot10k(b *testing.B) {
	root := benchMaildir(b, 10000)
	benchSettle(b, root)
	for _, cached := range []bool{false, true} {
		name := "listed"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			var v benchVisitor
			if err := Snapshot(root, &v); err != nil { // writes the cache
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if !cached {
					b.StopTimer()
					if err := os.Remove(filepath.Join(root, ListingName)); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				v := benchVisitor{}
				if err := Snapshot(root, &v); err != nil {
					b.Fatal(err)
				}
				if v.n != 10000 {
					b.Fatalf("%d messages, want 10000", v.n)
				}
			}
		})
	}
}

// BenchmarkUidlistMarshal100k formats a 100,000-record dovecot-uidlist,
// what a cold SELECT of a big mailbox writes.
func BenchmarkUidlistMarshal100k(b *testing.B) {
	u := &Uidlist{Version: 3, UIDValidity: 1732300000, NextUID: 100001, GUID: "0123456789abcdef0123456789abcdef"}
	for i := range 100000 {
		u.Records = append(u.Records, UidlistRecord{UID: uint32(i + 1), Name: fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d", 1732300000+i/3, (i*104729)%1000000, 10000+i%5000, 1000+i, 1030+i)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(u.Marshal()) < 100000*40 {
			b.Fatal("short uidlist")
		}
	}
}

// BenchmarkOpenThenSync10k is OpenMailbox followed at once by Sync, as an
// IMAP SELECT does, on a 10,000-message Maildir changed just now (so the
// settled-stamps skip does not apply): the directories are listed once.
func BenchmarkOpenThenSync10k(b *testing.B) {
	root := benchMaildir(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		// Touch cur/ so its stamp is always too recent to trust.
		tmp := filepath.Join(root, "cur", "touch")
		if err := os.WriteFile(tmp, nil, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Remove(tmp); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		before := syncScans.Load()
		m, err := OpenMailbox(root)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Sync(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(syncScans.Load()-before), "listings/op")
	}
}
