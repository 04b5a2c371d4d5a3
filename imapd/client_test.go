package imapd

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailroom/internal/message"
)

// dialClient logs in with go-imap/v2's client, an independent
// implementation of the protocol.
func (e *testEnv) dialClient(opts *imapclient.Options) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.addr, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		e.t.Fatalf("login: %v", err)
	}
	return c
}

func TestClientListSelectFetch(t *testing.T) {
	e := newTestEnv(t, nil)
	path := deliver(t, e.root(), "", fixture2)
	deliver(t, e.root(), "", fixture1)
	c := e.dialClient(nil)

	boxes, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]imap.MailboxAttr{}
	for _, b := range boxes {
		got[b.Mailbox] = b.Attrs
	}
	for name, use := range map[string]imap.MailboxAttr{"Sent": imap.MailboxAttrSent, "Drafts": imap.MailboxAttrDrafts, "Trash": imap.MailboxAttrTrash, "Junk": imap.MailboxAttrJunk, "Archive": imap.MailboxAttrArchive} {
		if !hasMailboxAttr(got[name], use) {
			t.Errorf("LIST %s: attrs %v, want %s", name, got[name], use)
		}
	}
	if _, ok := got["INBOX"]; !ok {
		t.Errorf("LIST lacks INBOX: %v", got)
	}

	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 2 {
		t.Fatalf("EXISTS %d", sel.NumMessages)
	}
	sections := []*imap.FetchItemBodySection{
		{Peek: true},
		{Peek: true, Specifier: imap.PartSpecifierHeader},
		{Peek: true, Part: []int{1}},
		{Peek: true, Part: []int{2}, Partial: &imap.SectionPartial{Offset: 2, Size: 5}},
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true}, BodySection: sections, UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := message.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.Envelope.Subject != st.Envelope().Subject.S || m.Envelope.From[0].Host != "example.com" {
		t.Errorf("envelope %+v", m.Envelope)
	}
	mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || mp.Subtype != "mixed" || len(mp.Children) != 2 {
		t.Errorf("bodystructure %#v", m.BodyStructure)
	}
	secs := []message.Section{{}, {Specifier: "HEADER"}, {Part: []uint32{1}}, {Part: []uint32{2}}}
	partials := []*message.Partial{nil, nil, nil, {Offset: 2, Count: 5, HasCount: true}}
	for i, sec := range sections {
		r, _, err := st.Open(bytes.NewReader(data), secs[i], partials[i])
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(r)
		if got := m.FindBodySection(sec); !bytes.Equal(got, want) {
			t.Errorf("section %d: got %q want %q", i, got, want)
		}
	}
}

func hasMailboxAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

func TestClientStoreExpungeAppendCopyMove(t *testing.T) {
	e := newTestEnv(t, nil)
	deliver(t, e.root(), "", fixture1)
	deliver(t, e.root(), "", fixture2)
	deliver(t, e.root(), "", fixture1)
	c := e.dialClient(nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted, "$Label1"}}, nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !hasFlag(res[0].Flags, imap.FlagDeleted) || !hasFlag(res[0].Flags, "$Label1") {
		t.Fatalf("store: %+v", res)
	}
	exp, err := c.Expunge().Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 1 || exp[0] != 2 {
		t.Fatalf("expunged %v", exp)
	}

	// APPEND then FETCH BODY[]: byte-exact round trip with flags and date.
	body := "From: x@example.org\r\nSubject: appended\r\n\r\nbinary-ish \x7f body\r\n"
	date := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	ac := c.Append("Drafts", int64(len(body)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft, "$Work"}, Time: date})
	if _, err := io.WriteString(ac, body); err != nil {
		t.Fatal(err)
	}
	if err := ac.Close(); err != nil {
		t.Fatal(err)
	}
	ad, err := ac.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ad.UID != 1 || ad.UIDValidity == 0 {
		t.Fatalf("APPENDUID %+v", ad)
	}
	if _, err := c.Select("Drafts", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sec := &imap.FetchItemBodySection{}
	msgs, err := c.Fetch(imap.UIDSetNum(ad.UID), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}, Flags: true, InternalDate: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(msgs[0].FindBodySection(sec)); got != body {
		t.Errorf("round trip %q != %q", got, body)
	}
	if !msgs[0].InternalDate.Equal(date) || !hasFlag(msgs[0].Flags, imap.FlagDraft) || !hasFlag(msgs[0].Flags, "$Work") || !hasFlag(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("after append: date %v flags %v", msgs[0].InternalDate, msgs[0].Flags)
	}

	// COPY and MOVE with COPYUID.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if cd.SourceUIDs.String() != "1,3" || cd.DestUIDs.String() != "1:2" {
		t.Errorf("COPYUID %v %v", cd.SourceUIDs, cd.DestUIDs)
	}
	md, err := c.Move(imap.SeqSetNum(1), "Trash").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if md.SourceUIDs.String() != "1" || md.DestUIDs.String() != "1" {
		t.Errorf("MOVE COPYUID %v %v", md.SourceUIDs, md.DestUIDs)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true, UIDNext: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 2 || st.UIDNext != 3 {
		t.Errorf("STATUS Archive %+v", st)
	}
	if mb := c.Mailbox(); mb.NumMessages != 1 {
		t.Errorf("INBOX after MOVE has %d messages", mb.NumMessages)
	}
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if x == f {
			return true
		}
	}
	return false
}
