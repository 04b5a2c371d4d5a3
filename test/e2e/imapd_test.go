package e2e

// imapd as a separate process, driven by IMAP clients Debian ships:
// python3's imaplib, mbsync (isync) and mutt, each over TLS with the
// test's self-signed certificate as the only trust anchor. Dovecot and a
// second imapd on the same Maildirs are in imapd_shared_test.go.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
)

const (
	imapUser = "alice@example.org"
	imapPass = "alice pw"
)

// imapMessages are delivered to the test user before imapd starts: a plain
// text message, a multipart one with an attachment, 8-bit text.
var imapMessages = []string{
	"From: Alice <a@example.net>\nTo: alice@example.org\nSubject: first\nDate: Mon, 2 Jan 2006 15:04:05 -0700\nMessage-ID: <1@example.net>\n\nhello world\nline two\n",
	"From: b@example.net\nTo: alice@example.org\nSubject: multi\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\nContent-Type: text/plain\n\npart one\n--XX\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\naGVsbG8gYmluYXJ5\n--XX--\n",
	"From: c@example.net\nTo: alice@example.org\nSubject: third\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ncaf\xc3\xa9 \xe2\x82\xac\n",
}

// imapServer is a running imapd.
type imapServer struct {
	plain, tls string // addresses: imap (STARTTLS) and imaps
	cert       string // the CA file clients trust
	d          *daemon
}

// imapCert writes the certificate for localhost and 127.0.0.1 once per env
// and returns the config lines naming it.
func imapCert(t *testing.T, e *env) (cert, conf string) {
	t.Helper()
	cert, key := filepath.Join(e.Dir, "cert.pem"), filepath.Join(e.Dir, "key.pem")
	if _, err := os.Stat(cert); os.IsNotExist(err) {
		if err := tlsconf.WriteSelfSigned(cert, key, []string{"localhost", "127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		chmod(t, cert, 0o644)
	}
	return cert, fmt.Sprintf("tls_cert = %s\ntls_key = %s\n", cert, key)
}

// startImapd starts imapd on two fresh loopback ports with the env's
// configuration (which must name the certificate) and waits until both
// accept connections; it is stopped with SIGTERM when the test ends.
func startImapd(t *testing.T, e *env, cert string) *imapServer {
	t.Helper()
	s := &imapServer{plain: freeAddr(t), tls: freeAddr(t), cert: cert}
	s.d = startDaemon(t, "imapd", e.bin("imapd"), nil, "--config", e.Config,
		"--listen", "imap="+s.plain, "--listen", "imaps="+s.tls)
	for _, addr := range []string{s.plain, s.tls} {
		up := testutil.WaitFor(daemonWait, func() bool {
			if s.d.exited() {
				return true
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
		if !up || s.d.exited() {
			t.Fatalf("imapd not listening on %s (exited %v: %v)\n%s", addr, s.d.exited(), s.d.err, s.d.log)
		}
	}
	return s
}

// imapSetup makes alice (cheap password hash), delivers imapMessages with
// the built deliver and starts imapd.
func imapSetup(t *testing.T) (*env, *imapServer) {
	t.Helper()
	e := newEnv(t, "example.org")
	e.addUser(imapUser, imapPass)
	cheapPassword(t, e, imapUser, imapPass)
	for _, m := range imapMessages {
		e.run(m, "deliver", "-f", "x@example.net", imapUser).wantCode(t, 0)
	}
	cert, conf := imapCert(t, e)
	e.writeConfig([]string{"example.org"}, conf)
	return e, startImapd(t, e, cert)
}

// imaplibHelpers are the Python functions the imaplib scripts share: s
// gives a response item as text, ok returns a command's data or ends the
// script, naming what failed, when the command was not OK.
const imaplibHelpers = `
def s(b): return b.decode('latin-1') if isinstance(b, bytes) else str(b)
def ok(res, what):
    typ, data = res
    if typ != 'OK':
        raise SystemExit('%s: %s %r' % (what, typ, data))
    return data
`

// imaplibScript drives imapd through python3's imaplib: STARTTLS on the
// plain port, then everything else over IMAPS. It prints "IDLING" when its
// IDLE is under way (the test then delivers a message) and, last, one
// line of JSON. argv: host plain_port tls_port cafile user password.
const imaplibScript = imaplibHelpers + `
import imaplib, json, re, ssl, sys, time
imaplib.Commands.setdefault('MOVE', ('SELECTED',))
host, plain_port, tls_port, ca, user, pw = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
out = {}
def flat(data):
    parts = []
    for d in data:
        if isinstance(d, tuple): parts += [s(d[0]), s(d[1])]
        elif d is not None: parts.append(s(d))
    return parts

c = imaplib.IMAP4(host, int(plain_port), timeout=30)
out['caps_plain'] = sorted(c.capabilities)
c.starttls(ssl_context=ctx)
out['caps_tls'] = sorted(c.capabilities)
ok(c.login(user, pw), 'login after STARTTLS')
c.logout()

m = imaplib.IMAP4_SSL(host, int(tls_port), ssl_context=ctx, timeout=30)
ok(m.login(user, pw), 'login imaps')
out['exists'] = int(ok(m.select('INBOX'), 'select')[0])
seq = {}
data = ok(m.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])'), 'fetch subjects')
for d in data:
    if isinstance(d, tuple):
        seq[s(d[1]).split(':', 1)[1].strip()] = s(d[0]).split()[0]
out['seq'] = seq
first, multi, third = seq['first'], seq['multi'], seq['third']
out['flags_before'] = flat(ok(m.fetch('1:*', '(FLAGS)'), 'flags'))
out['body'] = flat(ok(m.fetch(first, '(BODY.PEEK[])'), 'body'))
out['partial'] = flat(ok(m.fetch(first, '(BODY.PEEK[]<0.20>)'), 'partial'))
out['text_partial'] = flat(ok(m.fetch(first, '(BODY.PEEK[TEXT]<3.8>)'), 'text partial'))
out['part'] = flat(ok(m.fetch(multi, '(BODY.PEEK[2] BODY.PEEK[1.MIME])'), 'part'))
out['bodystructure'] = flat(ok(m.fetch(multi, '(BODYSTRUCTURE)'), 'bodystructure'))
out['envelope'] = flat(ok(m.fetch(first, '(ENVELOPE RFC822.SIZE INTERNALDATE)'), 'envelope'))
ok(m.fetch(first, '(BODY[HEADER.FIELDS (SUBJECT)])'), 'fetch that sets seen')
out['flags_read'] = flat(ok(m.fetch(first, '(FLAGS)'), 'flags read'))
out['store'] = flat(ok(m.store(multi, '+FLAGS', '(\\Flagged $Work)'), 'store'))
out['search_subject'] = flat(ok(m.search(None, 'SUBJECT', '"first"'), 'search subject'))
out['search_flagged'] = flat(ok(m.search(None, 'FLAGGED'), 'search flagged'))
out['search_body'] = flat(ok(m.search(None, 'BODY', '"part one"'), 'search body'))
out['uid_search'] = flat(ok(m.uid('SEARCH', 'ALL'), 'uid search'))

ok(m.create('Work'), 'create')
out['copy'] = flat(ok(m.copy(first, 'Work'), 'copy'))
m.response('COPYUID')
third_uid = re.search(r'UID (\d+)', flat(ok(m.fetch(third, '(UID)'), 'uid'))[0]).group(1)
out['move'] = flat(ok(m.uid('MOVE', third_uid, 'Work'), 'move'))
out['move_copyuid'] = flat(m.response('COPYUID')[1])
out['move_expunge'] = flat(m.response('EXPUNGE')[1])
out['status'] = flat(ok(m.status('Work', '(MESSAGES UIDNEXT UNSEEN)'), 'status'))
msg = b'From: py@example.net\r\nSubject: appended\r\n\r\nby imaplib\r\n'
out['append'] = flat(ok(m.append('INBOX', '(\\Seen)', imaplib.Time2Internaldate(time.time()), msg), 'append'))
ok(m.store(first, '+FLAGS.SILENT', '(\\Deleted)'), 'store deleted')
out['expunge'] = flat(ok(m.expunge(), 'expunge'))
out['list_created'] = flat(ok(m.list(), 'list'))
ok(m.rename('Work', 'Projects'), 'rename')
out['list_renamed'] = flat(ok(m.list(), 'list'))
ok(m.delete('Projects'), 'delete')
out['list_deleted'] = flat(ok(m.list(), 'list'))
out['exists_before_idle'] = int(ok(m.select('INBOX'), 'select')[0])

tag = m._new_tag()
m.send(tag + b' IDLE\r\n')
cont = m.readline()
if not cont.startswith(b'+'):
    raise SystemExit('IDLE: %r' % cont)
print('IDLING', flush=True)
t0 = time.time()
idle = []
while True:
    l = m.readline()
    if not l: raise SystemExit('connection closed during IDLE')
    idle.append(s(l).rstrip())
    if b'EXISTS' in l: break
out['idle_seconds'] = time.time() - t0
m.send(b'DONE\r\n')
while True:
    l = m.readline()
    if not l: raise SystemExit('connection closed after DONE')
    if l.startswith(tag):
        out['idle_done'] = s(l).rstrip()
        break
    idle.append(s(l).rstrip())
out['idle'] = idle
n = re.search(r'(\d+) EXISTS', ' '.join(idle)).group(1)
out['idle_subject'] = flat(ok(m.fetch(n, '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])'), 'fetch new'))
m.logout()
print(json.dumps(out))
`

type imaplibResult struct {
	CapsPlain        []string `json:"caps_plain"`
	CapsTLS          []string `json:"caps_tls"`
	Exists           int      `json:"exists"`
	ExistsBeforeIdle int      `json:"exists_before_idle"`
	Seq              map[string]string
	FlagsBefore      []string `json:"flags_before"`
	Body             []string
	Partial          []string
	TextPartial      []string `json:"text_partial"`
	Part             []string
	BodyStructure    []string `json:"bodystructure"`
	Envelope         []string
	FlagsRead        []string `json:"flags_read"`
	Store            []string
	SearchSubject    []string `json:"search_subject"`
	SearchFlagged    []string `json:"search_flagged"`
	SearchBody       []string `json:"search_body"`
	UIDSearch        []string `json:"uid_search"`
	Copy, Move       []string
	MoveCopyUID      []string `json:"move_copyuid"`
	MoveExpunge      []string `json:"move_expunge"`
	Status, Append   []string
	Expunge          []string
	ListCreated      []string `json:"list_created"`
	ListRenamed      []string `json:"list_renamed"`
	ListDeleted      []string `json:"list_deleted"`
	Idle             []string
	IdleDone         string   `json:"idle_done"`
	IdleSeconds      float64  `json:"idle_seconds"`
	IdleSubject      []string `json:"idle_subject"`
}

func TestImapdImaplib(t *testing.T) {
	python := requireTool(t, "/usr/bin/python3")
	e, s := imapSetup(t)
	files := e.newMail(imapUser)
	host, plainPort, _ := net.SplitHostPort(s.plain)
	_, tlsPort, _ := net.SplitHostPort(s.tls)

	ctx, cancel := context.WithTimeout(t.Context(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", imaplibScript, host, plainPort, tlsPort, s.cert, imapUser, imapPass)
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 1<<20)
	var last string
	for lines.Scan() {
		last = lines.Text()
		if last == "IDLING" {
			// Another process delivers while imaplib idles.
			e.run("From: d@example.net\nTo: alice@example.org\nSubject: while idling\n\nnew\n",
				"deliver", "-f", "d@example.net", imapUser).wantCode(t, 0)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("imaplib script: %v\nstderr: %s\nlast output: %s", err, stderr.String(), last)
	}
	var r imaplibResult
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		t.Fatalf("imaplib output %q: %v", last, err)
	}

	// Before TLS: STARTTLS offered, passwords refused; after it, PLAIN.
	if !slices.Contains(r.CapsPlain, "STARTTLS") || !slices.Contains(r.CapsPlain, "LOGINDISABLED") {
		t.Errorf("capabilities before STARTTLS %q, want STARTTLS and LOGINDISABLED", r.CapsPlain)
	}
	if slices.Contains(r.CapsTLS, "LOGINDISABLED") || !slices.Contains(r.CapsTLS, "AUTH=PLAIN") {
		t.Errorf("capabilities after STARTTLS %q, want AUTH=PLAIN and no LOGINDISABLED", r.CapsTLS)
	}
	if r.Exists != 3 || len(r.Seq) != 3 {
		t.Fatalf("SELECT INBOX: %d messages, subjects %v; want the 3 delivered", r.Exists, r.Seq)
	}
	for _, f := range r.FlagsBefore {
		if strings.Contains(f, `\Seen`) {
			t.Errorf("a message is \\Seen before anything read it: %q", r.FlagsBefore)
		}
	}

	// BODY[] is the file with CRLF line ends, byte for byte.
	var firstFile string
	for _, f := range files {
		if strings.Contains(f, "Subject: first") {
			firstFile = crlf(f)
		}
	}
	if len(r.Body) < 2 || latin1Bytes(r.Body[1]) != firstFile {
		t.Fatalf("BODY[] of first: %q, want %q", r.Body, firstFile)
	}
	wantItem(t, "BODY[]<0.20>", r.Partial, "BODY[]<0>", firstFile[:20])
	text := firstFile[strings.Index(firstFile, "\r\n\r\n")+4:]
	wantItem(t, "BODY[TEXT]<3.8>", r.TextPartial, "BODY[TEXT]<3>", text[3:11])
	wantAll(t, "BODY[2] BODY[1.MIME]", strings.Join(r.Part, ""), "aGVsbG8gYmluYXJ5", "Content-Type: text/plain")
	wantAll(t, "BODYSTRUCTURE", strings.ToLower(strings.Join(r.BodyStructure, "")),
		`("text" "plain"`, `("application" "octet-stream"`, `"base64"`, `"mixed"`, `("boundary" "xx")`)
	wantAll(t, "ENVELOPE", strings.Join(r.Envelope, ""), `"Mon, 2 Jan 2006 15:04:05 -0700" "first" (("Alice" NIL "a" "example.net"))`,
		`"<1@example.net>"`, "RFC822.SIZE "+strconv.Itoa(len(firstFile)), "INTERNALDATE")
	wantAll(t, "FLAGS after BODY[HEADER.FIELDS]", strings.Join(r.FlagsRead, ""), `\Seen`)
	wantAll(t, "STORE +FLAGS", strings.Join(r.Store, ""), `\Flagged`, `$Work`)
	if want := r.Seq["first"]; !slices.Equal(r.SearchSubject, []string{want}) {
		t.Errorf("SEARCH SUBJECT first: %q, want %q", r.SearchSubject, want)
	}
	if want := r.Seq["multi"]; !slices.Equal(r.SearchFlagged, []string{want}) || !slices.Equal(r.SearchBody, []string{want}) {
		t.Errorf("SEARCH FLAGGED %q, SEARCH BODY \"part one\" %q, want %q", r.SearchFlagged, r.SearchBody, want)
	}
	if len(r.UIDSearch) != 1 || len(strings.Fields(r.UIDSearch[0])) != 3 {
		t.Errorf("UID SEARCH ALL: %q, want 3 UIDs", r.UIDSearch)
	}
	wantAll(t, "COPY", strings.Join(r.Copy, ""), "[COPYUID ")
	if len(r.MoveCopyUID) != 1 || len(r.MoveExpunge) != 1 {
		t.Errorf("UID MOVE: COPYUID %q, EXPUNGE %q; want one of each", r.MoveCopyUID, r.MoveExpunge)
	}
	wantAll(t, "STATUS Work", strings.Join(r.Status, ""), "MESSAGES 2", "UNSEEN 1")
	wantAll(t, "APPEND", strings.Join(r.Append, ""), "[APPENDUID ")
	if len(r.Expunge) != 1 || r.Expunge[0] != r.Seq["first"] {
		t.Errorf("EXPUNGE answered %q, want the first message's number %s", r.Expunge, r.Seq["first"])
	}
	wantAll(t, "LIST after CREATE", strings.Join(r.ListCreated, "\n"), `"." Work`, `\Sent`, `\Trash`)
	wantAll(t, "LIST after RENAME", strings.Join(r.ListRenamed, "\n"), `"." Projects`)
	for _, l := range append(slices.Clone(r.ListRenamed), r.ListDeleted...) {
		if strings.HasSuffix(l, " Work") {
			t.Errorf("LIST after RENAME shows Work: %q", l)
		}
	}
	if strings.Contains(strings.Join(r.ListDeleted, "\n"), "Projects") {
		t.Errorf("LIST after DELETE: %q", r.ListDeleted)
	}
	// 3 delivered, one moved, one appended, one expunged.
	if r.ExistsBeforeIdle != 2 {
		t.Errorf("INBOX holds %d messages before IDLE, want 2", r.ExistsBeforeIdle)
	}
	wantAll(t, "IDLE", strings.Join(r.Idle, "\n"), "* 3 EXISTS")
	if !strings.Contains(r.IdleDone, " OK") {
		t.Errorf("DONE answered %q", r.IdleDone)
	}
	wantAll(t, "the message delivered during IDLE", strings.Join(r.IdleSubject, ""), "while idling")
	t.Logf("IDLE reported the delivery %.2fs after it began (deliver ran in between)", r.IdleSeconds)
	if _, err := os.Stat(filepath.Join(e.maildir(imapUser), ".Projects")); !os.IsNotExist(err) {
		t.Errorf("the deleted folder is still on disk: %v", err)
	}
}

// wantItem checks a FETCH of one literal item: the response names name,
// and the literal is want.
func wantItem(t *testing.T, what string, got []string, name, want string) {
	t.Helper()
	if len(got) < 2 || !strings.Contains(got[0], name) || latin1Bytes(got[1]) != want {
		t.Errorf("%s: %q, want %s with %q", what, got, name, want)
	}
}

// wantAll checks that got contains every part.
func wantAll(t *testing.T, what, got string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(got, p) {
			t.Errorf("%s: %q lacks %q", what, got, p)
		}
	}
}

// imapState is a mailbox as an IMAP client sees it: UIDVALIDITY, UIDNEXT
// and, by UID, the flags (sorted, \Recent left out) and the subject.
type imapState struct {
	UIDValidity uint32             `json:"uidvalidity"`
	UIDNext     uint32             `json:"uidnext"`
	Msgs        map[uint32]imapMsg `json:"msgs"`
}

type imapMsg struct {
	Flags   []string `json:"flags"`
	Subject string   `json:"subject"`
}

// dumpScript prints a mailbox's imapState as JSON, read with EXAMINE so
// that looking changes nothing. argv: host port cafile user password box.
const dumpScript = `
import imaplib, json, re, ssl, sys
host, port, ca, user, pw, box = sys.argv[1:7]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca), timeout=30)
m.login(user, pw)
typ, data = m.select(box, readonly=True)
if typ != 'OK': raise SystemExit('EXAMINE %s: %r' % (box, data))
out = {'uidvalidity': int(m.response('UIDVALIDITY')[1][0]), 'uidnext': int(m.response('UIDNEXT')[1][0]), 'msgs': {}}
if int(data[0]) > 0:
    typ, data = m.uid('FETCH', '1:*', '(FLAGS)')
    for d in data:
        d = d.decode()
        uid = re.search(r'UID (\d+)', d).group(1)
        flags = re.search(r'FLAGS \(([^)]*)\)', d).group(1).split()
        out['msgs'][uid] = {'flags': sorted(f for f in flags if f != '\\Recent'), 'subject': ''}
    typ, data = m.uid('FETCH', '1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
    for d in data:
        if isinstance(d, tuple):
            uid = re.search(r'UID (\d+)', d[0].decode()).group(1)
            out['msgs'][uid]['subject'] = d[1].decode('latin-1').split(':', 1)[1].strip()
m.logout()
print(json.dumps(out))
`

// dump reads box through s with imaplib.
func (s *imapServer) dump(t *testing.T, e *env, box string) imapState {
	t.Helper()
	python := requireTool(t, "/usr/bin/python3")
	host, port, _ := net.SplitHostPort(s.tls)
	r := e.runProgram("", python, "-c", dumpScript, host, port, s.cert, imapUser, imapPass, box)
	r.wantCode(t, 0)
	var st imapState
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("dump output %q: %v", r.stdout, err)
	}
	return st
}

// bySubject returns the UID of the message with subject in st.
func (st imapState) bySubject(t *testing.T, subject string) uint32 {
	t.Helper()
	for uid, m := range st.Msgs {
		if m.Subject == subject {
			return uid
		}
	}
	t.Fatalf("no message %q in %+v", subject, st.Msgs)
	return 0
}

// sameFlags compares two states on UIDVALIDITY, UIDNEXT and every UID's
// flags (subjects are not compared: Dovecot's state has none).
func sameFlags(t *testing.T, what string, a, b imapState) {
	t.Helper()
	if a.UIDValidity != b.UIDValidity || a.UIDNext != b.UIDNext {
		t.Errorf("%s: UIDVALIDITY %d/%d, UIDNEXT %d/%d", what, a.UIDValidity, b.UIDValidity, a.UIDNext, b.UIDNext)
	}
	if len(a.Msgs) != len(b.Msgs) {
		t.Errorf("%s: %d messages %v against %d %v", what, len(a.Msgs), a.Msgs, len(b.Msgs), b.Msgs)
	}
	for uid, m := range a.Msgs {
		o, ok := b.Msgs[uid]
		if !ok {
			t.Errorf("%s: UID %d only on one side", what, uid)
			continue
		}
		if !slices.Equal(m.Flags, o.Flags) {
			t.Errorf("%s: UID %d flags %q against %q", what, uid, m.Flags, o.Flags)
		}
	}
}

func TestImapdMbsync(t *testing.T) {
	mbsync := requireTool(t, "/usr/bin/mbsync")
	e, s := imapSetup(t)
	local := filepath.Join(e.Dir, "local")
	if err := os.Mkdir(local, 0o700); err != nil {
		t.Fatal(err)
	}
	// localhost, not 127.0.0.1: mbsync checks the certificate's DNS names
	// only.
	_, port, _ := net.SplitHostPort(s.tls)
	rc := filepath.Join(e.Dir, "mbsyncrc")
	writeFile(t, rc, fmt.Sprintf(`IMAPAccount mailroom
Host localhost
Port %s
User %s
Pass "%s"
SSLType IMAPS
CertificateFile %s

IMAPStore remote
Account mailroom

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel inbox
Far :remote:
Near :local:
Create Near
Sync All
Expunge Both
SyncState *
`, port, imapUser, imapPass, s.cert, local, local))
	sync := func() result {
		t.Helper()
		r := e.runProgram("", mbsync, "-c", rc, "-V", "inbox")
		r.wantCode(t, 0)
		return r
	}
	inbox := filepath.Join(local, "INBOX")

	// Pull: the three messages, byte for byte but for line ends.
	sync()
	var pulled []string
	for _, f := range append(readDirFiles(t, filepath.Join(inbox, "new")), readDirFiles(t, filepath.Join(inbox, "cur"))...) {
		// mbsync marks what it stores with an X-TUID field of its own.
		pulled = append(pulled, xTUID.ReplaceAllString(f, ""))
	}
	wantContains(t, "mbsync", pulled, e.newMail(imapUser))

	// Push a flag change and a new message.
	flagged := false
	for _, dir := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(inbox, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range ents {
			p := filepath.Join(inbox, dir, de.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), "Subject: multi") {
				continue
			}
			name := de.Name()
			if !strings.Contains(name, ":2,") {
				name += ":2,"
			}
			if err := os.Rename(p, filepath.Join(inbox, "cur", name+"F")); err != nil {
				t.Fatal(err)
			}
			flagged = true
		}
	}
	if !flagged {
		t.Fatal("mbsync did not store the multi message")
	}
	writeFile(t, filepath.Join(inbox, "new", "1700000000.mbsynctest.local"), "From: me@example.org\nSubject: pushed\n\nfrom mbsync\n")
	sync()
	st := s.dump(t, e, "INBOX")
	if len(st.Msgs) != 4 {
		t.Fatalf("after the push imapd has %d messages, want 4: %+v", len(st.Msgs), st.Msgs)
	}
	if f := st.Msgs[st.bySubject(t, "multi")].Flags; !slices.Equal(f, []string{`\Flagged`}) {
		t.Errorf("the flag pushed by mbsync: imapd has %q, want \\Flagged", f)
	}
	if f := st.Msgs[st.bySubject(t, "pushed")].Flags; len(f) != 0 {
		t.Errorf("the message pushed by mbsync has flags %q, want none", f)
	}

	// A third sync has nothing to do: neither side changes.
	before := localNames(t, inbox)
	r := sync()
	if after := localNames(t, inbox); !slices.Equal(before, after) {
		t.Errorf("the third sync changed the local Maildir: %q then %q\n%s", before, after, r.stdout)
	}
	again := s.dump(t, e, "INBOX")
	sameFlags(t, "imapd before and after the third sync", st, again)
}

var xTUID = regexp.MustCompile(`(?m)^X-TUID: .*\n`)

// localNames lists the files of a Maildir's cur/ and new/.
func localNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range ents {
			names = append(names, sub+"/"+de.Name())
		}
	}
	slices.Sort(names)
	return names
}

func TestImapdMutt(t *testing.T) {
	mutt := requireTool(t, "/usr/bin/mutt")
	scriptTool := requireTool(t, "/usr/bin/script")
	e, s := imapSetup(t)
	_, port, _ := net.SplitHostPort(s.tls)
	out := filepath.Join(e.Dir, "mutt-piped")
	rc := filepath.Join(e.Dir, "muttrc")
	writeFile(t, rc, fmt.Sprintf(`set imap_user="%s"
set imap_pass="%s"
set ssl_ca_certificates_file="%s"
set certificate_file="%s"
set header_cache=""
set message_cachedir=""
set quit=yes
set move=no
set wait_key=no
set pipe_split=no
set pipe_decode=no
set beep=no
set sort=subject
set index_format="IDX %%s"
`, imapUser, imapPass, s.cert, filepath.Join(e.Dir, "mutt-certs")))
	// mutt reads mail only with a terminal: script(1) gives it one. The
	// pushed keys pipe each message to a file, flag the first in the
	// index (sorted by subject: "first"), write the change back and quit.
	pipe := `<pipe-message>cat >> ` + out + `<enter>`
	// mutt 2.2 here loses the first pipe of a session (its output never
	// reaches the file, every time): a sacrificial one goes first.
	keys := `<pipe-message>true<enter>` + pipe + `<next-entry>` + pipe + `<next-entry>` + pipe +
		`<first-entry><flag-message><sync-mailbox><quit>`
	muttCmd := strings.Join([]string{shellQuote(mutt), "-n", "-F", shellQuote(rc),
		"-f", shellQuote("imaps://127.0.0.1:" + port + "/INBOX"), "-e", shellQuote("push " + strconv.Quote(keys))}, " ")
	ctx, cancel := context.WithTimeout(t.Context(), processTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, scriptTool, "-q", "-e", "-c", muttCmd, "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=vt100", "LINES=24", "COLUMNS=100", "HOME="+e.Dir)
	// A pipe that stays open: at end of input script(1) would send mutt
	// an EOF character, a key.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var screen testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &screen, &screen
	if err := cmd.Run(); err != nil {
		t.Fatalf("mutt: %v\nscreen:\n%s", err, screen.String())
	}
	if !strings.Contains(screen.String(), "IDX first") {
		t.Errorf("mutt's index does not list the messages; screen:\n%q", screen.String())
	}
	piped, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("mutt piped nothing: %v\nscreen:\n%q", err, screen.String())
	}
	if !strings.Contains(string(piped), "Subject: first") {
		t.Logf("screen:\n%q", screen.String())
	}
	wantAll(t, "what mutt piped", string(piped), "Subject: first", "hello world", "Subject: multi", "aGVsbG8gYmluYXJ5", "Subject: third")
	st := s.dump(t, e, "INBOX")
	if f := st.Msgs[st.bySubject(t, "first")].Flags; !slices.Contains(f, `\Flagged`) {
		t.Errorf("the message mutt flagged has %q", f)
	}
	for _, subj := range []string{"multi", "third"} {
		if f := st.Msgs[st.bySubject(t, subj)].Flags; slices.Contains(f, `\Flagged`) || slices.Contains(f, `\Deleted`) {
			t.Errorf("%s: flags %q after mutt", subj, f)
		}
	}
}

// shellQuote quotes s for sh -c.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
