package maildir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bigBoxDir is a Maildir to benchmark against, from MAILROOM_BIG_MAILDIR:
// a scratch copy of bench-imap's fixture (the benchmarks below change it).
// Unset, the benchmarks are skipped: the fixture is a gigabyte.
func bigBoxDir(b *testing.B) string {
	b.Helper()
	dir := os.Getenv("MAILROOM_BIG_MAILDIR")
	if dir == "" {
		b.Skip("MAILROOM_BIG_MAILDIR unset")
	}
	return dir
}

// bigBoxCold removes what an open leaves behind (uidlist, keywords and the
// mailroom-* files but mailroom-textindex.new), as bench-imap's fresh copy
// of the fixture has none.
func bigBoxCold(b *testing.B, dir string) {
	b.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		n := e.Name()
		if n == "mailroom-textindex.new" || e.IsDir() {
			continue
		}
		if strings.HasPrefix(n, "mailroom-") || strings.HasPrefix(n, "dovecot") {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkBigOpenCold is a cold SELECT's storage work on the fixture:
// OpenMailbox with no uidlist, then \Recent claimed.
func BenchmarkBigOpenCold(b *testing.B) {
	dir := bigBoxDir(b)
	for b.Loop() {
		b.StopTimer()
		bigBoxCold(b, dir)
		b.StartTimer()
		m, err := OpenMailbox(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.ClaimRecent(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBigStoreSeen is UID STORE 1:* +FLAGS (\Seen) on the fixture;
// between rounds the messages that lacked \Seen get it taken away again.
func BenchmarkBigStoreSeen(b *testing.B) {
	dir := bigBoxDir(b)
	m, err := OpenMailbox(dir)
	if err != nil {
		b.Fatal(err)
	}
	var unseen []FlagChange
	for _, msg := range m.Messages() {
		if msg.Name.Flags&FlagSeen == 0 {
			unseen = append(unseen, FlagChange{UID: msg.UID, Flags: msg.Name.Flags, Keywords: msg.Name.Keywords})
		}
	}
	b.Logf("%d of %d lack \\Seen", len(unseen), m.Len())
	for b.Loop() {
		var all []FlagChange
		for _, msg := range m.Messages() {
			all = append(all, FlagChange{UID: msg.UID, Flags: msg.Name.Flags | FlagSeen, Keywords: msg.Name.Keywords})
		}
		if err := m.SetFlagsMany(all); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := m.SetFlagsMany(unseen); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
