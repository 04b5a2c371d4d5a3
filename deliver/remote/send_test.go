package remote

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailroom/deliver"
	"mailroom/spool"
)

const (
	sent = deliver.RemoteSent
	temp = deliver.RemoteTempFail
	perm = deliver.RemotePermFail
)

// exampleNet gives example.net two MX hosts: mx1 (preference 10,
// 192.0.2.1 and 2001:db8::1) and mx2 (preference 20, 192.0.2.2).
func exampleNet(h *harness) {
	h.res.mx["example.net"] = []*net.MX{{Host: "mx2.example.net.", Pref: 20}, {Host: "mx1.example.net.", Pref: 10}}
	h.res.ip["mx1.example.net"] = ips("2001:db8::1", "192.0.2.1")
	h.res.ip["mx2.example.net"] = ips("192.0.2.2")
}

func TestMXOrderAndFallback(t *testing.T) {
	srv := newFakeServer(t).start()
	h := newHarness(t, Options{})
	exampleNet(h)
	h.route("192.0.2.2:25", srv) // only the backup MX answers
	res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))
	wantResult(t, res[0], sent, "2.0.0")
	if res[0].Relay != "mx2.example.net[192.0.2.2]:25" || res[0].Reply != "250 2.0.0 Ok: queued as FAKE" {
		t.Errorf("relay %q reply %q", res[0].Relay, res[0].Reply)
	}
	// Preference order, every address of a host (IPv6 and IPv4) before
	// the next host.
	if got, want := h.dials(), []string{"[2001:db8::1]:25", "192.0.2.1:25", "192.0.2.2:25"}; !slices.Equal(got, want) {
		t.Errorf("dialled %q, want %q", got, want)
	}
	msgs := srv.messages()
	if len(msgs) != 1 || msgs[0].data != testBody {
		t.Fatalf("server got %+v, want the body as sent", msgs)
	}
	if msgs[0].mailLine != "MAIL FROM:<a@sender.test> BODY=8BITMIME SIZE="+strconv.Itoa(len(testBody)) {
		t.Errorf("MAIL line %q", msgs[0].mailLine)
	}
	if !slices.Contains(srv.commands(), "1: EHLO client.test") {
		t.Errorf("no EHLO with the configured hostname in %q", srv.commands())
	}
}

func TestSortMXRandomAmongEquals(t *testing.T) {
	mxs := []*net.MX{{Host: "c", Pref: 20}, {Host: "a", Pref: 10}, {Host: "b", Pref: 10}}
	firsts := map[string]int{}
	for range 200 {
		got := sortMX(mxs)
		if got[2].Host != "c" {
			t.Fatalf("preference 20 not last: %v", got)
		}
		firsts[got[0].Host]++
	}
	if firsts["a"] == 0 || firsts["b"] == 0 {
		t.Errorf("equal preferences not randomised: %v", firsts)
	}
}

func TestResolveFailures(t *testing.T) {
	srv := newFakeServer(t).start()
	tests := []struct {
		name    string
		setup   func(h *harness)
		outcome deliver.RemoteOutcome
		status  string
		dialled []string
	}{
		{"implicit MX: the domain's own address", func(h *harness) {
			h.res.ip["example.net"] = ips("192.0.2.9")
			h.route("192.0.2.9:25", srv)
		}, sent, "2.0.0", []string{"192.0.2.9:25"}},
		{"null MX", func(h *harness) {
			h.res.mx["example.net"] = []*net.MX{{Host: ".", Pref: 0}}
			h.res.ip["example.net"] = ips("192.0.2.9")
		}, perm, "5.1.10", nil},
		{"domain does not exist", func(h *harness) {}, perm, "5.1.2", nil},
		{"DNS server failure", func(h *harness) {
			h.res.errMX["example.net"] = &net.DNSError{Err: "server misbehaving", Name: "example.net", IsTemporary: true}
		}, temp, "4.4.3", nil},
		{"MX host without address", func(h *harness) {
			h.res.mx["example.net"] = []*net.MX{{Host: "gone.example.net", Pref: 10}}
		}, temp, "4.4.3", nil},
		{"every server refuses connections", func(h *harness) { exampleNet(h) }, temp, "4.4.1",
			[]string{"[2001:db8::1]:25", "192.0.2.1:25", "192.0.2.2:25"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			tc.setup(h)
			res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))
			wantResult(t, res[0], tc.outcome, tc.status)
			if res[0].Outcome != sent && res[0].Reason == "" {
				t.Errorf("a failure without a reason: %+v", res[0])
			}
			if got := h.dials(); !slices.Equal(got, tc.dialled) {
				t.Errorf("dialled %q, want %q", got, tc.dialled)
			}
		})
	}
}

func TestRecipientReplies(t *testing.T) {
	srv := newFakeServer(t)
	srv.rcpt = func(addr string) string {
		switch {
		case strings.HasPrefix(addr, "full"):
			return "452 4.2.2 mailbox full"
		case strings.HasPrefix(addr, "gone"):
			return "550 5.1.1 <" + addr + ">: no such user"
		case strings.HasPrefix(addr, "plain"):
			return "550 no enhanced code here"
		}
		return "250 2.1.5 ok"
	}
	srv.start()
	h := newHarness(t, Options{})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	res := h.tr.Send(t.Context(), message("a@sender.test", testBody,
		"ok1@example.net", "full@example.net", "gone@example.net", "plain@example.net", "ok2@example.net", "bad-address"))
	wantResult(t, res[0], sent, "2.0.0")
	wantResult(t, res[1], temp, "4.2.2")
	wantResult(t, res[2], perm, "5.1.1")
	wantResult(t, res[3], perm, "5.0.0")
	wantResult(t, res[4], sent, "2.0.0")
	wantResult(t, res[5], perm, "5.1.3")
	if res[2].Reply != "550 5.1.1 <gone@example.net>: no such user" || res[2].Relay != "mx1.example.net[192.0.2.1]:25" {
		t.Errorf("reply %q relay %q", res[2].Reply, res[2].Relay)
	}
	if res[3].Reply != "550 no enhanced code here" {
		t.Errorf("reply %q", res[3].Reply)
	}
	msgs := srv.messages()
	if len(msgs) != 1 || len(msgs[0].rcpts) != 2 {
		t.Fatalf("server got %+v, want one message to the two accepted", msgs)
	}
}

func TestDataReplyAppliesToAll(t *testing.T) {
	for _, tc := range []struct {
		reply   string
		outcome deliver.RemoteOutcome
		status  string
	}{
		{"554 5.7.1 spam", perm, "5.7.1"},
		{"451 4.3.0 try later", temp, "4.3.0"},
	} {
		srv := newFakeServer(t)
		srv.dataResp = func() string { return tc.reply }
		srv.start()
		h := newHarness(t, Options{})
		exampleNet(h)
		h.route("192.0.2.1:25", srv)
		res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "x@example.net", "y@example.net"))
		for i := range res {
			wantResult(t, res[i], tc.outcome, tc.status)
			if res[i].Reply != tc.reply {
				t.Errorf("reply %q, want %q", res[i].Reply, tc.reply)
			}
		}
		if n := srv.connCount(); n != 1 {
			t.Errorf("%d connections: a refused DATA is not tried elsewhere", n)
		}
	}
}

func Test421MidTransaction(t *testing.T) {
	closing := newFakeServer(t)
	closing.rcpt = func(addr string) string {
		if strings.HasPrefix(addr, "second") {
			return "421 4.3.2 shutting down"
		}
		return "250 2.1.5 ok"
	}
	closing.start()

	t.Run("only server", func(t *testing.T) {
		h := newHarness(t, Options{})
		exampleNet(h)
		h.route("192.0.2.1:25", closing)
		res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "first@example.net", "second@example.net", "third@example.net"))
		for i := range res {
			wantResult(t, res[i], temp, "4.3.2")
		}
		if len(closing.messages()) != 0 {
			t.Error("a message was completed on a closing connection")
		}
	})
	t.Run("the next MX takes the rest", func(t *testing.T) {
		backup := newFakeServer(t).start()
		h := newHarness(t, Options{})
		exampleNet(h)
		h.route("192.0.2.1:25", closing)
		h.route("192.0.2.2:25", backup)
		res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "first@example.net", "second@example.net", "third@example.net"))
		for i := range res {
			wantResult(t, res[i], sent, "2.0.0")
			if res[i].Relay != "mx2.example.net[192.0.2.2]:25" {
				t.Errorf("relay %q", res[i].Relay)
			}
		}
		if msgs := backup.messages(); len(msgs) != 1 || len(msgs[0].rcpts) != 3 {
			t.Errorf("backup got %+v", msgs)
		}
	})
}

func TestConnectionReuse(t *testing.T) {
	srv := newFakeServer(t).start()
	h := newHarness(t, Options{MaxReuse: 2, IdleTimeout: time.Minute})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	for i := range 3 {
		res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))
		wantResult(t, res[0], sent, "2.0.0")
		if i == 1 && h.tr.pool.idleCount() != 0 {
			t.Error("a connection past max reuse stayed cached")
		}
	}
	msgs := srv.messages()
	if len(msgs) != 3 || msgs[0].conn != 1 || msgs[1].conn != 1 || msgs[2].conn != 2 {
		t.Fatalf("messages on connections %+v, want 1, 1, 2", msgs)
	}
	if !slices.Contains(srv.commands(), "1: RSET") || !strings.Contains(h.logs.String(), "reused=true") {
		t.Errorf("no RSET before reuse, or reuse not logged: %q", srv.commands())
	}
	// The first connection was closed after its second message (QUIT).
	if !slices.Contains(srv.commands(), "1: QUIT") {
		t.Errorf("worn-out connection not closed with QUIT: %q", srv.commands())
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	srv := newFakeServer(t).start()
	h := newHarness(t, Options{IdleTimeout: 50 * time.Millisecond})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	wantResult(t, h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))[0], sent, "2.0.0")
	select {
	case n := <-srv.ended:
		if n != 1 || !slices.Contains(srv.commands(), "1: QUIT") {
			t.Errorf("connection %d ended without QUIT: %q", n, srv.commands())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("idle connection still open after 10s")
	}
	if h.tr.pool.idleCount() != 0 {
		t.Error("closed connection still cached")
	}
	// The next message opens a new connection.
	wantResult(t, h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))[0], sent, "2.0.0")
	if n := srv.connCount(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestReusedConnectionGoneStale(t *testing.T) {
	srv := newFakeServer(t).start()
	h := newHarness(t, Options{IdleTimeout: time.Minute})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	wantResult(t, h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))[0], sent, "2.0.0")
	// The server drops the idle connection; the next message notices at
	// RSET and dials again.
	srv.mu.Lock()
	for c := range srv.live {
		c.Close()
	}
	srv.mu.Unlock()
	<-srv.ended
	wantResult(t, h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))[0], sent, "2.0.0")
	if n := len(srv.messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

func TestDestinationConcurrency(t *testing.T) {
	srv := newFakeServer(t)
	srv.hold = make(chan struct{})
	srv.entered = make(chan struct{}, 10)
	srv.start()
	h := newHarness(t, Options{DestinationConcurrency: 2, IdleTimeout: time.Minute})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	const n = 5
	done := make(chan []deliver.RemoteResult, n)
	for range n {
		go func() { done <- h.tr.Send(context.Background(), message("a@sender.test", testBody, "b@example.net")) }()
	}
	for range 2 {
		select {
		case <-srv.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("two sessions did not reach the end of data")
		}
	}
	select {
	case <-srv.entered:
		t.Fatal("a third session ran beside two held ones")
	case <-time.After(200 * time.Millisecond):
	}
	close(srv.hold)
	for range n {
		select {
		case res := <-done:
			wantResult(t, res[0], sent, "2.0.0")
		case <-time.After(10 * time.Second):
			t.Fatal("Send did not return")
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.maxOpen > 2 || srv.maxInData > 2 || len(srv.msgs) != n {
		t.Errorf("max open %d, max in data %d, messages %d", srv.maxOpen, srv.maxInData, len(srv.msgs))
	}
}

func TestSendReturnsWhenCancelled(t *testing.T) {
	srv := newFakeServer(t)
	srv.hold = make(chan struct{})
	srv.entered = make(chan struct{}, 1)
	srv.start()
	defer close(srv.hold)
	h := newHarness(t, Options{})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan []deliver.RemoteResult, 1)
	go func() { done <- h.tr.Send(ctx, message("a@sender.test", testBody, "b@example.net")) }()
	<-srv.entered
	cancel()
	select {
	case res := <-done:
		if res[0].Outcome != temp {
			t.Errorf("result %+v, want temporary", res[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send did not return after cancel")
	}
}

func TestSMTPUTF8(t *testing.T) {
	plain := newFakeServer(t).start()
	utf8 := newFakeServer(t)
	utf8.ext = append(utf8.ext, "SMTPUTF8")
	utf8.start()
	utf8Headers := "From: a@sender.test\r\nSubject: caf\xc3\xa9\r\n\r\nbody\r\n"
	tests := []struct {
		name     string
		srv      *fakeServer
		msg      *deliver.RemoteMessage
		flag     bool
		outcome  deliver.RemoteOutcome
		status   string
		mailLine string
	}{
		{"UTF-8 address to a peer without SMTPUTF8", plain, message("a@sender.test", testBody, "jos\xc3\xa9@example.net"), false, perm, "5.6.7", ""},
		{"UTF-8 sender to a peer without SMTPUTF8", plain, message("jos\xc3\xa9@sender.test", testBody, "b@example.net"), false, perm, "5.6.7", ""},
		{"flagged UTF-8 header to a peer without SMTPUTF8", plain, message("a@sender.test", utf8Headers, "b@example.net"), true, perm, "5.6.7", ""},
		{"flagged but ASCII: downgraded", plain, message("a@sender.test", testBody, "b@example.net"), true, sent, "2.0.0",
			"MAIL FROM:<a@sender.test> BODY=8BITMIME SIZE=" + strconv.Itoa(len(testBody))},
		{"UTF-8 address to a peer with SMTPUTF8", utf8, message("a@sender.test", testBody, "jos\xc3\xa9@example.net"), false, sent, "2.0.0",
			"MAIL FROM:<a@sender.test> BODY=8BITMIME SIZE=" + strconv.Itoa(len(testBody)) + " SMTPUTF8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			exampleNet(h)
			h.route("192.0.2.1:25", tc.srv)
			tc.msg.Envelope.SMTPUTF8 = tc.flag
			before := len(tc.srv.messages())
			res := h.tr.Send(t.Context(), tc.msg)
			wantResult(t, res[0], tc.outcome, tc.status)
			msgs := tc.srv.messages()
			if tc.mailLine == "" {
				if len(msgs) != before {
					t.Error("the message was sent anyway")
				}
				return
			}
			if len(msgs) != before+1 || msgs[len(msgs)-1].mailLine != tc.mailLine {
				t.Errorf("MAIL line %q, want %q", msgs[len(msgs)-1].mailLine, tc.mailLine)
			}
		})
	}
}

// TestEightBitToPeerWithout8BITMIME: RFC 6152 §3. An 8-bit message is
// returned (5.6.3), never sent as it is, to a peer without 8BITMIME; a
// 7-bit one goes without BODY=; a peer with 8BITMIME gets BODY=8BITMIME.
func TestEightBitToPeerWithout8BITMIME(t *testing.T) {
	old7 := newFakeServer(t)
	old7.ext = []string{"PIPELINING", "ENHANCEDSTATUSCODES", "SIZE 100000"}
	old7.start()
	modern := newFakeServer(t).start()
	body8 := "From: a@sender.test\r\nSubject: x\r\n\r\ncaf\xc3\xa9\r\n"
	head8 := "From: a@sender.test\r\nSubject: caf\xc3\xa9\r\n\r\nplain\r\n"
	tests := []struct {
		name     string
		srv      *fakeServer
		body     string
		outcome  deliver.RemoteOutcome
		status   string
		mailLine string
	}{
		{"8-bit body, no 8BITMIME", old7, body8, perm, "5.6.3", ""},
		{"8-bit header, no 8BITMIME", old7, head8, perm, "5.6.3", ""},
		{"7-bit, no 8BITMIME", old7, testBody, sent, "2.0.0", "MAIL FROM:<a@sender.test> SIZE=" + strconv.Itoa(len(testBody))},
		{"8-bit body, 8BITMIME", modern, body8, sent, "2.0.0", "MAIL FROM:<a@sender.test> BODY=8BITMIME SIZE=" + strconv.Itoa(len(body8))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			exampleNet(h)
			h.route("192.0.2.1:25", tc.srv)
			before := len(tc.srv.messages())
			res := h.tr.Send(t.Context(), message("a@sender.test", tc.body, "b@example.net"))
			wantResult(t, res[0], tc.outcome, tc.status)
			msgs := tc.srv.messages()
			if tc.mailLine == "" {
				if len(msgs) != before {
					t.Error("the message was sent anyway")
				}
				return
			}
			if len(msgs) != before+1 || msgs[len(msgs)-1].mailLine != tc.mailLine {
				t.Errorf("MAIL line %q, want %q", msgs[len(msgs)-1].mailLine, tc.mailLine)
			}
		})
	}
}

func TestDSNParameters(t *testing.T) {
	for _, offer := range []bool{true, false} {
		srv := newFakeServer(t)
		if offer {
			srv.ext = append(srv.ext, "DSN")
		}
		srv.start()
		h := newHarness(t, Options{})
		exampleNet(h)
		h.route("192.0.2.1:25", srv)
		m := message("a@sender.test", testBody, "b@example.net", "c@example.net")
		m.Envelope.Ret, m.Envelope.EnvID = spool.RetHdrs, "env+id"
		m.Rcpts[0].Notify = spool.NotifySuccess | spool.NotifyFailure
		m.Rcpts[0].ORcpt = "rfc822;orig@example.org"
		m.Rcpts[1].Notify = spool.NotifyNever
		res := h.tr.Send(t.Context(), m)
		wantResult(t, res[0], sent, "2.0.0")
		msgs := srv.messages()
		if len(msgs) != 1 {
			t.Fatalf("messages %+v", msgs)
		}
		mail, rcpts := msgs[0].mailLine, strings.Join(msgs[0].rcpts, "|")
		wantMail := "MAIL FROM:<a@sender.test> BODY=8BITMIME SIZE=" + strconv.Itoa(len(testBody))
		wantRcpts := "RCPT TO:<b@example.net>|RCPT TO:<c@example.net>"
		if offer {
			wantMail += " RET=HDRS ENVID=env+2Bid"
			wantRcpts = "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;orig@example.org|RCPT TO:<c@example.net> NOTIFY=NEVER"
		}
		if mail != wantMail || rcpts != wantRcpts {
			t.Errorf("DSN offered %v:\n MAIL %q\n want %q\n RCPT %q\n want %q", offer, mail, wantMail, rcpts, wantRcpts)
		}
	}
}

func TestSizeLimit(t *testing.T) {
	srv := newFakeServer(t)
	srv.ext = append(srv.ext, "SIZE 10")
	srv.start()
	h := newHarness(t, Options{})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))
	wantResult(t, res[0], perm, "5.3.4")
}

func TestFromLineSkipped(t *testing.T) {
	srv := newFakeServer(t).start()
	h := newHarness(t, Options{})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	res := h.tr.Send(t.Context(), message("a@sender.test", "From a@sender.test Mon Jan  1 00:00:00 2024\n"+testBody, "b@example.net"))
	wantResult(t, res[0], sent, "2.0.0")
	if msgs := srv.messages(); len(msgs) != 1 || msgs[0].data != testBody {
		t.Errorf("got %+v", msgs)
	}
}

func TestRouting(t *testing.T) {
	relay := newFakeServer(t).start()
	special := newFakeServer(t).start()
	tab, err := ParseTable(strings.NewReader("special.test [192.0.2.50]:2525\n.sub.test 192.0.2.60\n"), "transport")
	if err != nil {
		t.Fatal(err)
	}
	hop, err := ParseNexthop("[relay.test]:587")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, Options{RelayHost: &hop, Table: tab})
	h.res.ip["relay.test"] = ips("192.0.2.40")
	h.route("192.0.2.40:587", relay)
	h.route("192.0.2.50:2525", special)
	h.route("192.0.2.60:25", special)
	res := h.tr.Send(t.Context(), message("a@sender.test", testBody, "x@anywhere.test", "y@special.test", "z@a.sub.test", "w@sub.test"))
	for i, want := range []string{"relay.test[192.0.2.40]:587", "192.0.2.50[192.0.2.50]:2525", "192.0.2.60[192.0.2.60]:25", "relay.test[192.0.2.40]:587"} {
		wantResult(t, res[i], sent, "2.0.0")
		if res[i].Relay != want {
			t.Errorf("rcpt %d relay %q, want %q", i, res[i].Relay, want)
		}
	}
	h.res.mu.Lock()
	asked := h.res.asked
	h.res.mu.Unlock()
	for _, q := range asked {
		if strings.HasPrefix(q, "MX") {
			t.Errorf("an MX lookup (%s) for a [host] next hop", q)
		}
	}
}

func TestLogsConnection(t *testing.T) {
	srv := newFakeServer(t).start()
	h := newHarness(t, Options{})
	exampleNet(h)
	h.route("192.0.2.1:25", srv)
	h.tr.Send(t.Context(), message("a@sender.test", testBody, "b@example.net"))
	logs := h.logs.String()
	for _, want := range []string{"msg=connect msgid=TESTID relay=mx1.example.net[192.0.2.1]:25 tls=none",
		"relay=mx1.example.net[2001:db8::1]:25 status=failed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	hop := Nexthop{Host: "relay.test"}
	for _, o := range []Options{
		{},
		{Hostname: "h", TLSLevel: "sometimes"},
		{Hostname: "h", RelayUser: "u"},
		{Hostname: "h", RelayUser: "u", RelayHost: &hop, TLSLevel: TLSNone},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if _, err := New(Options{Hostname: "h"}); err != nil {
		t.Error(err)
	}
}
