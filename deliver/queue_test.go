package deliver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mailroom/internal/testutil"
	"mailroom/spool"
)

// queueEnv is a running in-process queue daemon over mdaEnv's tables.
type queueEnv struct {
	*mdaEnv
	sp    *spool.Spool
	q     *Queue
	logs  *testutil.SyncBuffer
	tick  chan struct{} // signalled after every task
	tasks atomic.Int64  // tasks finished
	stop  context.CancelFunc
	done  chan error
	clock func() time.Time
}

// newQueueEnv makes the spool and a daemon; adjust e.cfg before start.
func newQueueEnv(t *testing.T) *queueEnv {
	e := newMDAEnv(t)
	if err := spool.Setup(e.cfg.SpoolDir); err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(e.cfg.SpoolDir)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg.Deliver.QueueConcurrency = 4
	e.cfg.Deliver.MinBackoff = 50 * time.Millisecond
	e.cfg.Deliver.MaxBackoff = 200 * time.Millisecond
	e.cfg.Deliver.QueueLifetime = time.Hour
	e.cfg.Deliver.DelayWarning = 0
	return &queueEnv{mdaEnv: e, sp: sp, logs: &testutil.SyncBuffer{}, tick: make(chan struct{}, 1)}
}

func (qe *queueEnv) start(remote RemoteTransport) {
	t := qe.t
	t.Helper()
	logger := slog.New(slog.NewTextHandler(qe.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ready := make(chan struct{})
	q, err := NewQueue(qe.cfg, QueueOptions{Logger: logger, Remote: remote, Ready: func() { close(ready) }, Now: qe.clock})
	if err != nil {
		t.Fatal(err)
	}
	q.afterTask = func(task) {
		qe.tasks.Add(1)
		select {
		case qe.tick <- struct{}{}:
		default:
		}
	}
	qe.q = q
	ctx, cancel := context.WithCancel(context.Background())
	qe.stop, qe.done = cancel, make(chan error, 1)
	go func() { qe.done <- q.Run(ctx) }()
	select {
	case <-ready:
	case err := <-qe.done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("daemon not ready")
	}
	t.Cleanup(qe.shutdown)
}

// shutdown stops the daemon and checks it exits cleanly.
func (qe *queueEnv) shutdown() {
	if qe.stop == nil {
		return
	}
	qe.stop()
	qe.stop = nil
	select {
	case err := <-qe.done:
		if err != nil {
			qe.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		qe.t.Error("daemon did not stop")
	}
}

// waitUntil re-checks cond after every task the daemon finishes, for at
// most 10 seconds.
func (qe *queueEnv) waitUntil(what string, cond func() bool) {
	qe.t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-qe.tick:
		case <-deadline:
			qe.t.Fatalf("timed out waiting for %s; log:\n%s", what, qe.logs.String())
		}
	}
}

// submit commits a message as smtpd would.
func (qe *queueEnv) submit(env spool.Envelope, msg string) spool.ID {
	qe.t.Helper()
	if env.Origin == "" {
		env.Origin = spool.OriginSMTP
	}
	if env.Body == "" {
		env.Body = spool.Body8BitMIME
	}
	w, err := qe.sp.Create(env)
	if err != nil {
		qe.t.Fatal(err)
	}
	io.WriteString(w, msg)
	id, err := w.Commit()
	if err != nil {
		qe.t.Fatal(err)
	}
	return id
}

func rcpts(addrs ...string) []spool.Recipient {
	var r []spool.Recipient
	for _, a := range addrs {
		r = append(r, spool.Recipient{Addr: a})
	}
	return r
}

// newFiles lists new/ of a user's INBOX.
func (qe *queueEnv) newFiles(local string) []string {
	return files(qe.t, filepath.Join(qe.maildirOf(local), "new"))
}

func (qe *queueEnv) queueEmpty() bool {
	ids, err := qe.sp.List()
	if err != nil {
		qe.t.Fatal(err)
	}
	return len(ids) == 0
}

func countIs(f func() []string, n int) func() bool {
	return func() bool { return len(f()) == n }
}

const queueMsg = "Received: from client.test\r\nFrom: a@example.test\r\nSubject: queued\r\nMessage-ID: <q1@example.test>\r\n\r\nhello\r\n"

func TestQueueDeliversLocal(t *testing.T) {
	qe := newQueueEnv(t)
	qe.start(nil)
	id := qe.submit(spool.Envelope{Sender: "s@sender.test", Recipients: rcpts("a@example.test", "list@example.test")}, queueMsg)
	qe.waitUntil("delivery", func() bool { return len(qe.newFiles("a")) == 2 && len(qe.newFiles("b")) == 1 && qe.queueEmpty() })
	got := readFile(t, qe.newFiles("b")[0])
	want := "Return-Path: <s@sender.test>\r\nDelivered-To: list@example.test\r\n" + queueMsg
	if got != want {
		t.Errorf("delivered\n%q\nwant\n%q", got, want)
	}
	logs := qe.logs.String()
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "msg=delivery") && !strings.Contains(l, "msgid="+string(id)) {
			t.Errorf("delivery line without msgid: %s", l)
		}
	}
	if n := strings.Count(logs, "msg=delivery"); n != 2 {
		t.Errorf("%d delivery lines, want 2 (one per recipient):\n%s", n, logs)
	}
	if !strings.Contains(logs, "status=sent") || !strings.Contains(logs, "to=list@example.test") {
		t.Errorf("log lacks the summary fields:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(qe.cfg.SpoolDir, "queue", string(id))); !os.IsNotExist(err) {
		t.Errorf("message still queued: %v", err)
	}
}

// dsnParts parses a delivered DSN: its header and its three parts.
type parsedDSN struct {
	header  mail.Header
	parts   []*multipart.Part
	bodies  [][]byte
	fields  textproto.MIMEHeader   // per-message fields
	perRcpt []textproto.MIMEHeader // per-recipient fields
}

func parseDSN(t *testing.T, raw string) parsedDSN {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q (%v)", m.Header.Get("Content-Type"), err)
	}
	p := parsedDSN{header: m.Header}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		b, err := io.ReadAll(part)
		if err != nil {
			t.Fatal(err)
		}
		p.parts = append(p.parts, part)
		p.bodies = append(p.bodies, b)
	}
	if len(p.parts) != 3 {
		t.Fatalf("%d parts, want 3", len(p.parts))
	}
	if ct := p.parts[1].Header.Get("Content-Type"); ct != "message/delivery-status" {
		t.Fatalf("second part is %q", ct)
	}
	// RFC 3464 §2.1: groups of header-like fields separated by empty lines.
	tr := textproto.NewReader(bufioReader(p.bodies[1]))
	for i := 0; ; i++ {
		h, err := tr.ReadMIMEHeader()
		if len(h) > 0 {
			if i == 0 {
				p.fields = h
			} else {
				p.perRcpt = append(p.perRcpt, h)
			}
		}
		if err != nil {
			break
		}
	}
	return p
}

func (p parsedDSN) rcpt(t *testing.T, final string) textproto.MIMEHeader {
	t.Helper()
	for _, h := range p.perRcpt {
		if h.Get("Final-Recipient") == final {
			return h
		}
	}
	t.Fatalf("no recipient %q in %v", final, p.perRcpt)
	return nil
}

func TestQueueBounceUnknown(t *testing.T) {
	qe := newQueueEnv(t)
	qe.start(nil)
	env := spool.Envelope{Sender: "a@example.test", Ret: spool.RetFull, EnvID: "env-1",
		Recipients: []spool.Recipient{{Addr: "b@example.test"},
			{Addr: "nobody@example.test", ORcpt: "rfc822;Nobody@Example.test"}}}
	id := qe.submit(env, queueMsg)
	qe.waitUntil("delivery and bounce", func() bool {
		return len(qe.newFiles("b")) == 1 && len(qe.newFiles("a")) == 1 && qe.queueEmpty()
	})
	raw := readFile(t, qe.newFiles("a")[0])
	if !strings.HasPrefix(raw, "Return-Path: <>\r\n") {
		t.Errorf("bounce not from the null sender:\n%.200s", raw)
	}
	p := parseDSN(t, raw)
	if got := p.header.Get("From"); !strings.Contains(got, "MAILER-DAEMON@mx.example.test") {
		t.Errorf("From %q", got)
	}
	if p.header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("Auto-Submitted %q", p.header.Get("Auto-Submitted"))
	}
	if p.fields.Get("Reporting-MTA") != "dns; mx.example.test" || p.fields.Get("Original-Envelope-Id") != "env-1" ||
		p.fields.Get("Arrival-Date") == "" || p.fields.Get("X-Mailroom-Queue-Id") != string(id) {
		t.Errorf("per-message fields %v", p.fields)
	}
	if len(p.perRcpt) != 1 {
		t.Fatalf("%d recipients reported, want only the failed one: %v", len(p.perRcpt), p.perRcpt)
	}
	r := p.rcpt(t, "rfc822; nobody@example.test")
	if r.Get("Action") != "failed" || r.Get("Status") != "5.1.1" || r.Get("Original-Recipient") != "rfc822; Nobody@Example.test" ||
		!strings.HasPrefix(r.Get("Diagnostic-Code"), "X-mailroom; <nobody@example.test>: user unknown") {
		t.Errorf("recipient fields %v", r)
	}
	if ct := p.parts[2].Header.Get("Content-Type"); ct != "message/rfc822" {
		t.Errorf("third part %q", ct)
	}
	if !bytes.Contains(p.bodies[2], []byte("Subject: queued\r\nMessage-ID: <q1@example.test>\r\n\r\nhello")) {
		t.Errorf("original not attached whole:\n%s", p.bodies[2])
	}
	if !strings.Contains(string(p.bodies[0]), "nobody@example.test") {
		t.Errorf("human part does not name the recipient:\n%s", p.bodies[0])
	}
	if !strings.Contains(qe.logs.String(), "status=bounced") {
		t.Errorf("no bounced line:\n%s", qe.logs.String())
	}
}

func TestQueueNoDSN(t *testing.T) {
	tests := []struct {
		name   string
		sender string
		rcpt   spool.Recipient
		log    string
	}{
		{"null sender", "", spool.Recipient{Addr: "nobody@example.test"}, "msg=bounce"},
		{"NOTIFY=NEVER", "a@example.test", spool.Recipient{Addr: "nobody@example.test", Notify: spool.NotifyNever}, "status=bounced"},
		{"NOTIFY=DELAY only", "a@example.test", spool.Recipient{Addr: "nobody@example.test", Notify: spool.NotifyDelay}, "status=bounced"},
		{"delivered without SUCCESS", "a@example.test", spool.Recipient{Addr: "b@example.test", Notify: spool.NotifyFailure}, "status=sent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			qe := newQueueEnv(t)
			qe.start(nil)
			qe.submit(spool.Envelope{Sender: tc.sender, Recipients: []spool.Recipient{tc.rcpt}}, queueMsg)
			qe.waitUntil("the message to finish", qe.queueEmpty)
			qe.shutdown()
			if n := len(qe.newFiles("a")); n != 0 {
				t.Errorf("%d DSNs, want none", n)
			}
			if !strings.Contains(qe.logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, qe.logs.String())
			}
			if strings.Contains(qe.logs.String(), "msg=dsn") {
				t.Errorf("a DSN was committed:\n%s", qe.logs.String())
			}
		})
	}
}

func TestQueueSuccessDSN(t *testing.T) {
	qe := newQueueEnv(t)
	qe.start(nil)
	qe.submit(spool.Envelope{Sender: "a@example.test", Recipients: []spool.Recipient{
		{Addr: "b@example.test", Notify: spool.NotifySuccess | spool.NotifyFailure}}}, queueMsg)
	qe.waitUntil("delivery and DSN", func() bool { return len(qe.newFiles("b")) == 1 && len(qe.newFiles("a")) == 1 && qe.queueEmpty() })
	p := parseDSN(t, readFile(t, qe.newFiles("a")[0]))
	r := p.rcpt(t, "rfc822; b@example.test")
	if r.Get("Action") != "delivered" || r.Get("Status") != "2.0.0" {
		t.Errorf("recipient fields %v", r)
	}
	// A success report returns the header only (RFC 3461 §4.3).
	if ct := p.parts[2].Header.Get("Content-Type"); ct != "text/rfc822-headers" {
		t.Errorf("third part %q", ct)
	}
	if bytes.Contains(p.bodies[2], []byte("hello")) {
		t.Errorf("success report returns the body")
	}
}

// TestQueueTempFailThenDelivered: over quota (tempfail) defers with
// backoff; once the quota is raised and the tables reloaded, the retry
// delivers.
func TestQueueTempFailThenDelivered(t *testing.T) {
	qe := newQueueEnv(t)
	qe.start(nil)
	id := qe.submit(spool.Envelope{Sender: "a@example.test", Recipients: rcpts("q@example.test", "b@example.test")}, queueMsg)
	var st []spool.RcptState
	qe.waitUntil("a deferral", func() bool {
		m, err := qe.sp.Message(id)
		if err != nil {
			return false
		}
		st = m.States
		return st[0].Status == spool.StatusDeferred && st[0].Attempts >= 1
	})
	if st[1].Status != spool.StatusDelivered || !strings.HasPrefix(st[0].Reason, "4.2.2 ") {
		t.Fatalf("states %+v", st)
	}
	if d := st[0].Next.Sub(st[0].Last); d != qe.cfg.Deliver.MinBackoff {
		t.Errorf("first backoff %v, want %v", d, qe.cfg.Deliver.MinBackoff)
	}
	qe.waitUntil("a second attempt", func() bool {
		m, err := qe.sp.Message(id)
		if err == nil && m.States[0].Attempts >= 2 {
			st = m.States
			return true
		}
		return false
	})
	if d := st[0].Next.Sub(st[0].Last); st[0].Attempts == 2 && d != 2*qe.cfg.Deliver.MinBackoff {
		t.Errorf("second backoff %v, want %v", d, 2*qe.cfg.Deliver.MinBackoff)
	}
	mustWrite(t, qe.cfg.PasswdFile, strings.Replace(testPasswd, ":::::::userdb_quota_rule=*:bytes=10", ":", 1))
	if err := qe.q.Reload(); err != nil {
		t.Fatal(err)
	}
	qe.waitUntil("the retry to deliver", func() bool { return len(qe.newFiles("q")) == 1 && qe.queueEmpty() })
	if len(qe.newFiles("b")) != 1 || len(qe.newFiles("a")) != 0 {
		t.Errorf("b got %d, a (sender) got %d", len(qe.newFiles("b")), len(qe.newFiles("a")))
	}
	if !strings.Contains(qe.logs.String(), "status=deferred") {
		t.Errorf("no deferred line:\n%s", qe.logs.String())
	}
}

// TestQueueRemoteExpires: without a transport a remote recipient is
// deferred with 4.4.1, warned about once, and bounced at expiry.
func TestQueueRemoteExpires(t *testing.T) {
	qe := newQueueEnv(t)
	qe.cfg.Deliver.MinBackoff = 20 * time.Millisecond
	qe.cfg.Deliver.MaxBackoff = 40 * time.Millisecond
	qe.cfg.Deliver.DelayWarning = 100 * time.Millisecond
	qe.cfg.Deliver.QueueLifetime = 400 * time.Millisecond
	qe.start(nil)
	qe.submit(spool.Envelope{Sender: "a@example.test", Recipients: rcpts("someone@elsewhere.test")}, queueMsg)
	qe.waitUntil("expiry", func() bool { return len(qe.newFiles("a")) == 2 && qe.queueEmpty() })
	var actions []string
	for _, f := range qe.newFiles("a") {
		p := parseDSN(t, readFile(t, f))
		r := p.rcpt(t, "rfc822; someone@elsewhere.test")
		actions = append(actions, r.Get("Action")+" "+r.Get("Status"))
		if r.Get("Action") == "failed" && !strings.Contains(r.Get("Diagnostic-Code"), "no remote transport configured") {
			t.Errorf("Diagnostic-Code %q", r.Get("Diagnostic-Code"))
		}
		if r.Get("Action") == "delayed" && r.Get("Will-Retry-Until") == "" {
			t.Errorf("delay report without Will-Retry-Until: %v", r)
		}
	}
	sort.Strings(actions) // file names need not sort by time
	if strings.Join(actions, ",") != "delayed 4.4.1,failed 4.4.1" {
		t.Errorf("reports %v, want one delay warning then a failure", actions)
	}
}

// fakeTransport answers per recipient from a table.
type fakeTransport struct {
	mu    sync.Mutex
	calls int
	data  []string
}

func (f *fakeTransport) Send(ctx context.Context, msg *RemoteMessage) []RemoteResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	b, _ := io.ReadAll(io.NewSectionReader(msg.Data, 0, msg.Size))
	f.data = append(f.data, string(b))
	var out []RemoteResult
	for _, r := range msg.Rcpts {
		switch {
		case strings.HasPrefix(r.Addr, "ok@"):
			out = append(out, RemoteResult{Outcome: RemoteSent, Relay: "mx.far.test[192.0.2.1]:25", Reply: "250 2.0.0 queued"})
		default:
			out = append(out, RemoteResult{Outcome: RemotePermFail, Status: "5.1.1", Relay: "mx.far.test[192.0.2.1]:25",
				Reply: "550 5.1.1 <" + r.Addr + ">: no such user\r\nsecond line"})
		}
	}
	return out
}

func TestQueueRemoteTransport(t *testing.T) {
	qe := newQueueEnv(t)
	ft := &fakeTransport{}
	qe.start(ft)
	qe.submit(spool.Envelope{Sender: "a@example.test", Recipients: rcpts("ok@far.test", "bad@far.test")}, queueMsg)
	qe.waitUntil("the bounce", func() bool { return len(qe.newFiles("a")) == 1 && qe.queueEmpty() })
	p := parseDSN(t, readFile(t, qe.newFiles("a")[0]))
	r := p.rcpt(t, "rfc822; bad@far.test")
	if r.Get("Status") != "5.1.1" || r.Get("Remote-MTA") != "dns; mx.far.test" ||
		r.Get("Diagnostic-Code") != "smtp; 550 5.1.1 <bad@far.test>: no such user second line" {
		t.Errorf("recipient fields %v", r)
	}
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.calls != 1 || ft.data[0] != queueMsg {
		t.Errorf("transport called %d times with %q", ft.calls, ft.data)
	}
	if !strings.Contains(qe.logs.String(), "relay=mx.far.test[192.0.2.1]:25") {
		t.Errorf("no relay in the log:\n%s", qe.logs.String())
	}
}

// TestQueueAliasForward: an alias naming a remote address makes a new
// message for it, marked with Delivered-To.
func TestQueueAliasForward(t *testing.T) {
	qe := newQueueEnv(t)
	ft := &fakeTransport{}
	qe.start(ft)
	qe.submit(spool.Envelope{Sender: "s@sender.test", Recipients: rcpts("far@example.test")}, queueMsg)
	// The fake refuses someone@elsewhere.test; the bounce to the remote
	// sender is refused too, and that one is dropped, not bounced again.
	qe.waitUntil("the forward and its bounce", func() bool {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		return ft.calls == 2 && qe.queueEmpty()
	})
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if !strings.HasPrefix(ft.data[0], "Delivered-To: far@example.test\r\n"+queueMsg) {
		t.Errorf("forwarded copy %q", ft.data[0])
	}
	if !strings.Contains(ft.data[1], "Action: failed") || !strings.Contains(qe.logs.String(), `msg=bounce`) {
		t.Errorf("second call %q, log:\n%s", ft.data[1], qe.logs.String())
	}
}

func TestQueueMaildropPickup(t *testing.T) {
	qe := newQueueEnv(t)
	qe.start(nil)
	w, err := qe.sp.Drop(spool.Envelope{Origin: spool.OriginLocal, Body: spool.Body8BitMIME, Sender: "a@example.test",
		Recipients: rcpts("b@example.test")})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: dropped\n\nbody\n")
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	qe.waitUntil("the drop's delivery", func() bool { return len(qe.newFiles("b")) == 1 && qe.queueEmpty() })
	if got := readFile(t, qe.newFiles("b")[0]); got != "Return-Path: <a@example.test>\nDelivered-To: b@example.test\nSubject: dropped\n\nbody\n" {
		t.Errorf("delivered %q", got)
	}
	drops, err := qe.sp.ListMaildrop()
	if err != nil || len(drops) != 0 {
		t.Errorf("maildrop still has %v (%v)", drops, err)
	}
}

// TestQueueWithoutInotify: when the kernel refuses an inotify instance
// (the uid's max_user_instances spent by other processes), the daemon
// polls the spool instead of stopping, and mail is still delivered, from
// smtpd's queue and from the maildrop.
func TestQueueWithoutInotify(t *testing.T) {
	initWas, intervalWas := inotifyInit, pollInterval
	inotifyInit = func(int) (int, error) { return -1, unix.EMFILE }
	pollInterval = 20 * time.Millisecond
	t.Cleanup(func() { inotifyInit, pollInterval = initWas, intervalWas })

	qe := newQueueEnv(t)
	qe.start(nil)
	qe.submit(spool.Envelope{Sender: "s@sender.test", Recipients: rcpts("a@example.test")}, queueMsg)
	w, err := qe.sp.Drop(spool.Envelope{Origin: spool.OriginLocal, Body: spool.Body8BitMIME, Sender: "a@example.test",
		Recipients: rcpts("b@example.test")})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: dropped\n\nbody\n")
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	qe.waitUntil("delivery by polling", func() bool {
		return len(qe.newFiles("a")) == 1 && len(qe.newFiles("b")) == 1 && qe.queueEmpty()
	})
	if logs := qe.logs.String(); !strings.Contains(logs, "polling the spool") {
		t.Errorf("no warning about polling:\n%s", logs)
	}
}

func TestQueueLockedAndRescan(t *testing.T) {
	qe := newQueueEnv(t)
	// Queued before the daemon starts: the start-up rescan finds it.
	qe.submit(spool.Envelope{Sender: "s@sender.test", Recipients: rcpts("b@example.test")}, queueMsg)
	qe.start(nil)
	qe.waitUntil("the rescan's delivery", func() bool { return len(qe.newFiles("b")) == 1 && qe.queueEmpty() })
	second, err := NewQueue(qe.cfg, QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Run(context.Background()); !errors.Is(err, ErrLocked) {
		t.Errorf("second daemon: %v, want ErrLocked", err)
	}
}

func TestQueueLoopAndBadData(t *testing.T) {
	qe := newQueueEnv(t)
	qe.start(nil)
	qe.submit(spool.Envelope{Sender: "a@example.test", Recipients: rcpts("b@example.test")},
		"Delivered-To: b@example.test\r\nSubject: loop\r\n\r\nx\r\n")
	qe.waitUntil("the loop's bounce", func() bool { return len(qe.newFiles("a")) == 1 && qe.queueEmpty() })
	p := parseDSN(t, readFile(t, qe.newFiles("a")[0]))
	if r := p.rcpt(t, "rfc822; b@example.test"); r.Get("Status") != "5.4.6" {
		t.Errorf("loop status %v", r)
	}
	if len(qe.newFiles("b")) != 0 {
		t.Error("looping message delivered")
	}
}

func TestBackoff(t *testing.T) {
	cfg := newMDAEnv(t).cfg
	cfg.Deliver.MinBackoff, cfg.Deliver.MaxBackoff = time.Minute, 10*time.Minute
	q := &Queue{}
	q.conf.Store(cfg)
	for attempts, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 4: 8 * time.Minute, 5: 10 * time.Minute, 40: 10 * time.Minute} {
		if got := q.backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}

// TestReloadConfig: SIGHUP's configuration is in force for the next
// step (the backoff here); one whose tables do not load changes nothing.
func TestReloadConfig(t *testing.T) {
	e := newMDAEnv(t)
	e.cfg.SpoolDir = t.TempDir()
	if err := spool.Setup(e.cfg.SpoolDir); err != nil {
		t.Fatal(err)
	}
	e.cfg.Deliver.MinBackoff, e.cfg.Deliver.MaxBackoff = time.Minute, time.Hour
	q, err := NewQueue(e.cfg, QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := *e.cfg
	next.Deliver.MinBackoff = 3 * time.Minute
	if err := q.ReloadConfig(&next); err != nil {
		t.Fatal(err)
	}
	if got := q.backoff(1); got != 3*time.Minute {
		t.Errorf("after a reload: backoff(1) = %v, want the new 3m", got)
	}
	bad := next
	bad.Deliver.MinBackoff = time.Second
	bad.PasswdFile = filepath.Join(t.TempDir(), "missing")
	if err := q.ReloadConfig(&bad); err == nil {
		t.Fatal("a configuration whose passwd file is missing was taken")
	}
	if got := q.backoff(1); got != 3*time.Minute {
		t.Errorf("after a refused reload: backoff(1) = %v, want the old 3m", got)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// TestQueueThroughput measures spool to Maildir: n messages of 5 KB
// committed by 8 writers while the daemon runs, until the last is in
// new/. It is a measurement, run with MAILROOM_QUEUE_BENCH=<n>.
func TestQueueThroughput(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MAILROOM_QUEUE_BENCH"))
	if n <= 0 {
		t.Skip("set MAILROOM_QUEUE_BENCH=<messages> to measure")
	}
	qe := newQueueEnv(t)
	qe.cfg.Deliver.QueueConcurrency = 8
	qe.start(nil)
	body := queueMsg + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 78)
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	var wg sync.WaitGroup
	per := (n + 7) / 8
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w * per; i < min(n, (w+1)*per); i++ {
				qe.submit(spool.Envelope{Sender: "s@sender.test", Recipients: rcpts("a@example.test")}, body)
			}
		}()
	}
	wg.Wait()
	committed := time.Since(start)
	qe.waitUntil("every delivery", func() bool { return len(qe.newFiles("a")) >= n && qe.queueEmpty() })
	elapsed := time.Since(start)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) -
		syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
	t.Logf("%d messages: committed in %v, delivered in %v: %.0f msgs/s; CPU (writers and daemon) %v/msg",
		n, committed.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), (cpu / time.Duration(n)).Round(time.Microsecond))

	// The daemon alone: a backlog of n drained after a restart.
	qe.shutdown()
	for range n {
		qe.submit(spool.Envelope{Sender: "s@sender.test", Recipients: rcpts("b@example.test")}, body)
	}
	qe.tasks.Store(0)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start = time.Now()
	qe.start(nil)
	qe.waitUntil("the backlog", func() bool { return qe.tasks.Load() >= int64(n) })
	elapsed = time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if got := len(qe.newFiles("b")); got != n || !qe.queueEmpty() {
		t.Fatalf("%d of %d delivered", got, n)
	}
	cpu = time.Duration(syscall.TimevalToNsec(ru1.Utime) + syscall.TimevalToNsec(ru1.Stime) -
		syscall.TimevalToNsec(ru0.Utime) - syscall.TimevalToNsec(ru0.Stime))
	t.Logf("backlog of %d drained in %v: %.0f msgs/s; daemon CPU %v/msg",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), (cpu / time.Duration(n)).Round(time.Microsecond))
}
