package sendmail

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestSMTPTranscript replays client lines and checks each reply: the
// client writes everything first (pipelining), the replies come in order.
func TestSMTPTranscript(t *testing.T) {
	e := newTestEnv(t, "[smtpd]\nmax_recipients = 2\n")
	script := []struct{ send, want string }{
		{"", "220 mx.example.org ESMTP"},
		{"EHLO client.example", "250-mx.example.org"},
		{"", "250-PIPELINING"},
		{"", "250-SIZE 52428800"},
		{"", "250-8BITMIME"},
		{"", "250-SMTPUTF8"},
		{"", "250 ENHANCEDSTATUSCODES"},
		{"DATA", "503 5.5.1"},
		{"RCPT TO:<bob@example.net>", "503 5.5.1"},
		{"MAIL FROM:<alice@example.org> BODY=8BITMIME", "250 2.1.0 Ok"},
		{"MAIL FROM:<alice@example.org>", "503 5.5.1"},
		{"RCPT TO:<bob@example.net>", "250 2.1.5"},
		{"RCPT TO:<root>", "250 2.1.5"},
		{"RCPT TO:<carol@example.net>", "452 4.5.3"},
		{"RCPT TO:<bad address@x>", "501 5.1.3"},
		{"RCPT TO:<c@x> NOTIFY=NEVER", "555 5.5.4"},
		{"DATA", "354 "},
		{"Subject: one\r\n\r\n..leading dot\r\nbody\r\n.", "250 2.0.0 Ok: queued as "},
		{"MAIL FROM:<> SIZE=10", "250 2.1.0"},
		{"RCPT TO:<bob@example.net>", "250 2.1.5"},
		{"RSET", "250 2.0.0"},
		{"DATA", "503 5.5.1"},
		{"NOOP", "250 2.0.0"},
		{"VRFY root", "252 2.5.2"},
		{"STARTTLS", "502 5.5.1"},
		{"FROB", "500 5.5.2"},
		{"MAIL FROM:<alice@example.org> SIZE=999999999", "552 5.3.4"},
		{"mail from:<ceo@example.org>", "250 2.1.0 Ok, sending as <alice@example.org>"},
		{"rcpt to:<bob@example.net>", "250 2.1.5"},
		{"data", "354 "},
		{"From: ceo@example.org\n\nbare LF lines\n.", "250 2.0.0 Ok: queued as "},
		{"QUIT", "221 2.0.0"},
	}
	var in strings.Builder
	for _, s := range script {
		if s.send != "" {
			in.WriteString(s.send + "\r\n")
		}
	}
	var out, errOut bytes.Buffer
	code := Run("sendmail", []string{"-C", e.conf, "-bs", "-odb", "-oem"}, e.system(strings.NewReader(in.String()), &out, &errOut))
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	replies := strings.SplitAfter(out.String(), "\r\n")
	if last := replies[len(replies)-1]; last == "" {
		replies = replies[:len(replies)-1]
	}
	if len(replies) != len(script) {
		t.Fatalf("%d replies, want %d:\n%s", len(replies), len(script), out.String())
	}
	for i, s := range script {
		if !strings.HasPrefix(replies[i], s.want) || !strings.HasSuffix(replies[i], "\r\n") {
			t.Errorf("after %q: reply %q, want %q...CRLF", s.send, replies[i], s.want)
		}
	}
	ds := e.drops()
	if len(ds) != 2 {
		t.Fatalf("%d messages dropped, want 2", len(ds))
	}
	first, second := ds[0], ds[1]
	if first.env.Sender != "alice@example.org" || strings.Join(first.rcpts(), " ") != "bob@example.net root@example.org" ||
		first.env.Body != "8bitmime" {
		t.Errorf("first envelope %+v", first.env)
	}
	wantData := "Subject: one\nFrom: Alice Liddell <alice@example.org>\n" + stamp(first) + "\n.leading dot\nbody\n"
	if first.data != wantData {
		t.Errorf("first data\n got %q\nwant %q", first.data, wantData)
	}
	if second.env.Sender != "alice@example.org" || second.env.Body != "7bit" {
		t.Errorf("second envelope: sender %q body %q, want the user's own address and 7bit", second.env.Sender, second.env.Body)
	}
	if want := "From: ceo@example.org\n" + stamp(second) + "\nbare LF lines\n"; second.data != want {
		t.Errorf("second data\n got %q\nwant %q", second.data, want)
	}
}

// TestSMTPInteractive drives -bs through pipes, one command at a time,
// as Alpine does: each reply must arrive before the next command is sent.
func TestSMTPInteractive(t *testing.T) {
	e := newTestEnv(t, "")
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := Run("sendmail", []string{"-C", e.conf, "-bs"}, e.system(inR, outW, io.Discard))
		outW.Close()
		done <- code
	}()
	replies := bufio.NewReader(outR)
	expect := func(prefix string) {
		t.Helper()
		line, err := replies.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, prefix) {
			t.Fatalf("reply %q (%v), want %q", line, err, prefix)
		}
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(inW, s+"\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	expect("220 ")
	send("HELO alpine")
	expect("250 mx.example.org")
	send("MAIL FROM:<alice@example.org>")
	expect("250 ")
	send("RCPT TO:<bob@example.net>")
	expect("250 ")
	send("DATA")
	expect("354 ")
	send("Subject: hi\r\n\r\nhello\r\n.")
	expect("250 2.0.0 Ok: queued as ")
	// The message is in maildrop/ before the client has said QUIT.
	if ds := e.drops(); len(ds) != 1 || ds[0].data != "Subject: hi\nFrom: Alice Liddell <alice@example.org>\n"+stamp(ds[0])+"\nhello\n" {
		t.Fatalf("drops after 250: %+v", ds)
	}
	send("QUIT")
	expect("221 ")
	inW.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after QUIT")
	}
}

func TestSMTPFailures(t *testing.T) {
	t.Run("oversize message is refused after its end", func(t *testing.T) {
		e := newTestEnv(t, "[smtpd]\nmax_message_size = 1k\n")
		in := "HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n" +
			strings.Repeat("0123456789abcdef\r\n", 100) + ".\r\nNOOP\r\nQUIT\r\n"
		r := e.run("sendmail", in, "-bs")
		r.want(t, 0)
		if !strings.Contains(r.stdout, "\r\n552 5.3.4") || !strings.Contains(r.stdout, "552 5.3.4 message size exceeds fixed maximum message size\r\n250 2.0.0 Ok\r\n221") {
			t.Errorf("transcript %q: want 552 then NOOP's 250", r.stdout)
		}
		if ds := e.drops(); len(ds) != 0 {
			t.Errorf("%d drops after a refused message", len(ds))
		}
	})
	t.Run("input ends inside DATA", func(t *testing.T) {
		e := newTestEnv(t, "")
		r := e.run("sendmail", "HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: cut\r\n", "-bs")
		r.want(t, 75)
		if strings.Contains(r.stdout, "queued") || len(e.drops()) != 0 {
			t.Errorf("a cut message was queued: %q", r.stdout)
		}
	})
	t.Run("spool missing greets 421", func(t *testing.T) {
		e := newTestEnv(t, "")
		e.spool += "-gone"
		e.writeConfig("")
		r := e.run("sendmail", "HELO x\r\n", "-bs")
		r.want(t, 75)
		if !strings.HasPrefix(r.stdout, "421 4.3.0") {
			t.Errorf("greeting %q, want 421", r.stdout)
		}
	})
	t.Run("too many errors", func(t *testing.T) {
		e := newTestEnv(t, "")
		r := e.run("sendmail", strings.Repeat("BAD\r\n", 50), "-bs")
		r.want(t, 0)
		if n := strings.Count(r.stdout, "500 5.5.2"); n != maxSMTPErrors || !strings.Contains(r.stdout, "421 4.7.0") {
			t.Errorf("%d 500 replies, want %d then 421:\n%s", n, maxSMTPErrors, r.stdout)
		}
	})
	t.Run("over-long command", func(t *testing.T) {
		e := newTestEnv(t, "")
		r := e.run("sendmail", "NOOP "+strings.Repeat("x", 100000)+"\r\nQUIT\r\n", "-bs")
		r.want(t, 0)
		if !strings.Contains(r.stdout, "500 5.5.2 Error: line too long\r\n221") {
			t.Errorf("transcript %q", r.stdout)
		}
	})
}
