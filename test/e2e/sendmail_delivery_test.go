package e2e

import (
	"strings"
	"testing"
)

// TestSendmailCallersIntoMaildirs: the command lines real programs pass
// to sendmail (cron, cronie, mutt, git send-email, PHP, Perl, unattended-
// upgrades), run against the built program while the built queue daemon
// runs, end as files in local Maildirs: the body byte for byte (a lone
// "." line kept under -i), Bcc gone, bare names qualified with the origin
// domain. (Identity rules for unprivileged callers: sendmail_test.go.)
func TestSendmailCallersIntoMaildirs(t *testing.T) {
	e := newEnv(t, "example.org")
	for _, u := range []string{"root@example.org", "alice@example.org", "bob@example.org", "carol@example.org"} {
		addFastUser(t, e, u, "pw")
	}
	m := newMailDaemons(t, e, []string{"example.org"}, "[sendmail]\norigin = example.org\n")
	chmod(t, e.Config, 0o644)
	m.startDeliver()

	const body = "line one\n.\nline three\n"
	for _, tc := range []struct {
		name   string
		args   []string
		header string   // the message's header as piped in
		to     []string // who must receive it
		absent string   // a header line that must not arrive
	}{
		{"debian cron", []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			"From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@mx> true\n", []string{"root@example.org"}, ""},
		{"cronie", []string{"-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"},
			"From: root (Cron Daemon)\nTo: alice\nSubject: Cron <root@mx> true\n", []string{"alice@example.org"}, ""},
		{"mutt", []string{"-oem", "-oi", "--", "bob@example.org"},
			"From: Alice <alice@example.org>\nTo: bob@example.org\nSubject: mutt\n", []string{"bob@example.org"}, ""},
		{"git send-email", []string{"-i", "bob@example.org", "carol@example.org"},
			"From: Alice <alice@example.org>\nSubject: [PATCH] x\n", []string{"bob@example.org", "carol@example.org"}, ""},
		{"php", []string{"-t", "-i"},
			"To: bob@example.org\nSubject: php\nBcc: carol@example.org\nFrom: www-data@example.org\n",
			[]string{"bob@example.org", "carol@example.org"}, "Bcc:"},
		{"MIME::Lite", []string{"-t", "-oi", "-oem", "-falice@example.org"},
			"From: alice@example.org\nTo: bob@example.org, carol@example.org\nSubject: perl\n",
			[]string{"bob@example.org", "carol@example.org"}, ""},
		{"unattended-upgrades", []string{"-oi", "-t"},
			"From: root\nTo: root\nSubject: upgrades\n", []string{"root@example.org"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int{}
			for _, u := range tc.to {
				before[u] = len(e.newMail(u))
			}
			subject := "Subject: " + tc.name + " " + t.Name()
			in := strings.Replace(tc.header, "Subject: ", subject+" ", 1) + "\n" + body
			e.run(in, "sendmail", append([]string{"-C", e.Config}, tc.args...)...).wantCode(t, 0)
			for _, u := range tc.to {
				got := lastWith(t, m.waitNewMail(u, before[u]+1), subject)
				if !strings.HasSuffix(got, "\n\n"+body) {
					t.Errorf("%s: body not delivered byte for byte:\n%q", u, got)
				}
				if !strings.Contains(got, "\nDelivered-To: "+u+"\n") && !strings.HasPrefix(got, "Delivered-To: "+u+"\n") {
					t.Errorf("%s: no Delivered-To for it:\n%q", u, got)
				}
				if tc.absent != "" && strings.Contains(got, "\n"+tc.absent) {
					t.Errorf("%s: %q arrived:\n%q", u, tc.absent, got)
				}
			}
		})
	}
	m.waitQueueEmpty()
}

// lastWith returns the one message among msgs (contents, as waitNewMail
// returns them) that holds subject.
func lastWith(t *testing.T, msgs []string, subject string) string {
	t.Helper()
	var found []string
	for _, m := range msgs {
		if strings.Contains(m, "\n"+subject+" ") {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d files hold %q, want 1", len(found), subject)
	}
	return found[0]
}
