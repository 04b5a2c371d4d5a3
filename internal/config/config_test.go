package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	c := Default()
	want := &Config{
		Hostname:           c.Hostname,
		Domains:            []string{},
		MailRoot:           "/var/mail/vhosts",
		PasswdFile:         "/etc/mailroom/passwd",
		AliasesFile:        "/etc/mailroom/aliases",
		SpoolDir:           "/var/spool/mailroom",
		RecipientDelimiter: "+",
		LogFormat:          "logfmt",
		LogLevel:           "info",
		Deliver: DeliverConfig{
			OverQuota:              "tempfail",
			MaxMessageSize:         50 * 1024 * 1024,
			TextIndex:              true,
			QueueConcurrency:       8,
			MinBackoff:             5 * time.Minute,
			MaxBackoff:             time.Hour,
			QueueLifetime:          120 * time.Hour,
			TLSSecurityLevel:       "may",
			DestinationConcurrency: 20,
		},
		Smtpd: SmtpdConfig{
			User:                    "mailroom",
			ListenSMTP:              []string{":25"},
			ListenSubmission:        []string{":587"},
			ListenSubmissions:       []string{":465"},
			MaxMessageSize:          50 * 1024 * 1024,
			MaxRecipients:           1000,
			MaxLineLength:           65536,
			CommandTimeout:          5 * time.Minute,
			DataTimeout:             10 * time.Minute,
			MaxConnections:          200,
			MaxConnectionsPerClient: 20,
			MaxErrors:               20,
			AuthFailuresBeforeDelay: 2,
		},
		Imapd: ImapdConfig{
			ListenIMAP:              []string{":143"},
			ListenIMAPS:             []string{":993"},
			LoginTimeout:            time.Minute,
			IdleTimeout:             30 * time.Minute,
			MaxConnections:          1000,
			MaxConnectionsPerClient: 50,
			MaxErrors:               20,
			AppendLimit:             50 << 20,
			MaxAuthFailures:         5,
			TextIndexBackground:     true,
		},
		Pop3d: Pop3dConfig{
			ListenPOP3:              []string{":110"},
			ListenPOP3S:             []string{":995"},
			UIDLFormat:              "maildir",
			IdleTimeout:             10 * time.Minute,
			MaxConnections:          200,
			MaxConnectionsPerClient: 20,
			Expire:                  "never",
		},
		Sendmail: SendmailConfig{TrustedUsers: []string{"root"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Default() = %+v\nwant %+v", c, want)
	}
	if host, err := os.Hostname(); err == nil && c.Hostname != host {
		t.Errorf("Hostname = %q, want os.Hostname() %q", c.Hostname, host)
	}
	if err := c.Check(); err != nil {
		t.Errorf("Default().Check() = %v", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		change func(c *Config)
	}{
		{"empty", "", func(c *Config) {}},
		{"comments and blanks", "# hello\n\n   # indented comment\n\t\n", func(c *Config) {}},
		{"hostname", "hostname = mx.example.org\n", func(c *Config) { c.Hostname = "mx.example.org" }},
		{"domains commas", "domains = Example.ORG, example.net\n", func(c *Config) { c.Domains = []string{"example.org", "example.net"} }},
		{"domains spaces", "domains = a.example b.example,c.example,\n", func(c *Config) { c.Domains = []string{"a.example", "b.example", "c.example"} }},
		{"domains empty", "domains =\n", func(c *Config) {}},
		{"no spaces", "mail_root=/srv/mail\n", func(c *Config) { c.MailRoot = "/srv/mail" }},
		{"paths", "passwd_file = /p\naliases_file = /a\nspool_dir = /s\n", func(c *Config) {
			c.PasswdFile, c.AliasesFile, c.SpoolDir = "/p", "/a", "/s"
		}},
		{"delimiter off", "recipient_delimiter =\n", func(c *Config) { c.RecipientDelimiter = "" }},
		{"delimiters", "recipient_delimiter = +-\n", func(c *Config) { c.RecipientDelimiter = "+-" }},
		{"hash in value", "recipient_delimiter = #\n", func(c *Config) { c.RecipientDelimiter = "#" }},
		{"log", "log_format = syslog\nlog_level = debug\n", func(c *Config) { c.LogFormat, c.LogLevel = "syslog", "debug" }},
		{"CRLF", "log_level = warn\r\n", func(c *Config) { c.LogLevel = "warn" }},
		{"deliver", "[deliver]\nquota = 1G\nquota_messages = 1000\nover_quota = bounce\n" +
			"allow_pipe_targets = yes\nallow_file_targets = TRUE\nextension_folder = true\n" +
			"max_message_size = 10M\n", func(c *Config) {
			d := &c.Deliver
			d.Quota, d.QuotaMessages, d.OverQuota = 1<<30, 1000, "bounce"
			d.AllowPipeTargets, d.AllowFileTargets, d.ExtensionFolder = true, true, true
			d.MaxMessageSize = 10 << 20
		}},
		{"sizes", "[deliver]\nquota = 512k\nmax_message_size = 0\n", func(c *Config) { c.Deliver.Quota, c.Deliver.MaxMessageSize = 512<<10, 0 }},
		{"size lower-case suffix", "[deliver]\nquota = 2g\n", func(c *Config) { c.Deliver.Quota = 2 << 30 }},
		{"size plain", "[deliver]\nquota = 12345\n", func(c *Config) { c.Deliver.Quota = 12345 }},
		{"bool no", "[deliver]\nallow_pipe_targets = no\n", func(c *Config) {}},
		{"text index off", "[deliver]\ntext_index = no\n", func(c *Config) { c.Deliver.TextIndex = false }},
		{"sections repeat", "[deliver]\nquota = 1\n[smtpd]\n[deliver]\nquota_messages = 2\n", func(c *Config) {
			c.Deliver.Quota, c.Deliver.QuotaMessages = 1, 2
		}},
		{"reserved sections", "[smtpd]\n[imapd]\n[ pop3d ]\n[sendmail]\n# nothing\n", func(c *Config) {}},
		{"durations", "[deliver]\nqueue_lifetime = 2d\nmin_backoff = 90s\ndelay_warning = 4h\n[smtpd]\ndata_timeout = 0\n", func(c *Config) {
			c.Deliver.QueueLifetime, c.Deliver.MinBackoff, c.Deliver.DelayWarning = 48*time.Hour, 90*time.Second, 4*time.Hour
			c.Smtpd.DataTimeout = 0
		}},
		{"same key name in two sections", "[smtpd]\nmax_connections = 5\n[pop3d]\nmax_connections = 7\n", func(c *Config) {
			c.Smtpd.MaxConnections, c.Pop3d.MaxConnections = 5, 7
		}},
		{"relay hosts", "[deliver]\nrelay_host = [smtp.example.net]:587\n", func(c *Config) { c.Deliver.RelayHost = "[smtp.example.net]:587" }},
		{"relay host plain", "[deliver]\nrelay_host = smtp.example.net\n", func(c *Config) { c.Deliver.RelayHost = "smtp.example.net" }},
		{"listen lists", "[smtpd]\nlisten_smtp = 127.0.0.1:2525, [::1]:2525\nlisten_submissions =\n", func(c *Config) {
			c.Smtpd.ListenSMTP, c.Smtpd.ListenSubmissions = []string{"127.0.0.1:2525", "[::1]:2525"}, []string{}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), "test.conf")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tt.change(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown key", "# c\nquotas = 1\n", `test.conf:2: unknown key "quotas"`},
		{"unknown key in section", "[deliver]\nfoo = 1\n", `test.conf:2: unknown key "foo" in [deliver]`},
		{"imapd unknown key", "[imapd]\nlisten = :143\n", `test.conf:2: unknown key "listen" in [imapd]`},
		{"smtpd unknown key", "[smtpd]\nlisten = :25\n", `test.conf:2: unknown key "listen" in [smtpd]`},
		{"duration unit missing", "[smtpd]\ncommand_timeout = 300\n", `bad duration "300"`},
		{"duration compound", "[deliver]\nmax_backoff = 1h30m\n", `bad duration "1h30m"`},
		{"duration fraction", "[deliver]\nmax_backoff = 1.5h\n", `bad duration`},
		{"duration negative", "[deliver]\nmax_backoff = -1h\n", `bad duration`},
		{"listen without port", "[smtpd]\nlisten_smtp = localhost\n", `bad listen address "localhost"`},
		{"listen bad port", "[pop3d]\nlisten_pop3 = :99999\n", `bad port`},
		{"expire", "[pop3d]\nexpire = soon\n", `bad expire "soon"`},
		{"user", "[smtpd]\nuser = a b\n", `bad user name`},
		{"relative tls_cert", "tls_cert = cert.pem\n", `not absolute`},
		{"relay_host blank", "[deliver]\nrelay_host = a b\n", `bad relay_host`},
		{"relay_host bracket", "[deliver]\nrelay_host = [a.example\n", `unbalanced`},
		{"relay_host port", "[deliver]\nrelay_host = a.example:0\n", `bad port`},
		{"tls level", "[deliver]\ntls_security_level = dane\n", `bad value "dane"`},
		{"deliver key at top", "quota = 1\n", `test.conf:1: key "quota" belongs in [deliver], not at the top of the file`},
		{"common key in section", "[deliver]\nhostname = x\n", `test.conf:2: key "hostname" belongs at the top of the file`},
		{"deliver key in smtpd", "[smtpd]\nquota = 1\n", `belongs in [deliver], not in [smtpd]`},
		{"duplicate", "log_level = info\n\nlog_level = debug\n", `test.conf:3: duplicate key "log_level" (first set at line 1)`},
		{"duplicate across repeated section", "[deliver]\nquota = 1\n[deliver]\nquota = 2\n", `test.conf:4: duplicate key "quota"`},
		{"no equals", "hostname\n", `test.conf:1: want "key = value"`},
		{"empty key", "= x\n", `test.conf:1: empty key name`},
		{"unknown section", "[smptd]\n", `test.conf:1: unknown section [smptd]`},
		{"empty section", "[]\n", `unknown section []`},
		{"unterminated section", "[deliver\n", `test.conf:1: unterminated section header`},
		{"bad size", "[deliver]\nquota = 1T\n", `test.conf:2: quota: bad size "1T"`},
		{"negative size", "[deliver]\nquota = -1\n", `quota: bad size "-1"`},
		{"size overflow", "[deliver]\nquota = 9999999999999G\n", `quota: size "9999999999999G" too large`},
		{"empty size", "[deliver]\nmax_message_size =\n", `max_message_size: bad size ""`},
		{"count with suffix", "[deliver]\nquota_messages = 1k\n", `quota_messages: bad number "1k"`},
		{"count overflow", "[deliver]\nquota_messages = 99999999999999999999\n", `quota_messages: bad number`},
		{"bad bool", "[deliver]\nallow_pipe_targets = maybe\n", `test.conf:2: allow_pipe_targets: bad boolean "maybe"`},
		{"bad text_index", "[deliver]\ntext_index = sometimes\n", `test.conf:2: text_index: bad boolean "sometimes"`},
		{"lock_timeout is gone", "[deliver]\nlock_timeout = 30s\n", `test.conf:2: unknown key "lock_timeout" in [deliver]`},
		{"bad over_quota", "[deliver]\nover_quota = drop\n", `over_quota: bad value "drop" (want one of tempfail, bounce)`},
		{"bad log_format", "log_format = json\n", `log_format: bad value "json"`},
		{"bad log_level", "log_level = INFO\n", `log_level: bad value "INFO"`},
		{"relative path", "mail_root = var/mail\n", `test.conf:1: mail_root: path "var/mail" is not absolute`},
		{"empty path", "spool_dir =\n", `spool_dir: empty path`},
		{"bad domain", "domains = example.org, exa_mple.net\n", `domains: bad domain "exa_mple.net"`},
		{"domain label hyphen", "domains = -a.example\n", `may not start or end with '-'`},
		{"domain empty label", "domains = a..example\n", `each label must be 1-63`},
		{"duplicate domain", "domains = a.example, A.example\n", `domain "a.example" listed twice`},
		{"bad delimiter", "recipient_delimiter = +@\n", `recipient_delimiter: bad recipient_delimiter "+@"`},
		{"letter delimiter", "recipient_delimiter = x\n", `bad recipient_delimiter`},
		{"empty hostname", "hostname =\n", `hostname: empty hostname`},
		{"hostname slash", "hostname = a/b\n", `hostname "a/b" contains '/'`},
		{"invalid utf8", "hostname = \xff\n", `test.conf:1: invalid UTF-8`},
		{"long line", "# " + strings.Repeat("x", maxLineLength) + "\n", `test.conf:1: line longer than`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.in), "test.conf")
			if err == nil {
				t.Fatalf("Parse succeeded: %+v; want error containing %q", c, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mailroom.conf")
	if err := os.WriteFile(path, []byte("domains = example.org\n[deliver]\nquota = 5k\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(c.Domains, []string{"example.org"}) || c.Deliver.Quota != 5<<10 {
		t.Errorf("Load = %+v", c)
	}
	if err := os.WriteFile(path, []byte("[deliver]\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("Load error = %v, want prefix %q", err, path+":2: ")
	}
	if _, err := Load(filepath.Join(dir, "missing.conf")); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// TestSampleFile loads the shipped sample, and checks that it lists every
// key and that the defaults it documents are the real ones.
func TestSampleFile(t *testing.T) {
	const sample = "../../etc/mailroom.conf"
	c, err := Load(sample)
	if err != nil {
		t.Fatalf("Load(%s): %v", sample, err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("sample with everything commented out differs from Default():\n%+v", c)
	}
	data, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	// Uncomment "#key = value" lines and reload: the values shown must be
	// the defaults (except hostname and domains, shown as examples).
	commented := regexp.MustCompile(`(?m)^#([a-z0-9_]+ =.*)$`)
	uncommented := commented.ReplaceAllString(string(data), "$1")
	for _, k := range keys {
		if !regexp.MustCompile(`(?m)^` + k.name + ` =`).MatchString(uncommented) {
			t.Errorf("sample does not list key %q", k.name)
		}
	}
	uc, err := Parse(strings.NewReader(uncommented), "uncommented sample")
	if err != nil {
		t.Fatalf("uncommented sample: %v", err)
	}
	want := Default()
	want.Hostname, want.Domains = uc.Hostname, uc.Domains
	if !reflect.DeepEqual(uc, want) {
		t.Errorf("documented defaults differ from Default():\ngot  %+v\nwant %+v", uc, want)
	}
}

func TestPrintRoundTrip(t *testing.T) {
	c := Default()
	c.Hostname = "mx.example.org"
	c.Domains = []string{"example.org", "example.net"}
	c.RecipientDelimiter = ""
	c.Deliver.Quota = 3<<20 + 1
	c.Deliver.MaxMessageSize = 0
	c.Deliver.AllowFileTargets = true
	var buf bytes.Buffer
	if err := Print(&buf, c); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(&buf, "printed")
	if err != nil {
		t.Fatalf("Parse(Print(c)): %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, c)
	}
}

func TestPrintFormat(t *testing.T) {
	c := Default()
	c.Hostname = "h.example"
	var buf bytes.Buffer
	if err := Print(&buf, c); err != nil {
		t.Fatal(err)
	}
	want := `hostname = h.example
domains =
mail_root = /var/mail/vhosts
passwd_file = /etc/mailroom/passwd
aliases_file = /etc/mailroom/aliases
spool_dir = /var/spool/mailroom
recipient_delimiter = +
log_format = logfmt
log_level = info
tls_cert =
tls_key =
plaintext_auth_on_loopback = no

[deliver]
quota = 0
quota_messages = 0
over_quota = tempfail
allow_pipe_targets = no
allow_file_targets = no
extension_folder = no
max_message_size = 50M
text_index = yes
queue_concurrency = 8
min_backoff = 5m
max_backoff = 1h
queue_lifetime = 5d
delay_warning = 0
relay_host =
relay_user =
relay_password_file =
transport_file =
tls_security_level = may
destination_concurrency = 20

[smtpd]
user = mailroom
listen_smtp = :25
listen_submission = :587
listen_submissions = :465
max_message_size = 50M
max_recipients = 1000
max_line_length = 64k
command_timeout = 5m
data_timeout = 10m
max_connections = 200
max_connections_per_client = 20
max_errors = 20
auth_failures_before_delay = 2

[imapd]
listen_imap = :143
listen_imaps = :993
login_timeout = 1m
idle_timeout = 30m
max_connections = 1000
max_connections_per_client = 50
max_errors = 20
append_limit = 50M
max_auth_failures = 5
text_index_background = yes

[pop3d]
listen_pop3 = :110
listen_pop3s = :995
uidl_format = maildir
idle_timeout = 10m
max_connections = 200
max_connections_per_client = 20
expire = never
login_delay = 0

[sendmail]
trusted_users = root
origin =
`
	if buf.String() != want {
		t.Errorf("Print =\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestPrintRefusesUnwritable(t *testing.T) {
	for _, mutate := range []func(*Config){
		func(c *Config) { c.Hostname = "a\nquota = 1" },
		func(c *Config) { c.MailRoot = " /padded" },
		func(c *Config) { c.LogLevel = "\xff" },
	} {
		c := Default()
		mutate(c)
		if err := Print(&bytes.Buffer{}, c); err == nil {
			t.Errorf("Print accepted %+v", c)
		}
	}
}

// TestPrintCoversEveryField changes each leaf field of Config in turn to a
// valid non-default value and checks that Print carries the change through
// Parse: a field added to Config without a key in Print fails here.
func TestPrintCoversEveryField(t *testing.T) {
	leaves := 0
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			name := path + v.Type().Field(i).Name
			if f.Kind() == reflect.Struct {
				walk(f, name+".")
				continue
			}
			leaves++
			t.Run(name, func(t *testing.T) { checkFieldPrinted(t, name) })
		}
	}
	walk(reflect.ValueOf(Config{}), "")
	if leaves != len(keys) {
		t.Errorf("Config has %d fields but %d keys", leaves, len(keys))
	}
}

func checkFieldPrinted(t *testing.T, path string) {
	c := Default()
	f := reflect.ValueOf(c).Elem()
	for _, name := range strings.Split(path, ".") {
		f = f.FieldByName(name)
	}
	setNonDefault(t, f, path)
	var buf bytes.Buffer
	if err := Print(&buf, c); err != nil {
		t.Fatalf("Print: %v", err)
	}
	got, err := Parse(&buf, "printed")
	if err != nil {
		t.Fatalf("Parse(Print): %v", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("field %s lost by Print:\n%s", path, buf.String())
	}
}

// nonDefaultStrings holds a valid, non-default value for each string field
// whose values are constrained.
var nonDefaultStrings = map[string]string{
	"Hostname":                 "other.example",
	"LogFormat":                "syslog",
	"LogLevel":                 "error",
	"RecipientDelimiter":       "-",
	"Deliver.OverQuota":        "bounce",
	"Smtpd.User":               "smtp-user",
	"Pop3d.UIDLFormat":         "dovecot",
	"Pop3d.Expire":             "30",
	"Sendmail.Origin":          "origin.example",
	"Deliver.RelayHost":        "[smarthost.example]:587",
	"Deliver.RelayUser":        "relay-user",
	"Deliver.TLSSecurityLevel": "verify",
}

func setNonDefault(t *testing.T, f reflect.Value, path string) {
	switch {
	case f.Kind() == reflect.String:
		v, ok := nonDefaultStrings[path]
		if !ok {
			v = "/non/default/" + strings.ToLower(path) // valid as a path and as a hostname
		}
		f.SetString(v)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		v := "nondefault.example"
		if strings.Contains(path, ".Listen") {
			v = "127.0.0.2:2525"
		}
		f.Set(reflect.ValueOf([]string{v}))
	case f.Type() == reflect.TypeOf(time.Duration(0)):
		f.SetInt(f.Int() + int64(90*time.Second))
	case f.Kind() == reflect.Bool:
		f.SetBool(!f.Bool())
	case f.Kind() == reflect.Int64:
		f.SetInt(f.Int() + 4096)
	default:
		t.Fatalf("field %s: no test value for kind %s; extend setNonDefault", path, f.Kind())
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"relative mail_root", func(c *Config) { c.MailRoot = "mail" }, `mail_root: path "mail" is not absolute`},
		{"relative passwd", func(c *Config) { c.PasswdFile = "" }, `passwd_file: empty path`},
		{"relative aliases", func(c *Config) { c.AliasesFile = "./aliases" }, `aliases_file: path`},
		{"relative spool", func(c *Config) { c.SpoolDir = "spool" }, `spool_dir: path`},
		{"upper-case domain", func(c *Config) { c.Domains = []string{"Example.org"} }, `domains: bad domain "Example.org": must be lower-case`},
		{"bad domain", func(c *Config) { c.Domains = []string{"a b"} }, `domains:`},
		{"duplicate domain", func(c *Config) { c.Domains = []string{"a.example", "a.example"} }, `listed twice`},
		{"over_quota", func(c *Config) { c.Deliver.OverQuota = "drop" }, `over_quota: bad value "drop"`},
		{"log_format", func(c *Config) { c.LogFormat = "" }, `log_format: bad value ""`},
		{"negative quota", func(c *Config) { c.Deliver.Quota = -1 }, `quota: bad size "-1"`},
		{"negative count", func(c *Config) { c.Deliver.QuotaMessages = -1 }, `quota_messages: bad number "-1"`},
		{"hostname", func(c *Config) { c.Hostname = "" }, `hostname: empty hostname`},
		{"delimiter", func(c *Config) { c.RecipientDelimiter = "@" }, `recipient_delimiter`},
		{"unprintable", func(c *Config) { c.Hostname = "a\nb" }, `cannot be written`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			err := c.Check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check() = %v, want error containing %q", err, tt.want)
			}
		})
	}
	c := Default()
	c.MailRoot, c.SpoolDir = "a", "b"
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "mail_root") || !strings.Contains(err.Error(), "spool_dir") {
		t.Errorf("Check() = %v, want both problems reported", err)
	}
}

func TestIsLocalDomain(t *testing.T) {
	c := Default()
	c.Domains = []string{"example.org", "example.net"}
	for _, tt := range []struct {
		domain string
		want   bool
	}{
		{"example.org", true},
		{"EXAMPLE.Org", true},
		{"example.net", true},
		{"example.com", false},
		{"sub.example.org", false},
		{"", false},
	} {
		if got := c.IsLocalDomain(tt.domain); got != tt.want {
			t.Errorf("IsLocalDomain(%q) = %v, want %v", tt.domain, got, tt.want)
		}
	}
	if Default().IsLocalDomain("localhost") {
		t.Error("default config hosts a domain")
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"500", 500, false},
		{"1k", 1024, false},
		{"1K", 1024, false},
		{"500M", 500 << 20, false},
		{"2g", 2 << 30, false},
		{"8589934591G", 8589934591 << 30, false},
		{"8589934592G", 0, true}, // 2^63 overflows int64
		{"", 0, true},
		{"k", 0, true},
		{"1T", 0, true},
		{"1B", 0, true},
		{"-1", 0, true},
		{"+1", 0, true},
		{"1.5M", 0, true},
		{" 1", 0, true},
		{"1 M", 0, true},
		{"0x10", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want string
	}{
		{0, "0"}, {1, "1"}, {1023, "1023"}, {1024, "1k"}, {1536, "1536"},
		{3 << 20, "3M"}, {5 << 30, "5G"}, {1<<30 + 1<<20, "1025M"},
	} {
		if got := FormatSize(tt.in); got != tt.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := ParseSize(FormatSize(tt.in)); err != nil || back != tt.in {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", tt.in, back, err)
		}
	}
}

// FuzzParseSize checks that every size ParseSize accepts prints back to
// itself through FormatSize.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"0", "500", "1k", "2G", "3m", "9999999999999G", "x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := ParseSize(in)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d < 0", in, n)
		}
		back, err := ParseSize(FormatSize(n))
		if err != nil || back != n {
			t.Fatalf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
	})
}
