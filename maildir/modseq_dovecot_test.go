package maildir

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mailroom/internal/testutil"
)

// TestDovecotWithModSeqFile: with mailroom-modseq at the root (and a
// started-over file's leftovers in tmp/), Dovecot reads the Maildir as
// before and lists no extra mailbox; its flag change and expunge reach a
// Mailbox with new modseqs and in VanishedSince.
func TestDovecotWithModSeqFile(t *testing.T) {
	testutil.RequireTool(t, dovecotIMAP)
	dir := mbtestMaildir(t, "Maildir")
	for i := 0; i < 4; i++ {
		mbtestMustDeliver(t, dir, "Subject: m\r\n\r\nbody\r\n")
	}
	m := mbtestOpen(t, dir)
	if err := m.SetFlags(1, FlagSeen, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Expunge(4); err != nil {
		t.Fatal(err)
	}
	// Damage the file so that it is started over by rename.
	mstestPatch(t, dir, func(b []byte) []byte { b[0] = 'x'; return b })
	mbtestOpen(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "tmp", ModSeqName+".leftover"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	mbtestSync(t, m)

	conf := dovecotPrepare(t, dir)
	d := dovecotStart(t, conf, dir)
	compareWithDovecot(t, m, d.state())
	for _, l := range d.run(`LIST "" "*"`) {
		if !strings.HasSuffix(l, "INBOX") {
			t.Errorf("dovecot lists %q", l)
		}
	}
	h0 := m.HighestModSeq()
	d.run("SELECT INBOX")
	d.run(`UID STORE 2 +FLAGS (\Flagged)`)
	d.run(`UID STORE 3 +FLAGS (\Deleted)`)
	d.run("EXPUNGE")
	after := d.state()
	ch := mbtestSync(t, m)
	if !slices.Equal(ch.FlagsChanged, []uint32{2}) || !slices.Equal(ch.Expunged, []uint32{3}) {
		t.Errorf("changes %+v", ch)
	}
	compareWithDovecot(t, m, after)
	if got := mstestModSeq(t, m, 2); got <= h0 || got != m.HighestModSeq() {
		t.Errorf("uid 2 modseq %d, highest %d, was %d", got, m.HighestModSeq(), h0)
	}
	if uids, complete := m.VanishedSince(h0); !complete || !slices.Equal(uids, []uint32{3}) {
		t.Errorf("VanishedSince = %v, %v", uids, complete)
	}
	if _, err := os.Stat(filepath.Join(dir, ModSeqName)); err != nil {
		t.Error(err)
	}
}
