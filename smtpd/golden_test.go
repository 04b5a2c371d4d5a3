package smtpd

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"mailroom/spool"
)

// Transcript files (testdata/*.txt) replay a dialogue and compare every
// reply line exactly:
//
//	# service: smtp|submission|submissions   which port (default smtp)
//	# option: no-tls                         the server has no certificate
//	# option: plaintext-auth-loopback        plaintext_auth_on_loopback = yes
//	# option: max-errors N                   max_errors = N
//	# option: max-line-length N              max_line_length = N
//	C: line        a client line, CRLF added; consecutive C/R lines go out
//	R: "quoted"    raw client bytes (Go syntax)   in one write (pipelining)
//	S: line        the next reply line, exactly ("queued as QUEUEID" for ids)
//	!starttls      the client's TLS handshake
//	!closed        the server has closed the connection
//	!queued N      the spool holds N messages now
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runTranscript(t, file)
		})
	}
}

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	service := ServiceSMTP
	cfg := testConfig(t)
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "# service: "); ok {
			service = v
		}
		if v, ok := strings.CutPrefix(l, "# option: max-errors "); ok {
			cfg.Smtpd.MaxErrors, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "# option: max-line-length "); ok {
			cfg.Smtpd.MaxLineLength, _ = strconv.ParseInt(v, 10, 64)
		}
		switch l {
		case "# option: no-tls":
			cfg.TLSCert, cfg.TLSKey = "", ""
		case "# option: plaintext-auth-loopback":
			cfg.PlaintextAuthOnLoopback = true
		}
	}
	e := startServer(t, cfg)
	c := e.dial(service)
	var pending strings.Builder
	flush := func() {
		if pending.Len() > 0 {
			c.send(pending.String())
			pending.Reset()
		}
	}
	var ids []spool.ID
	for n, l := range lines {
		where := file + ":" + strconv.Itoa(n+1)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "C: "):
			pending.WriteString(l[3:] + "\r\n")
		case strings.HasPrefix(l, "R: "):
			raw, err := strconv.Unquote(l[3:])
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			pending.WriteString(raw)
		case strings.HasPrefix(l, "S: "):
			flush()
			got, err := c.line()
			if err != nil {
				t.Fatalf("%s: want %q, got error %v", where, l[3:], err)
			}
			if m := queuedRE.FindStringSubmatch(got); m != nil {
				id, err := spool.ParseID(m[1])
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				ids = append(ids, id)
				got = strings.Replace(got, m[1], "QUEUEID", 1)
			}
			if got != l[3:] {
				t.Fatalf("%s: reply differs\n got %s\nwant %s", where, quoteLines(got), quoteLines(l[3:]))
			}
		case l == "!starttls":
			flush()
			c.startTLS()
		case l == "!closed":
			flush()
			c.expectClosed()
		case strings.HasPrefix(l, "!queued "):
			flush()
			want, _ := strconv.Atoi(strings.TrimPrefix(l, "!queued "))
			if got := len(e.queued()); got != want {
				t.Fatalf("%s: %d messages queued, want %d", where, got, want)
			}
		default:
			t.Fatalf("%s: bad transcript line %q", where, l)
		}
	}
	flush()
	// Whatever the transcript did, the spool holds exactly the messages
	// that got a 250, each beginning with its Received line.
	queued := e.queued()
	slices.Sort(ids)
	if !slices.Equal(queued, ids) {
		t.Errorf("spool holds %v, acknowledged %v", queued, ids)
	}
	for _, id := range queued {
		_, data := e.message(id)
		if _, _, ok := splitReceived(data); !ok {
			t.Errorf("message %s lacks its Received header", id)
		}
	}
}

// transcriptLinesTB reads a transcript, for tests that build on one.
func transcriptLinesTB(t testing.TB, file string) []string {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func mustGlob(t testing.TB, pattern string) []string {
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no files (%v)", pattern, err)
	}
	return files
}
