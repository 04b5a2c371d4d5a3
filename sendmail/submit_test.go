package sendmail

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mailroom/spool"
)

// stamp is what the test clock and the drop's id give for the added
// Date: and Message-ID:.
func stamp(d dropped) string {
	return "Date: Sun, 23 Nov 2025 21:56:00 +0000\nMessage-ID: <20251123215600." + string(d.id) + "@mx.example.org>\n"
}

func TestSubmitMessage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		root  bool
		args  []string
		stdin string
		rcpts []string
		// data is the stored message with %s where Date and Message-ID go.
		data string
	}{
		{
			name:  "debian cron keeps a lone dot with -i",
			root:  true,
			args:  []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
			stdin: "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> ls\n\nline1\n.\nline3\n",
			rcpts: []string{"root@example.org"},
			data:  "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@h> ls\n%s\nline1\n.\nline3\n",
		},
		{
			name:  "without -i a lone dot ends the message",
			args:  []string{"bob@example.net"},
			stdin: "From: a@x\nSubject: s\n\nbody\n..\n.\nnot read\n",
			rcpts: []string{"bob@example.net"},
			data:  "From: a@x\nSubject: s\n%s\nbody\n..\n",
		},
		{
			name:  "a dot with CRLF ends it too",
			args:  []string{"bob@example.net"},
			stdin: "From: a@x\r\n\r\nbody\r\n.\r\nnot read\r\n",
			rcpts: []string{"bob@example.net"},
			data:  "From: a@x\n%s\nbody\n",
		},
		{
			name:  "CRLF becomes LF, a lone CR stays, a last line gets its LF",
			args:  []string{"-i", "bob@example.net"},
			stdin: "From: a@x\r\nSubject: s\r\n\r\nbody\r\nwith\rcr\r\nlast",
			rcpts: []string{"bob@example.net"},
			data:  "From: a@x\nSubject: s\n%s\nbody\nwith\rcr\nlast\n",
		},
		{
			name: "-t: To, Cc, Bcc, groups, comments; arguments added first; Bcc removed; repeats dropped",
			args: []string{"-t", "-i", "extra@example.net"},
			stdin: "From: a@x\nTo: Bob <bob@example.net>, \"Smith, C\" <c@example.com> (C),\n" +
				" team: d@example.org, root;\nCc: extra@example.net, \"e f\"@example.com\nBcc: hidden@example.net\n" +
				"Subject: s\n\nbody\n",
			rcpts: []string{"extra@example.net", "bob@example.net", "c@example.com", "d@example.org", "root@example.org",
				`"e f"@example.com`, "hidden@example.net"},
			data: "From: a@x\nTo: Bob <bob@example.net>, \"Smith, C\" <c@example.com> (C),\n" +
				" team: d@example.org, root;\nCc: extra@example.net, \"e f\"@example.com\nSubject: s\n%s\nbody\n",
		},
		{
			name: "-t with Resent-* uses only the Resent recipients",
			args: []string{"-t"},
			stdin: "Resent-From: admin@example.org\nResent-To: r@example.net\nResent-Bcc: rb@example.net\n" +
				"From: a@x\nTo: t@example.net\nBcc: b@example.net\n\nbody\n",
			rcpts: []string{"r@example.net", "rb@example.net"},
			data:  "Resent-From: admin@example.org\nResent-To: r@example.net\nFrom: a@x\nTo: t@example.net\n%s\nbody\n",
		},
		{
			name:  "From added from the user's GECOS name",
			args:  []string{"-i", "bob@example.net"},
			stdin: "Subject: s\n\nbody\n",
			rcpts: []string{"bob@example.net"},
			data:  "Subject: s\nFrom: Alice Liddell <alice@example.org>\n%s\nbody\n",
		},
		{
			name:  "-F names the From; a Message-ID and Date present are kept",
			args:  []string{"-F", "Cron Daemon (x)", "-i", "bob@example.net"},
			stdin: "Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <m@x>\n\nbody\n",
			rcpts: []string{"bob@example.net"},
			data:  "Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <m@x>\nFrom: \"Cron Daemon (x)\" <alice@example.org>\n\nbody\n",
		},
		{
			name:  "a message without a header gets one and the empty line",
			args:  []string{"-i", "bob@example.net"},
			stdin: "just text\nmore: text\n",
			rcpts: []string{"bob@example.net"},
			data:  "From: Alice Liddell <alice@example.org>\n%s\njust text\nmore: text\n",
		},
		{
			name:  "a leading mbox From line is dropped",
			args:  []string{"-i", "bob@example.net"},
			stdin: "From alice Sun Nov 23 21:56:00 2025\nFrom: a@x\n\nbody\n",
			rcpts: []string{"bob@example.net"},
			data:  "From: a@x\n%s\nbody\n",
		},
		{
			name:  "an empty message",
			args:  []string{"-i", "bob@example.net"},
			stdin: "",
			rcpts: []string{"bob@example.net"},
			data:  "From: Alice Liddell <alice@example.org>\n%s",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, "")
			if tc.root {
				e.uid, e.login, e.full = 0, "root", "root"
			}
			e.run("sendmail", tc.stdin, tc.args...).want(t, 0)
			d := e.oneDrop()
			if got := d.rcpts(); !reflect.DeepEqual(got, tc.rcpts) {
				t.Errorf("recipients %q, want %q", got, tc.rcpts)
			}
			want := strings.Replace(tc.data, "%s", stamp(d), 1)
			if d.data != want {
				t.Errorf("data\n got %q\nwant %q", d.data, want)
			}
		})
	}
}

func TestSubmitLongLineCRLFAtBufferEdge(t *testing.T) {
	e := newTestEnv(t, "")
	// The CR of this line's CRLF is the 65536th byte: the last of the
	// reader's buffer.
	long := "X-Long: " + strings.Repeat("a", 65535-8)
	e.run("sendmail", long+"\r\n\r\nbody\r\n", "-i", "bob@example.net").want(t, 0)
	d := e.oneDrop()
	want := long + "\nFrom: Alice Liddell <alice@example.org>\n" + stamp(d) + "\nbody\n"
	if d.data != want {
		t.Errorf("data: %d bytes, want %d; CR kept: %v", len(d.data), len(want), strings.Contains(d.data, "\r"))
	}
}

func TestSubmitEnvelope(t *testing.T) {
	e := newTestEnv(t, "")
	r := e.run("sendmail", "Subject: s\n\nbody\n", "-N", "success,failure", "-R", "hdrs", "-V", "QQ314159",
		"-B", "7BIT", "-i", "--", "jörg@bücher.example", "root")
	r.want(t, 0)
	d := e.oneDrop()
	want := spool.Envelope{
		Origin: spool.OriginLocal, UID: d.env.UID, Arrived: d.env.Arrived, Size: d.env.Size,
		Body: spool.Body7Bit, SMTPUTF8: true, Ret: spool.RetHdrs, EnvID: "QQ314159",
		Sender: "alice@example.org",
		Recipients: []spool.Recipient{
			{Addr: "jörg@bücher.example", Notify: spool.NotifySuccess | spool.NotifyFailure},
			{Addr: "root@example.org", Notify: spool.NotifySuccess | spool.NotifyFailure},
		},
	}
	if !reflect.DeepEqual(d.env, want) {
		t.Errorf("envelope\n got %+v\nwant %+v", d.env, want)
	}
	if int(d.env.UID) != os.Getuid() {
		t.Errorf("uid %d, want the real uid %d", d.env.UID, os.Getuid())
	}
}

func TestSubmitSenderTrust(t *testing.T) {
	for _, tc := range []struct {
		name      string
		uid       int
		login     string
		trusted   string
		args      []string
		sender    string
		warning   bool
		fromField string
	}{
		{"untrusted -f is replaced", 1000, "alice", "", []string{"-f", "ceo@example.org"}, "alice@example.org", true, "alice@example.org"},
		{"untrusted own address", 1000, "alice", "", []string{"-falice@example.org"}, "alice@example.org", false, "alice@example.org"},
		{"untrusted own bare name", 1000, "alice", "", []string{"-f", "alice"}, "alice@example.org", false, "alice@example.org"},
		{"untrusted null sender", 1000, "alice", "", []string{"-f", ""}, "", false, "alice@example.org"},
		{"trusted by name", 1000, "alice", "trusted_users = root, alice\n", []string{"-f", "ceo@example.org"}, "ceo@example.org", false, "ceo@example.org"},
		{"trusted by uid", 1000, "alice", "trusted_users = 1000\n", []string{"-r", "ceo@example.org"}, "ceo@example.org", false, "ceo@example.org"},
		{"root is trusted", 0, "root", "trusted_users =\n", []string{"-f", "www-data"}, "www-data@example.org", false, "www-data@example.org"},
		{"no -f", 1000, "alice", "", nil, "alice@example.org", false, "alice@example.org"},
		{"untrusted, an alias of hers", 1000, "alice", "", []string{"-f", "webmaster@example.org"}, "webmaster@example.org", false, "webmaster@example.org"},
		{"untrusted, her bare alias", 1000, "alice", "", []string{"-f", "webmaster"}, "webmaster@example.org", false, "webmaster@example.org"},
		{"untrusted, a shared alias", 1000, "alice", "", []string{"-f", "sales@example.org"}, "alice@example.org", true, "alice@example.org"},
		{"untrusted, someone else's alias", 1000, "alice", "", []string{"-f", "abuse@example.org"}, "alice@example.org", true, "alice@example.org"},
		{"untrusted, alias chain to her", 1000, "alice", "", []string{"-f", "www@example.org"}, "www@example.org", false, "www@example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, tc.trusted)
			if err := os.WriteFile(e.alias, []byte("webmaster: alice\nsales: alice, bob\nabuse: bob\nwww: webmaster\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			e.uid, e.login, e.full = tc.uid, tc.login, ""
			r := e.run("sendmail", "Subject: s\n\nbody\n", append(tc.args, "-i", "bob@example.net")...)
			r.want(t, 0)
			if got := strings.Contains(r.stderr, "warning: sender"); got != tc.warning {
				t.Errorf("stderr %q: warning %v, want %v", r.stderr, got, tc.warning)
			}
			d := e.oneDrop()
			if d.env.Sender != tc.sender {
				t.Errorf("sender %q, want %q", d.env.Sender, tc.sender)
			}
			if !strings.Contains(d.data, "\nFrom: "+tc.fromField+"\n") {
				t.Errorf("data %q lacks From: %s", d.data, tc.fromField)
			}
		})
	}
}

func TestSubmitFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		extra  string
		setup  func(e *testEnv)
		args   []string
		stdin  string
		code   int
		reason string
	}{
		{"usage", "", nil, []string{"-y", "root"}, "", 64, "unknown option -y"},
		{"spool missing", "", func(e *testEnv) { os.RemoveAll(e.spool) }, []string{"root"}, "x\n", 75, "spool"},
		{"maildrop missing", "", func(e *testEnv) { os.Remove(filepath.Join(e.spool, "maildrop")) }, []string{"root"}, "x\n", 75, "not queued"},
		{"oversize", "[smtpd]\nmax_message_size = 1k\n", nil, []string{"-i", "root"},
			"Subject: big\n\n" + strings.Repeat("0123456789abcdef\n", 100), 65, "5.3.4"},
		{"header too large", "", nil, []string{"-i", "root"}, "Subject: " + strings.Repeat("x", maxHeaderBytes) + "\n\nb\n", 65, "5.3.4"},
		{"-t finds nobody", "", nil, []string{"-t"}, "Subject: s\n\nbody\n", 64, "no recipient addresses"},
		{"-t bad address", "", nil, []string{"-t"}, "To: John Doe john@x\n\nbody\n", 65, "5.1.3 bad address in To:"},
		{"no login", "", func(e *testEnv) { e.login = "" }, []string{"root"}, "x\n", 75, "no login name"},
		{"config missing", "", func(e *testEnv) { os.Remove(e.conf) }, []string{"root"}, "x\n", 75, "4.3.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, tc.extra)
			if tc.setup != nil {
				tc.setup(e)
			}
			r := e.run("sendmail", tc.stdin, tc.args...)
			r.want(t, tc.code)
			if !strings.Contains(r.stderr, tc.reason) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line saying %q", r.stderr, tc.reason)
			}
			if _, err := os.Stat(e.spool); err == nil {
				if ents, _ := os.ReadDir(filepath.Join(e.spool, "maildrop")); len(ents) != 0 {
					t.Errorf("a failed submission left %d maildrop entries", len(ents))
				}
			}
		})
	}
}

func TestSubmitMailname(t *testing.T) {
	e := newTestEnv(t, "")
	// No origin key: /etc/mailname decides.
	conf, _ := os.ReadFile(e.conf)
	os.WriteFile(e.conf, []byte(strings.Replace(string(conf), "origin = example.org\n", "", 1)), 0o644)
	sys := e.system(strings.NewReader("x\n"), &strings.Builder{}, &strings.Builder{})
	os.WriteFile(sys.Mailname, []byte("Mail.Example.COM\n"), 0o644)
	if code := Run("sendmail", []string{"-C", e.conf, "-i", "root"}, sys); code != 0 {
		t.Fatalf("exit %d", code)
	}
	d := e.oneDrop()
	if got := d.rcpts(); len(got) != 1 || got[0] != "root@mail.example.com" || d.env.Sender != "alice@mail.example.com" {
		t.Errorf("recipients %q sender %q, want the /etc/mailname domain", got, d.env.Sender)
	}
	// Neither: the hostname.
	os.Remove(sys.Mailname)
	if code := Run("sendmail", []string{"-C", e.conf, "-i", "root"}, sys); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got := e.oneDrop().rcpts(); got[0] != "root@mx.example.org" {
		t.Errorf("recipient %q, want root@mx.example.org", got[0])
	}
}
