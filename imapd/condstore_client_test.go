package imapd

import (
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestClientCondStore speaks CONDSTORE through go-imap/v2's client, an
// independent implementation: SELECT (CONDSTORE), FETCH MODSEQ and
// CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ, STATUS
// HIGHESTMODSEQ.
func TestClientCondStore(t *testing.T) {
	e := condstoreEnv(t)
	c := e.dialClient(nil)
	if !c.Caps().Has(imap.CapCondStore) || !c.Caps().Has(imap.CapQResync) {
		t.Fatalf("capabilities %v", c.Caps())
	}
	sel, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	h0 := sel.HighestModSeq
	if h0 == 0 {
		t.Fatal("no HIGHESTMODSEQ")
	}
	all := imap.SeqSetNum(1, 2, 3)
	msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, ModSeq: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for _, m := range msgs {
		if m.ModSeq == 0 || m.ModSeq > h0 {
			t.Fatalf("message %d: MODSEQ %d, HIGHESTMODSEQ %d", m.SeqNum, m.ModSeq, h0)
		}
	}
	// Conditional STORE: message 2 passes, then fails against its old MODSEQ.
	stored, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, &imap.StoreOptions{UnchangedSince: msgs[1].ModSeq}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].ModSeq <= h0 || !hasFlag(stored[0].Flags, imap.FlagFlagged) {
		t.Fatalf("STORE: %+v", stored)
	}
	failed, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, &imap.StoreOptions{UnchangedSince: msgs[1].ModSeq}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 0 {
		t.Fatalf("a failed conditional STORE answered %+v", failed)
	}
	changed, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, ChangedSince: h0}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0].UID != 2 || changed[0].ModSeq != stored[0].ModSeq || hasFlag(changed[0].Flags, imap.FlagSeen) {
		t.Fatalf("CHANGEDSINCE: %+v", changed)
	}
	found, err := c.Search(&imap.SearchCriteria{ModSeq: &imap.SearchCriteriaModSeq{ModSeq: h0 + 1}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(found.AllSeqNums(), []uint32{2}) || found.ModSeq != stored[0].ModSeq {
		t.Fatalf("SEARCH MODSEQ: %v (MODSEQ %d)", found.AllSeqNums(), found.ModSeq)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{HighestModSeq: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.HighestModSeq != stored[0].ModSeq {
		t.Fatalf("STATUS HIGHESTMODSEQ %d, want %d", st.HighestModSeq, stored[0].ModSeq)
	}
}

// TestClientCondStoreUnilateral: after SELECT (CONDSTORE) a flag change
// by another session reaches go-imap's client as FETCH with MODSEQ, and
// an expunge as EXPUNGE (go-imap does not enable QRESYNC: VANISHED is
// tested with raw transcripts).
func TestClientCondStoreUnilateral(t *testing.T) {
	e := condstoreEnv(t)
	type unilateral struct {
		fetch  *imapclient.FetchMessageBuffer
		expung uint32
	}
	events := make(chan unilateral, 16)
	c := e.dialClient(&imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { events <- unilateral{expung: seq} },
		Fetch: func(msg *imapclient.FetchMessageData) {
			buf, err := msg.Collect()
			if err != nil {
				t.Error(err)
				return
			}
			events <- unilateral{fetch: buf}
		},
	}})
	if _, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	other := e.login()
	other.cmd("s", "SELECT INBOX")
	other.cmd("a", `STORE 1 +FLAGS (\Seen)`)
	other.cmd("b", `STORE 3 +FLAGS.SILENT (\Deleted)`)
	other.cmd("c", "EXPUNGE")
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	// go-imap runs the FETCH handler on a goroutine of its own: wait
	// for both, bounded.
	timeout := time.After(ioTimeout)
	var fetched *imapclient.FetchMessageBuffer
	var expunged uint32
	for range 2 {
		select {
		case ev := <-events:
			if ev.fetch != nil {
				fetched = ev.fetch
			} else {
				expunged = ev.expung
			}
		case <-timeout:
			t.Fatal("unilateral data did not come")
		}
	}
	if expunged != 3 || fetched == nil || fetched.UID != 1 || fetched.ModSeq == 0 || !hasFlag(fetched.Flags, imap.FlagSeen) {
		t.Fatalf("unilateral data: EXPUNGE %d, FETCH %+v", expunged, fetched)
	}
}
