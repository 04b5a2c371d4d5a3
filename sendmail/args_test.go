package sendmail

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"mailroom/spool"
)

// callers are the command lines real programs pass (ecosystem §1.1), as
// argv after the program name.
var callers = []struct {
	name string
	argv string // words separated by '|'
	want Options
}{
	{"debian cron", "-FCronDaemon|-i|-B8BITMIME|-oem|root",
		Options{FullName: "CronDaemon", IgnoreDots: true, Body: spool.Body8BitMIME, Recipients: []string{"root"}}},
	{"cronie", "-FCronDaemon|-i|-odi|-oem|-oi|-t|-f|root",
		Options{FullName: "CronDaemon", IgnoreDots: true, Extract: true, Sender: "root", SenderSet: true}},
	{"bsd cron", "-FCronDaemon|-odi|-oem|-oi|-t",
		Options{FullName: "CronDaemon", IgnoreDots: true, Extract: true}},
	{"anacron", "-FAnacron|-odi|root",
		Options{FullName: "Anacron", Recipients: []string{"root"}}},
	{"atd", "-i|alice", Options{IgnoreDots: true, Recipients: []string{"alice"}}},
	{"systemd-cron", "-i|-B8BITMIME|root@example.org",
		Options{IgnoreDots: true, Body: spool.Body8BitMIME, Recipients: []string{"root@example.org"}}},
	{"mutt", "-oem|-oi|--|bob@example.net|carol@example.com",
		Options{IgnoreDots: true, Recipients: []string{"bob@example.net", "carol@example.com"}}},
	{"mutt dsn", "-oem|-oi|-B8BITMIME|-f|alice@example.org|-N|failure,delay|-R|hdrs|--|-bob@example.net",
		Options{IgnoreDots: true, Body: spool.Body8BitMIME, Sender: "alice@example.org", SenderSet: true,
			Notify: spool.NotifyFailure | spool.NotifyDelay, Ret: spool.RetHdrs, Recipients: []string{"-bob@example.net"}}},
	{"git send-email", "-i|bob@example.net|carol@example.com",
		Options{IgnoreDots: true, Recipients: []string{"bob@example.net", "carol@example.com"}}},
	{"git send-email -f", "-f|alice@example.org|-i|bob@example.net",
		Options{IgnoreDots: true, Sender: "alice@example.org", SenderSet: true, Recipients: []string{"bob@example.net"}}},
	{"php default", "-t|-i", Options{Extract: true, IgnoreDots: true}},
	{"php glued -f", "-t|-i|-fwebmaster@example.com",
		Options{Extract: true, IgnoreDots: true, Sender: "webmaster@example.com", SenderSet: true}},
	{"unattended-upgrades", "-oi|-t", Options{IgnoreDots: true, Extract: true}},
	{"Mail::Mailer", "-t", Options{Extract: true}},
	{"Email::Sender", "-i|-f|alice@example.org|--|bob@example.net",
		Options{IgnoreDots: true, Sender: "alice@example.org", SenderSet: true, Recipients: []string{"bob@example.net"}}},
	{"Email::Sender null sender", "-i|-f||--|bob@example.net",
		Options{IgnoreDots: true, SenderSet: true, Recipients: []string{"bob@example.net"}}},
	{"MIME::Lite", "-t|-oi|-oem|-falice@example.org",
		Options{Extract: true, IgnoreDots: true, Sender: "alice@example.org", SenderSet: true}},
	{"Perl -t -oi -oem", "-t|-oi|-oem", Options{Extract: true, IgnoreDots: true}},
	{"logwatch, mdadm", "-t", Options{Extract: true}},
	{"bsd-mailx", "-i|-v|--|root", Options{IgnoreDots: true, Verbose: 1, Recipients: []string{"root"}}},
	{"mailx metoo", "-i|-m|root", Options{IgnoreDots: true, Recipients: []string{"root"}}},
	{"alpine", "-bs|-odb|-oem", Options{Mode: ModeSMTP}},

	// The grammar.
	{"grouped flags", "-ti", Options{Extract: true, IgnoreDots: true}},
	{"grouped then value", "-tif|a@x", Options{Extract: true, IgnoreDots: true, Sender: "a@x", SenderSet: true}},
	{"-r", "-r|a@x|b", Options{Sender: "a@x", SenderSet: true, Recipients: []string{"b"}}},
	{"-f <>", "-f<>|b", Options{SenderSet: true, Recipients: []string{"b"}}},
	{"-f <addr>", "-f|<a@x>|b", Options{Sender: "a@x", SenderSet: true, Recipients: []string{"b"}}},
	{"-F separate", "-F|Cron Daemon|b", Options{FullName: "Cron Daemon", Recipients: []string{"b"}}},
	{"-o separate", "-o|i|b", Options{IgnoreDots: true, Recipients: []string{"b"}}},
	{"unknown -o ignored", "-oQ/var/spool|-oX|-o7|b", Options{Recipients: []string{"b"}}},
	{"commas", "a@x,b@y", Options{Recipients: []string{"a@x", "b@y"}}},
	{"name forms", "Bob <b@y>, (c) c@z", Options{Recipients: []string{"b@y", "c@z"}}},
	{"stop at operand", "root|-t", Options{Recipients: []string{"root", "-t"}}},
	{"bare -q", "-q", Options{Mode: ModeRunQueue}},
	{"-q30m", "-q30m", Options{Mode: ModeRunQueue, QueueArg: "30m"}},
	{"-qR", "-qRexample.org", Options{Mode: ModeRunQueue, QueueArg: "Rexample.org"}},
	{"-bp", "-bp", Options{Mode: ModeQueue}},
	{"-bp --json", "-bp|--json", Options{Mode: ModeQueue, JSON: true}},
	{"-bi", "-bi", Options{Mode: ModeAliases}},
	{"-I", "-I", Options{Mode: ModeAliases}},
	{"-bv", "-bv|root|x@y", Options{Mode: ModeVerify, Recipients: []string{"root", "x@y"}}},
	{"-b separate", "-b|m|root", Options{Recipients: []string{"root"}}},
	{"-C", "-C|/etc/x.conf|-t", Options{ConfigPath: "/etc/x.conf", Extract: true}},
	{"--config", "--config=/etc/x.conf|-t", Options{ConfigPath: "/etc/x.conf", Extract: true}},
	{"ignored letters", "-G|-U|-n|-L|tag|-h|5|-Ac|-X|/tmp/log|-O|DeliveryMode=b|-pESMTP|-ex|root",
		Options{Recipients: []string{"root"}}},
	{"-N never -V", "-Nnever|-VQQ314159|root", Options{Notify: spool.NotifyNever, EnvID: "QQ314159", Recipients: []string{"root"}}},
	{"-R full", "-RFULL|root", Options{Ret: spool.RetFull, Recipients: []string{"root"}}},
	{"-B 7bit", "-B|7BIT|root", Options{Body: spool.Body7Bit, Recipients: []string{"root"}}},
	{"--check-config", "--check-config", Options{CheckConfig: true}},
}

func split(argv string) []string {
	if argv == "" {
		return nil
	}
	return strings.Split(argv, "|")
}

func TestParseArgsCallers(t *testing.T) {
	for _, tc := range callers {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs("/usr/sbin/sendmail", split(tc.argv))
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", tc.argv, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseArgs(%q)\n got %+v\nwant %+v", tc.argv, got, tc.want)
			}
		})
	}
}

func TestParseArgsProgramName(t *testing.T) {
	for _, tc := range []struct {
		argv0 string
		args  []string
		want  Mode
	}{
		{"/usr/bin/mailq", nil, ModeQueue},
		{"mailq", []string{"--json"}, ModeQueue},
		{"/usr/bin/newaliases", nil, ModeAliases},
		{"/usr/lib/sendmail", []string{"-bp"}, ModeQueue},
		{"send-mail", []string{"root"}, ModeSubmit},
	} {
		got, err := ParseArgs(tc.argv0, tc.args)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.argv0, tc.args, err)
		}
		if got.Mode != tc.want {
			t.Errorf("%s %v: mode %v, want %v", tc.argv0, tc.args, got.Mode, tc.want)
		}
	}
}

func TestParseArgsWarnings(t *testing.T) {
	got, err := ParseArgs("sendmail", []string{"-Bfoo", "root"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "" || len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], "-B foo") {
		t.Errorf("-Bfoo: body %q warnings %q, want no body and one warning", got.Body, got.Warnings)
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		argv, reason string
	}{
		{"-d0.1|root", "unknown option -d"},
		{"-bx", "unknown option -bx"},
		{"-bd", "smtpd"},
		{"-bD", "smtpd"},
		{"-f", "needs a value"},
		{"-t|-bp", "-t goes only"},
		{"", "no recipients"},
		{"-i", "no recipients"},
		{"-bv", "at least one"},
		{"-bp|root", "takes no addresses"},
		{"-bs|root", "takes no addresses"},
		{"-q|root", "takes no addresses"},
		{"-Nsometimes|root", "-N"},
		{"-Nnever,success|root", "never excludes"},
		{"-Rall|root", "-R"},
		{"-V|has space|root", "printable"},
		{"-V|" + strings.Repeat("x", 101) + "|root", "1 to 100"},
		{"--json|root", "--json goes"},
		{"--frobnicate", "unknown option --frobnicate"},
		{"--config", "needs a value"},
		{"--json=yes|-bp", "takes no value"},
		{"-f|a@x\r\nRCPT TO:<b@y>|root", "control character"},
		{"-F|Eve\nBcc: x@y|root", "control character"},
		{"root\nBcc: x@y", "control character"},
		{"-f|a@x, b@y|root", "not one address"},
		{"John Doe john@x", "blank inside"},
		{",", "holds no address"},
		{"-o||root", "-o needs"},
		{"--check-config|--print-config", "exclude"},
	} {
		_, err := ParseArgs("sendmail", split(tc.argv))
		if !errors.Is(err, ErrUsage) {
			t.Errorf("ParseArgs(%q) = %v, want a usage error", tc.argv, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("ParseArgs(%q) = %q, want it to say %q", tc.argv, err, tc.reason)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("ParseArgs(%q): the error %q is not one line", tc.argv, err)
		}
	}
}

// FuzzParseArgs: any argv parses or fails with a one-line usage error,
// never panics, and what parses holds no control character in anything
// that reaches the envelope or a header.
func FuzzParseArgs(f *testing.F) {
	for _, tc := range callers {
		f.Add(tc.argv)
	}
	for _, s := range []string{"-q|root", "-o", "-b", "--|-x", "-f|\"a b\"@x|c", "-fa@x\x00|b", "-ti|--|", "a@x,,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, argv string) {
		o, err := ParseArgs("sendmail", split(argv))
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("%q: error %v is not a usage error", argv, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("%q: error %q spans lines", argv, err)
			}
			return
		}
		for _, s := range append([]string{o.Sender, o.FullName, o.EnvID}, o.Recipients...) {
			if hasControl(s) {
				t.Fatalf("%q: control character in %q", argv, s)
			}
		}
		for _, r := range o.Recipients {
			if r == "" {
				t.Fatalf("%q: empty recipient", argv)
			}
		}
	})
}
