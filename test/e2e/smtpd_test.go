package e2e

// smtpd and deliver --queue as separate processes, driven by SMTP clients
// from Debian packages (swaks, python3's smtplib, Postfix as a relaying
// MTA, systemd-socket-activate as the socket launcher); every accepted
// message is checked byte for byte in the recipient's Maildir.
//
// swaks (20201014, Debian 12) has no option for MAIL parameters: it
// writes "MAIL FROM:<" + --from + ">". The 8BITMIME, SMTPUTF8 and SIZE
// cases therefore close the address themselves and end with an ENVID
// parameter (RFC 3461 §4.4, which smtpd supports) that swallows swaks' ">":
// --from 'a@b> BODY=8BITMIME ENVID=x<' sends MAIL FROM:<a@b> BODY=8BITMIME
// ENVID=x<>, all of it valid xtext.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailroom/internal/account"
	"mailroom/internal/account/accounttest"
	"mailroom/internal/testutil"
	"mailroom/maildir"
)

// addFastUser creates an account and its Maildir in-process, as `mailroom
// user add` does (account.AddUser, maildir.Create, owned like the mail
// root), but with a cheap password hash: the race-built programs would
// spend seconds on each bcrypt hash and each AUTH.
func addFastUser(t *testing.T, e *env, address, password string) {
	t.Helper()
	accounttest.CheapHashes(t)
	hash, err := account.HashPassword(password, "")
	if err != nil {
		t.Fatal(err)
	}
	root := e.maildir(address)
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := maildir.Create(root); err != nil {
		t.Fatal(err)
	}
	if err := maildir.CreateDefaultFolders(root); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		owner := ownerOf(t, e.MailRoot)
		var uid, gid int
		if _, err := fmt.Sscanf(owner, "%d:%d", &uid, &gid); err != nil {
			t.Fatal(err)
		}
		err := filepath.WalkDir(filepath.Dir(root), func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := account.AddUser(e.Passwd, account.User{Address: address, Hash: hash, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	chmod(t, e.Passwd, 0o644)
}

// message builds a test message with CRLF line ends: headers, an empty
// line, body (whose lines may be LF-separated).
func message(from, to, subject, body string) string {
	m := fmt.Sprintf("From: <%s>\nTo: <%s>\nSubject: %s\nDate: Tue, 24 Nov 2026 10:00:00 +0000\nMessage-ID: <%s@e2e.test>\n\n%s",
		from, to, subject, strings.ReplaceAll(subject, " ", "-"), body)
	if !strings.HasSuffix(m, "\n") {
		m += "\n"
	}
	return crlf(m)
}

// swaksData is a message as swaks --no-data-fixup sends it: dot-stuffed
// (RFC 5321 §4.5.2), and ending with the "." that swaks follows with CRLF.
func swaksData(msg string) string {
	stuffed := strings.ReplaceAll(msg, "\r\n.", "\r\n..")
	if strings.HasPrefix(stuffed, ".") {
		stuffed = "." + stuffed
	}
	return stuffed + "."
}

// swaks runs swaks against addr with the message in a file, the other
// arguments appended.
func (m *mailDaemons) swaks(t *testing.T, addr, msg string, args ...string) result {
	t.Helper()
	swaks := requireTool(t, "/usr/bin/swaks")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(m.e.Dir, "swaks-*.eml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(swaksData(msg)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	base := []string{"--server", host, "--port", port, "--helo", "client.e2e.test",
		"--timeout", "60", "--no-data-fixup", "--data", "@" + f.Name()}
	return m.e.runProgram("", swaks, append(base, args...)...)
}

// tlsArgs make swaks verify smtpd's certificate against the test's.
func (m *mailDaemons) tlsArgs() []string {
	return []string{"--tls-verify", "--tls-ca-path", m.CA}
}

func wantOutput(t *testing.T, r result, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.stdout+r.stderr, p) {
			t.Errorf("%s: output lacks %q\n%s%s", r.cmdline, p, r.stdout, r.stderr)
		}
	}
}

func TestSMTPSwaks(t *testing.T) {
	e := newEnv(t, "example.org")
	for _, u := range []string{"alice@example.org", "bob@example.org", "jörg@example.org"} {
		addFastUser(t, e, u, "pw of "+u)
	}
	// An alias with a UTF-8 local part (RFC 6531) pointing at alice.
	writeFile(t, e.Aliases, "dépôt@example.org: alice@example.org\n")
	// 11 MiB: the 10 MB message fits; one larger does not.
	m := startMailDaemons(t, e, "[smtpd]\nmax_message_size = 11M\n")

	delivered := map[string]int{} // messages so far per mailbox
	expect := func(t *testing.T, address, sent string) string {
		t.Helper()
		delivered[address]++
		got := m.waitNewMail(address, delivered[address])
		return wantDelivered(t, lastDelivered(t, m, address, got, sent), sent)
	}

	t.Run("plain", func(t *testing.T) {
		msg := message("carol@example.net", "alice@example.org", "plain mx",
			"Hello over the MX port.\n.a line starting with a dot\n..and two\n.\nend\n")
		r := m.swaks(t, m.MX, msg, "--from", "carol@example.net", "--to", "alice@example.org")
		r.wantCode(t, 0)
		wantOutput(t, r, "250 2.0.0 Ok: queued as ")
		added := expect(t, "alice@example.org", msg)
		for _, want := range []string{"Return-Path: <carol@example.net>", "Delivered-To: alice@example.org", "from client.e2e.test"} {
			if !strings.Contains(added, want) {
				t.Errorf("added headers lack %q:\n%s", want, added)
			}
		}
	})

	t.Run("pipelining", func(t *testing.T) {
		msg := message("carol@example.net", "alice@example.org", "pipelined", "Sent with PIPELINING.\n")
		r := m.swaks(t, m.MX, msg, "--pipeline", "--from", "carol@example.net", "--to", "alice@example.org,bob@example.org")
		r.wantCode(t, 0)
		wantOutput(t, r, "250-PIPELINING")
		// RFC 2920: MAIL and both RCPTs go out before the first reply.
		out := r.stdout
		mail, rcpt2 := strings.Index(out, "-> MAIL FROM"), strings.Index(out, "-> RCPT TO:<bob@")
		reply := strings.Index(out[max(mail, 0):], "<-  250") + max(mail, 0)
		if mail < 0 || rcpt2 < 0 || reply < 0 || !(mail < rcpt2 && rcpt2 < reply) {
			t.Errorf("swaks did not pipeline MAIL and RCPT (positions %d %d %d):\n%s", mail, rcpt2, reply, out)
		}
		expect(t, "alice@example.org", msg)
		expect(t, "bob@example.org", msg)
	})

	t.Run("8bitmime", func(t *testing.T) {
		msg := message("carol@example.net", "bob@example.org", "eight bit",
			"Content-Type: text/plain; charset=utf-8\n") // a header line in the body is fine: it is body
		msg = strings.Replace(msg, "Subject: eight bit\r\n", "Subject: eight bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n", 1)
		msg += "Gr\xfc\xdfe aus K\xf6ln, caf\xe9 \xe0 la cr\xe8me; bytes \x80\x9f\xff.\r\n"
		r := m.swaks(t, m.MX, msg, "--from", "carol@example.net> BODY=8BITMIME ENVID=e2e-8bit<", "--to", "bob@example.org")
		r.wantCode(t, 0)
		wantOutput(t, r, "250-8BITMIME", "BODY=8BITMIME")
		expect(t, "bob@example.org", msg)
	})

	t.Run("smtputf8", func(t *testing.T) {
		for _, rcpt := range []struct{ to, mailbox string }{
			{"jörg@example.org", "jörg@example.org"},   // a user
			{"dépôt@example.org", "alice@example.org"}, // an alias
		} {
			msg := message("josé@example.net", rcpt.to, "utf8 "+rcpt.mailbox[:1], "Grüße, 日本語, ελληνικά.\n")
			r := m.swaks(t, m.MX, msg, "--from", "josé@example.net> SMTPUTF8 BODY=8BITMIME ENVID=e2e-utf8<", "--to", rcpt.to)
			r.wantCode(t, 0)
			wantOutput(t, r, "250-SMTPUTF8")
			added := expect(t, rcpt.mailbox, msg)
			if !strings.Contains(added, "Return-Path: <josé@example.net>") {
				t.Errorf("Return-Path of the UTF-8 sender missing:\n%s", added)
			}
		}
		// The same UTF-8 address without SMTPUTF8 is refused (RFC 6531 §3.4).
		msg := message("josé@example.net", "jörg@example.org", "no smtputf8", "x\n")
		r := m.swaks(t, m.MX, msg, "--from", "jose@example.net", "--to", "jörg@example.org")
		if r.code == 0 {
			t.Errorf("a UTF-8 recipient without SMTPUTF8 was accepted:\n%s", r.stdout)
		}
	})

	t.Run("size", func(t *testing.T) {
		before := len(m.queueEntries())
		// Announced too big: refused at MAIL (RFC 1870 §6.2).
		msg := message("carol@example.net", "alice@example.org", "too big", "small body, big claim\n")
		r := m.swaks(t, m.MX, msg, "--from", "carol@example.net> SIZE=20000000 ENVID=e2e-size<", "--to", "alice@example.org")
		if r.code == 0 {
			t.Fatalf("SIZE=20000000 over an 11M limit accepted:\n%s", r.stdout)
		}
		wantOutput(t, r, "250-SIZE 11534336", "552")
		// Not announced, then too big in DATA: 552 after the data.
		big := message("carol@example.net", "alice@example.org", "too big data", strings.Repeat(strings.Repeat("z", 99)+"\n", 120_000))
		r = m.swaks(t, m.MX, big, "--from", "carol@example.net", "--to", "alice@example.org")
		if r.code == 0 {
			t.Fatalf("a %d-byte message over an 11M limit accepted:\n%s", len(big), r.stdout)
		}
		wantOutput(t, r, "552 5.3.4")
		if n := len(m.queueEntries()); n > before {
			t.Errorf("refused messages left %d entries in queue/", n-before)
		}
	})

	t.Run("starttls-mx", func(t *testing.T) {
		msg := message("carol@example.net", "alice@example.org", "starttls mx", "Over STARTTLS on the MX port.\n")
		r := m.swaks(t, m.MX, msg, append(m.tlsArgs(), "--tls", "--from", "carol@example.net", "--to", "alice@example.org")...)
		r.wantCode(t, 0)
		wantOutput(t, r, "250-STARTTLS", "TLS started")
		added := expect(t, "alice@example.org", msg)
		if !strings.Contains(added, "TLS1.") {
			t.Errorf("Received field does not name the TLS version:\n%s", added)
		}
	})

	t.Run("auth", func(t *testing.T) {
		for _, c := range []struct {
			name, addr string
			tls        []string
		}{
			{"submission-plain", m.Submission, []string{"--tls"}},
			{"submission-login", m.Submission, []string{"--tls"}},
			{"submissions-plain", m.Submissions, []string{"--tlsc"}},
			{"submissions-login", m.Submissions, []string{"--tlsc"}},
		} {
			mech := strings.ToUpper(c.name[strings.Index(c.name, "-")+1:])
			msg := message("alice@example.org", "bob@example.org", "auth "+c.name, "Authenticated with "+mech+".\n")
			args := append(append(m.tlsArgs(), c.tls...), "--auth", mech, "--auth-user", "alice@example.org",
				"--auth-password", "pw of alice@example.org", "--from", "alice@example.org", "--to", "bob@example.org")
			r := m.swaks(t, c.addr, msg, args...)
			r.wantCode(t, 0)
			wantOutput(t, r, "235 ") // RFC 4954 §6 says 2.7.0; go-smtp answers 2.0.0
			added := expect(t, "bob@example.org", msg)
			if !strings.Contains(added, "TLS1.") {
				t.Errorf("%s: Received field does not name TLS:\n%s", c.name, added)
			}
		}
		// A wrong password is refused, and so is submission without AUTH.
		msg := message("alice@example.org", "bob@example.org", "bad auth", "no\n")
		r := m.swaks(t, m.Submission, msg, append(m.tlsArgs(), "--tls", "--auth", "PLAIN", "--auth-user", "alice@example.org",
			"--auth-password", "wrong", "--from", "alice@example.org", "--to", "bob@example.org")...)
		if r.code == 0 {
			t.Errorf("a wrong password was accepted:\n%s", r.stdout)
		}
		wantOutput(t, r, "535")
		r = m.swaks(t, m.Submission, msg, append(m.tlsArgs(), "--tls", "--from", "alice@example.org", "--to", "bob@example.org")...)
		if r.code == 0 {
			t.Errorf("submission without AUTH was accepted:\n%s", r.stdout)
		}
	})

	t.Run("100-recipients", func(t *testing.T) {
		var rcpts []string
		for i := range 50 {
			rcpts = append(rcpts, fmt.Sprintf("alice+r%02d@example.org", i), fmt.Sprintf("bob+r%02d@example.org", i))
		}
		msg := message("carol@example.net", "list@example.org", "hundred", "One message, 100 recipients.\n")
		r := m.swaks(t, m.MX, msg, "--pipeline", "--from", "carol@example.net", "--to", strings.Join(rcpts, ","))
		r.wantCode(t, 0)
		for _, mailbox := range []string{"alice@example.org", "bob@example.org"} {
			got := m.waitNewMail(mailbox, delivered[mailbox]+50)
			// This message's copies, by content: Maildir names do not sort
			// by time within a second (M<usec> is not zero-padded).
			var copies []string
			for _, f := range got {
				if strings.Contains(f, "\r\nSubject: hundred\r\n") {
					copies = append(copies, f)
				}
			}
			if len(copies) != 50 {
				t.Fatalf("%s: %d copies of the message, want 50", mailbox, len(copies))
			}
			seen := map[string]bool{}
			for _, f := range copies {
				added := wantDelivered(t, f, msg)
				_, rest, _ := strings.Cut(added, "Delivered-To: ")
				to, _, _ := strings.Cut(rest, "\r\n")
				seen[to] = true
			}
			delivered[mailbox] += 50
			if len(seen) != 50 {
				t.Errorf("%s: %d distinct Delivered-To among the 50 copies, want 50: %v", mailbox, len(seen), seen)
			}
		}
	})

	t.Run("unknown-recipient", func(t *testing.T) {
		msg := message("carol@example.net", "nobody@example.org", "unknown", "x\n")
		r := m.swaks(t, m.MX, msg, "--from", "carol@example.net", "--to", "nosuchuser@example.org")
		if r.code == 0 {
			t.Fatalf("unknown recipient accepted:\n%s", r.stdout)
		}
		wantOutput(t, r, "550 5.1.1")
		// Relaying through the MX port without AUTH: 554 5.7.1.
		r = m.swaks(t, m.MX, msg, "--from", "carol@example.net", "--to", "someone@elsewhere.example")
		if r.code == 0 {
			t.Fatalf("relay accepted:\n%s", r.stdout)
		}
		wantOutput(t, r, "554 5.7.1")
	})

	t.Run("10MB", func(t *testing.T) {
		var body strings.Builder
		for i := 0; body.Len() < 10<<20; i++ {
			fmt.Fprintf(&body, "%08d %s\n", i, strings.Repeat("abcdefghij", 7))
			if i%1000 == 0 {
				body.WriteString(".dot line\n")
			}
		}
		msg := message("carol@example.net", "bob@example.org", "ten megabytes", body.String())
		r := m.swaks(t, m.MX, msg, "--from", "carol@example.net", "--to", "bob@example.org", "--silent", "2")
		r.wantCode(t, 0)
		expect(t, "bob@example.org", msg)
	})

	m.waitQueueEmpty()
}

// lastDelivered returns the newest file of got, checking that it is the
// one whose body is sent when several arrived at once.
func lastDelivered(t *testing.T, m *mailDaemons, address string, got []string, sent string) string {
	t.Helper()
	want := sent
	for i := len(got) - 1; i >= 0; i-- {
		if strings.HasSuffix(got[i], want) {
			return got[i]
		}
	}
	return got[len(got)-1]
}

// smtplibScript sends over submission with STARTTLS and AUTH: a message
// with send_message, then one to several recipients with sendmail, and
// prints the refused recipients of each as JSON.
// argv: host port cafile user password rcpt...
const smtplibScript = `
import json, smtplib, ssl, sys
from email.message import EmailMessage
host, port, ca, user, pw = sys.argv[1:6]
rcpts = sys.argv[6:]
ctx = ssl.create_default_context(cafile=ca)
out = {}
with smtplib.SMTP(host, int(port), local_hostname="python.e2e.test", timeout=30) as s:
    s.starttls(context=ctx)
    s.login(user, pw)
    m = EmailMessage()
    m["From"] = user
    m["To"] = rcpts[0]
    m["Subject"] = "from smtplib"
    m["Message-ID"] = "<smtplib-1@e2e.test>"
    m.set_content("Sent by python3 smtplib send_message.\n.leading dot\n")
    out["send_message"] = s.send_message(m)
    raw = ("From: " + user + "\r\nTo: list\r\nSubject: smtplib sendmail\r\n"
           "Message-ID: <smtplib-2@e2e.test>\r\n\r\nTo several recipients.\r\n")
    out["sendmail"] = s.sendmail(user, rcpts, raw)
    out["raw"] = raw
    out["first"] = m.as_string()
print(json.dumps(out))
`

func TestSMTPSmtplib(t *testing.T) {
	python := requireTool(t, "/usr/bin/python3")
	e := newEnv(t, "example.org")
	for _, u := range []string{"alice@example.org", "bob@example.org", "carol@example.org"} {
		addFastUser(t, e, u, "pw of "+u)
	}
	m := startMailDaemons(t, e, "")
	host, port, _ := net.SplitHostPort(m.Submission)
	rcpts := []string{"bob@example.org", "carol@example.org", "alice+copy@example.org"}
	r := e.runProgram("", python, append([]string{"-c", smtplibScript, host, port, m.CA, "alice@example.org", "pw of alice@example.org"}, rcpts...)...)
	r.wantCode(t, 0)
	var out struct {
		SendMessage map[string]any `json:"send_message"`
		Sendmail    map[string]any `json:"sendmail"`
		Raw         string         `json:"raw"`
		First       string         `json:"first"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("smtplib output %q: %v", r.stdout, err)
	}
	if len(out.SendMessage) != 0 || len(out.Sendmail) != 0 {
		t.Fatalf("smtplib reports refused recipients: %v %v", out.SendMessage, out.Sendmail)
	}
	// send_message went to bob; sendmail to bob, carol and alice.
	bob := m.waitNewMail("bob@example.org", 2)
	first := strings.ReplaceAll(out.First, "\n", "\r\n")
	wantDelivered(t, lastDelivered(t, m, "bob@example.org", bob, first), first)
	wantDelivered(t, lastDelivered(t, m, "bob@example.org", bob, out.Raw), out.Raw)
	wantDelivered(t, m.waitNewMail("carol@example.org", 1)[0], out.Raw)
	added := wantDelivered(t, m.waitNewMail("alice@example.org", 1)[0], out.Raw)
	if !strings.Contains(added, "Delivered-To: alice+copy@example.org") {
		t.Errorf("sub-address not in Delivered-To:\n%s", added)
	}
	m.waitQueueEmpty()
}

// TestSMTPFromPostfix has Debian's Postfix relay to smtpd's MX port as a
// real MTA peer: a private instance whose transport for example.org is
// Postfix's smtp(8) client aimed at [127.0.0.1]:port, fed by Postfix's
// own sendmail(1).
func TestSMTPFromPostfix(t *testing.T) {
	requireRoot(t)
	postfix := requireTool(t, "/usr/sbin/postfix")
	pfSendmail := requireTool(t, "/usr/sbin/sendmail")
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "pw")
	m := startMailDaemons(t, e, "")

	pf := startPostfix(t, postfix, filepath.Join(e.Dir, "postfix"), "")
	// startPostfix's master.cf has no SMTP client and its main.cf sends
	// everything non-local to error:; add a transport for example.org
	// and reload (main.cf: the last setting of a parameter wins).
	appendFile(t, filepath.Join(pf.conf, "master.cf"), "mailroom  unix  -       -       n       -       -       smtp\n")
	appendFile(t, filepath.Join(pf.conf, "main.cf"), fmt.Sprintf(
		"transport_maps = inline:{example.org=mailroom:[127.0.0.1]:%s}\nsmtp_tls_security_level = none\n",
		portOf(t, m.MX)))
	if out, err := pf.command("reload"); err != nil {
		t.Fatalf("postfix reload: %v\n%s\n%s", err, out, pf.log())
	}

	msg := message("root@mx.example.test", "alice@example.org", "relayed by postfix",
		"Hello from Postfix's sendmail.\n.leading dot\n8-bit: caf\xc3\xa9\n")
	r := e.runProgram(msg, pfSendmail, "-C", pf.conf, "-oi", "-f", "root@mx.example.test", "alice@example.org")
	r.wantCode(t, 0)
	pf.waitLog("to=<alice@example.org>", "relay=127.0.0.1[127.0.0.1]:"+portOf(t, m.MX), "status=sent (250 2.0.0 Ok: queued as ")
	got := m.waitNewMail("alice@example.org", 1)
	added := wantDelivered(t, got[0], msg)
	for _, want := range []string{"Return-Path: <root@mx.example.test>", "from mx.example.test", "by mx.example.test (Postfix"} {
		if !strings.Contains(added, want) {
			t.Errorf("trace fields lack %q:\n%s", want, added)
		}
	}
	m.waitQueueEmpty()
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestSMTPSocketActivation runs smtpd under systemd-socket-activate, the
// way systemd starts it from mailroom-smtpd.socket: named listeners
// (Accept=no, FileDescriptorName=smtp, submission, submissions), then one
// process per connection (Accept=yes, --service smtp). A message through
// each socket is delivered by deliver --queue.
func TestSMTPSocketActivation(t *testing.T) {
	activate := requireTool(t, "/usr/bin/systemd-socket-activate")
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "pw of alice")
	m := newMailDaemons(t, e, []string{"example.org"}, "")
	m.startDeliver()
	smtpd := m.e.bin("smtpd")

	t.Run("named", func(t *testing.T) {
		d := startDaemon(t, "systemd-socket-activate smtpd", activate, nil,
			"-l", m.MX, "-l", m.Submission, "-l", m.Submissions, "--fdname=smtp:submission:submissions",
			"--", smtpd, "--config", e.Config)
		for _, addr := range []string{m.MX, m.Submission, m.Submissions} {
			m.waitListening(d, addr)
		}
		auth := []string{"--auth", "PLAIN", "--auth-user", "alice@example.org", "--auth-password", "pw of alice"}
		for i, c := range []struct {
			name, addr string
			args       []string
		}{
			{"smtp", m.MX, nil},
			{"submission", m.Submission, append([]string{"--tls"}, auth...)},
			{"submissions", m.Submissions, append([]string{"--tlsc"}, auth...)},
		} {
			from := "carol@example.net"
			if c.args != nil {
				from = "alice@example.org"
			}
			msg := message(from, "alice@example.org", "socket "+c.name, "Through the "+c.name+" socket systemd passed.\n")
			r := m.swaks(t, c.addr, msg, append(append(m.tlsArgs(), c.args...), "--from", from, "--to", "alice@example.org")...)
			r.wantCode(t, 0)
			got := m.waitNewMail("alice@example.org", i+1)
			wantDelivered(t, lastDelivered(t, m, "alice@example.org", got, msg), msg)
		}
		// smtpd itself is the activated process (exec'd), so it logs the mode.
		d.stop()
		if !strings.Contains(d.log.String(), "mode=systemd") {
			t.Errorf("smtpd did not report systemd mode:\n%s", d.log)
		}
	})

	t.Run("accept", func(t *testing.T) {
		addr := freeAddr(t)
		d := startDaemon(t, "systemd-socket-activate --accept smtpd", activate, nil,
			"--accept", "-l", addr, "--", smtpd, "--config", e.Config, "--service", "smtp")
		d.termKills = true
		m.waitListening(d, addr) // this probe is a connection: one smtpd that sees it close
		before := len(m.e.newMail("alice@example.org"))
		for i := range 2 {
			msg := message("carol@example.net", "alice@example.org", fmt.Sprintf("accept %d", i), "One process for this connection.\n")
			r := m.swaks(t, addr, msg, "--from", "carol@example.net", "--to", "alice@example.org")
			r.wantCode(t, 0)
			got := m.waitNewMail("alice@example.org", before+i+1)
			wantDelivered(t, lastDelivered(t, m, "alice@example.org", got, msg), msg)
		}
		if n := strings.Count(d.log.String(), "mode=systemd-accept"); n < 2 {
			t.Errorf("want an smtpd per connection logging mode=systemd-accept, got %d\n%s", n, d.log)
		}
	})
	m.waitQueueEmpty()
}

// TestSMTPCrashSmtpdMidData kills smtpd with SIGKILL while a client is in
// the middle of DATA: the client gets no 250, queue/ stays empty, nothing
// is delivered, and a restarted smtpd works.
func TestSMTPCrashSmtpdMidData(t *testing.T) {
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "pw")
	m := startMailDaemons(t, e, "")

	c, err := net.DialTimeout("tcp", m.MX, daemonWait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(daemonWait)); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	expectReply := func(code string) {
		t.Helper()
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %s: %v", code, err)
			}
			if !strings.HasPrefix(line, code) {
				t.Fatalf("got %q, want %s", line, code)
			}
			if len(line) < 4 || line[3] != '-' {
				return
			}
		}
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
	}
	expectReply("220")
	for _, step := range [][2]string{
		{"EHLO crash.e2e.test\r\n", "250"},
		{"MAIL FROM:<carol@example.net>\r\n", "250"},
		{"RCPT TO:<alice@example.org>\r\n", "250"},
		{"DATA\r\n", "354"},
	} {
		send(step[0])
		expectReply(step[1])
	}
	send("From: <carol@example.net>\r\nTo: <alice@example.org>\r\nSubject: never finished\r\n\r\n")
	chunk := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 1000)
	send(chunk)
	// smtpd is streaming into the spool: tmp/<id>/data exists.
	tmpData := func() bool {
		matches, _ := filepath.Glob(filepath.Join(e.Spool, "tmp", "*"))
		return len(matches) > 0
	}
	if !testutil.WaitFor(daemonWait, tmpData) {
		t.Fatalf("no tmp/*/data in the spool while DATA is in progress\n%s", m.smtpd.log)
	}
	send(chunk)
	m.kill9(m.smtpd)
	// The client sees the connection end, never a 250.
	rest, err := io.ReadAll(rd)
	if strings.Contains(string(rest), "250") {
		t.Errorf("after kill -9 the client read %q", rest)
	}
	t.Logf("client after kill -9: %q, %v", rest, err)
	if q := m.queueEntries(); len(q) != 0 {
		t.Fatalf("kill -9 mid-DATA left %v in queue/", q)
	}

	// A restarted smtpd takes mail again; the half-written message is
	// never delivered.
	m.startSmtpd()
	msg := message("carol@example.net", "alice@example.org", "after crash", "Sent after the restart.\n")
	if err := sendPlain(m.MX, "carol@example.net", "alice@example.org", msg); err != nil {
		t.Fatal(err)
	}
	got := m.waitNewMail("alice@example.org", 1)
	wantDelivered(t, got[0], msg)
	m.waitQueueEmpty()
	if len(m.e.newMail("alice@example.org")) != 1 {
		t.Fatal("the interrupted message was delivered")
	}
}

// TestSMTPCrashDeliver kills deliver --queue with SIGKILL while a stream of
// messages arrives and is being delivered, then restarts it: every message
// smtpd acknowledged is delivered (at least once); duplicates are
// reported, and allowed only for messages in flight at the kill.
func TestSMTPCrashDeliver(t *testing.T) {
	const n = 300
	e := newEnv(t, "example.org")
	addFastUser(t, e, "alice@example.org", "pw")
	m := startMailDaemons(t, e, "")

	acked := make(chan string, n)
	sendErr := make(chan error, 1)
	go func() {
		defer close(acked)
		for i := range n {
			id := fmt.Sprintf("<stream-%04d@e2e.test>", i)
			msg := strings.Replace(message("carol@example.net", "alice@example.org", fmt.Sprintf("stream %04d", i), "x\n"),
				fmt.Sprintf("<stream-%04d@e2e.test>", i), id, 1)
			if err := sendPlain(m.MX, "carol@example.net", "alice@example.org", msg); err != nil {
				sendErr <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			acked <- id
		}
	}()
	newDir := filepath.Join(e.maildir("alice@example.org"), "new")
	count := func() int {
		ents, _ := os.ReadDir(newDir)
		return len(ents)
	}
	if !testutil.WaitFor(daemonWait, func() bool { return count() >= n/4 }) {
		t.Fatalf("only %d deliveries before the kill\n%s", count(), m.deliver.log)
	}
	m.kill9(m.deliver)
	atKill := count()
	m.startDeliver()

	var ids []string
	for id := range acked {
		ids = append(ids, id)
	}
	select {
	case err := <-sendErr:
		t.Fatalf("sending: %v", err)
	default:
	}
	if len(ids) != n {
		t.Fatalf("%d of %d messages acknowledged", len(ids), n)
	}
	m.waitQueueEmpty()
	seen := map[string]int{}
	for _, f := range m.e.newMail("alice@example.org") {
		_, rest, ok := strings.Cut(f, "\r\nMessage-ID: ")
		if !ok {
			t.Fatalf("delivered file without Message-ID: %q", clip(f))
		}
		id, _, _ := strings.Cut(rest, "\r\n")
		seen[id]++
	}
	dups := 0
	for _, id := range ids {
		switch c := seen[id]; {
		case c == 0:
			t.Errorf("acknowledged message %s was lost", id)
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("%d messages acknowledged, %d delivered before kill -9 of deliver, %d duplicates after restart", n, atKill, dups)
	// Only what was in flight at the kill may come twice: a handful of
	// workers' worth, never a re-run of the whole queue.
	if dups > 32 {
		t.Errorf("%d duplicate deliveries after one crash", dups)
	}
}

// kill9 crashes d (smtpd or deliver).
func (m *mailDaemons) kill9(d *daemon) { d.kill9() }

// sendPlain sends one message in cleartext with Go's net/smtp (which
// would take STARTTLS and refuse the test certificate), as a plain MX
// client does; nil means smtpd answered 250 to the data.
func sendPlain(addr, from, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("stream.e2e.test"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
