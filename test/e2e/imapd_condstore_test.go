package e2e

// CONDSTORE and QRESYNC (RFC 7162) of the built imapd, driven by python3's
// imaplib: a client records UIDVALIDITY and HIGHESTMODSEQ, imapd is
// restarted (MODSEQs live in the Maildir, not in the process), deliver
// adds a message, another session changes flags and expunges, and the
// client's SELECT (QRESYNC ...) gets exactly the vanished UIDs and the
// changed messages.

import (
	"encoding/json"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

// qresyncScript runs one step. argv: host port cafile user password step
// [uidvalidity modseq]. It prints one line of JSON.
const qresyncScript = imaplibHelpers + `
import imaplib, json, ssl, sys
host, port, ca, user, pw, step = sys.argv[1:7]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca), timeout=30)
ok(m.login(user, pw), 'login')
out = {'caps': s(ok(m.capability(), 'capability')[0]).split()}
if step == 'record':
    ok(m.enable('QRESYNC'), 'enable')
    out['enabled'] = [s(d) for d in m.untagged_responses.pop('ENABLED', [])]
    ok(m.select('INBOX'), 'select')
    out['uidvalidity'] = int(m.response('UIDVALIDITY')[1][0])
    out['highestmodseq'] = int(m.response('HIGHESTMODSEQ')[1][0])
elif step == 'change':
    ok(m.select('INBOX'), 'select')
    ok(m.uid('STORE', '2', '+FLAGS', '(\\Flagged)'), 'store flagged')
    ok(m.uid('STORE', '3', '+FLAGS.SILENT', '(\\Deleted)'), 'store deleted')
    ok(m.expunge(), 'expunge')
elif step == 'resync':
    uv, ms = sys.argv[7:9]
    ok(m.enable('QRESYNC'), 'enable')
    typ, data = m._simple_command('SELECT', 'INBOX', '(QRESYNC (%s %s))' % (uv, ms))
    if typ != 'OK': raise SystemExit('SELECT QRESYNC: %r' % data)
    m.state = 'SELECTED'
    out['select_vanished'] = [s(d) for d in m.untagged_responses.pop('VANISHED', [])]
    out['select_fetch'] = [s(d) for d in m.untagged_responses.pop('FETCH', [])]
    typ, data = m._simple_command('UID', 'FETCH', '1:*', '(FLAGS)', '(CHANGEDSINCE %s VANISHED)' % ms)
    if typ != 'OK': raise SystemExit('UID FETCH VANISHED: %r' % data)
    out['fetch_vanished'] = [s(d) for d in m.untagged_responses.pop('VANISHED', [])]
    out['fetch_fetch'] = [s(d) for d in m.untagged_responses.pop('FETCH', [])]
    typ, data = m._simple_command('SELECT', 'INBOX', '(QRESYNC (%d %s))' % (int(uv) + 1, ms))
    if typ != 'OK': raise SystemExit('SELECT QRESYNC other UIDVALIDITY: %r' % data)
    out['other_uidvalidity'] = [s(d) for k in ('VANISHED', 'FETCH') for d in m.untagged_responses.pop(k, [])]
m.logout()
print(json.dumps(out))
`

type qresyncResult struct {
	Caps             []string
	Enabled          []string
	UIDValidity      uint32   `json:"uidvalidity"`
	HighestModSeq    uint64   `json:"highestmodseq"`
	SelectVanished   []string `json:"select_vanished"`
	SelectFetch      []string `json:"select_fetch"`
	FetchVanished    []string `json:"fetch_vanished"`
	FetchFetch       []string `json:"fetch_fetch"`
	OtherUIDValidity []string `json:"other_uidvalidity"`
}

func (s *imapServer) qresyncStep(t *testing.T, e *env, step string, args ...string) qresyncResult {
	t.Helper()
	python := requireTool(t, "/usr/bin/python3")
	host, port, _ := net.SplitHostPort(s.tls)
	r := e.runProgram("", python, append([]string{"-c", qresyncScript, host, port, s.cert, imapUser, imapPass, step}, args...)...)
	r.wantCode(t, 0)
	var out qresyncResult
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("%s output %q: %v", step, r.stdout, err)
	}
	return out
}

var qresyncFetchRe = regexp.MustCompile(`^\d+ \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)$`)

// changedUIDs maps the FETCH responses of a resync to UID → flags,
// checking that each carries a MODSEQ above since.
func changedUIDs(t *testing.T, what string, fetches []string, since uint64) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, f := range fetches {
		m := qresyncFetchRe.FindStringSubmatch(f)
		if m == nil {
			t.Fatalf("%s: FETCH %q is not (UID FLAGS MODSEQ)", what, f)
		}
		if ms, _ := strconv.ParseUint(m[3], 10, 64); ms <= since {
			t.Errorf("%s: FETCH %q has a MODSEQ at or below %d", what, f, since)
		}
		got[m[1]] = m[2]
	}
	return got
}

func TestImapdQResync(t *testing.T) {
	e, s := imapSetup(t) // UIDs 1, 2, 3
	rec := s.qresyncStep(t, e, "record")
	if !slices.Contains(rec.Caps, "CONDSTORE") || !slices.Contains(rec.Caps, "QRESYNC") {
		t.Fatalf("capabilities %q lack CONDSTORE and QRESYNC", rec.Caps)
	}
	if !slices.Equal(rec.Enabled, []string{"QRESYNC"}) || rec.HighestModSeq == 0 {
		t.Fatalf("ENABLE QRESYNC %q, HIGHESTMODSEQ %d", rec.Enabled, rec.HighestModSeq)
	}
	// A new imapd process: what the client recorded must still hold.
	s.d.stop()
	cert, _ := imapCert(t, e)
	s = startImapd(t, e, cert)
	e.run("From: d@example.net\nTo: alice@example.org\nSubject: later\n\nnew\n",
		"deliver", "-f", "d@example.net", imapUser).wantCode(t, 0) // UID 4
	s.qresyncStep(t, e, "change") // UID 2 \Flagged, UID 3 expunged

	r := s.qresyncStep(t, e, "resync", strconv.FormatUint(uint64(rec.UIDValidity), 10), strconv.FormatUint(rec.HighestModSeq, 10))
	if !slices.Equal(r.SelectVanished, []string{"(EARLIER) 3"}) {
		t.Errorf("SELECT (QRESYNC): VANISHED %q, want (EARLIER) 3", r.SelectVanished)
	}
	want := map[string]string{"2": `\Flagged`, "4": ``}
	if got := changedUIDs(t, "SELECT (QRESYNC)", r.SelectFetch, rec.HighestModSeq); !maps.Equal(got, want) {
		t.Errorf("SELECT (QRESYNC): changed %v, want %v", got, want)
	}
	if !slices.Equal(r.FetchVanished, []string{"(EARLIER) 3"}) {
		t.Errorf("UID FETCH (CHANGEDSINCE VANISHED): VANISHED %q, want (EARLIER) 3", r.FetchVanished)
	}
	if got := changedUIDs(t, "UID FETCH (CHANGEDSINCE VANISHED)", r.FetchFetch, rec.HighestModSeq); !maps.Equal(got, want) {
		t.Errorf("UID FETCH (CHANGEDSINCE VANISHED): changed %v, want %v", got, want)
	}
	if len(r.OtherUIDValidity) != 0 {
		t.Errorf("another UIDVALIDITY still got %q", r.OtherUIDValidity)
	}
}
