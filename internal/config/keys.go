package config

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Section names. The empty name is the top of the file.
const (
	sectionCommon   = ""
	sectionDeliver  = "deliver"
	sectionSmtpd    = "smtpd"
	sectionImapd    = "imapd"
	sectionPop3d    = "pop3d"
	sectionSendmail = "sendmail"
)

// sections lists every section name the parser accepts, in print order.
// smtpd, imapd, pop3d and sendmail have no keys yet: they are reserved so
// that a file written for a later release is refused key by key, not
// section by section.
var sections = []string{sectionCommon, sectionDeliver, sectionSmtpd, sectionImapd, sectionPop3d, sectionSendmail}

// key describes one configuration key: where it lives, how its text becomes
// a field (set validates, so the file and Check share one set of rules) and
// how the field becomes text again (get, for Print).
type key struct {
	section string
	name    string
	set     func(c *Config, value string) error
	get     func(c *Config) string
	// check, when set, validates the field directly for Config.Check
	// (a list's printed form would hide an item containing a blank).
	check func(c *Config) error
}

// keys is the whole vocabulary of mailroom.conf in print order, grouped by
// section. A key added to Config but not here is caught by
// TestPrintCoversEveryField.
var keys = concatKeys(commonKeys, deliverKeys, smtpdKeys, imapdKeys, pop3dKeys, sendmailKeys)

func concatKeys(groups ...[]key) []key {
	var all []key
	for _, g := range groups {
		all = append(all, g...)
	}
	return all
}

var commonKeys = []key{
	stringKey(sectionCommon, "hostname", func(c *Config) *string { return &c.Hostname }, checkHostname),
	listKey(sectionCommon, "domains", func(c *Config) *[]string { return &c.Domains }, strings.ToLower, checkDomains),
	stringKey(sectionCommon, "mail_root", func(c *Config) *string { return &c.MailRoot }, checkAbsPath),
	stringKey(sectionCommon, "passwd_file", func(c *Config) *string { return &c.PasswdFile }, checkAbsPath),
	stringKey(sectionCommon, "aliases_file", func(c *Config) *string { return &c.AliasesFile }, checkAbsPath),
	stringKey(sectionCommon, "spool_dir", func(c *Config) *string { return &c.SpoolDir }, checkAbsPath),
	stringKey(sectionCommon, "recipient_delimiter", func(c *Config) *string { return &c.RecipientDelimiter }, checkDelimiter),
	stringKey(sectionCommon, "log_format", func(c *Config) *string { return &c.LogFormat }, oneOf("logfmt", "syslog")),
	stringKey(sectionCommon, "log_level", func(c *Config) *string { return &c.LogLevel }, oneOf("debug", "info", "warn", "error")),
	stringKey(sectionCommon, "tls_cert", func(c *Config) *string { return &c.TLSCert }, checkOptionalAbsPath),
	stringKey(sectionCommon, "tls_key", func(c *Config) *string { return &c.TLSKey }, checkOptionalAbsPath),
	boolKey(sectionCommon, "plaintext_auth_on_loopback", func(c *Config) *bool { return &c.PlaintextAuthOnLoopback }),
}

var deliverKeys = []key{
	sizeKey(sectionDeliver, "quota", func(c *Config) *int64 { return &c.Deliver.Quota }),
	countKey(sectionDeliver, "quota_messages", func(c *Config) *int64 { return &c.Deliver.QuotaMessages }),
	stringKey(sectionDeliver, "over_quota", func(c *Config) *string { return &c.Deliver.OverQuota }, oneOf("tempfail", "bounce")),
	boolKey(sectionDeliver, "allow_pipe_targets", func(c *Config) *bool { return &c.Deliver.AllowPipeTargets }),
	boolKey(sectionDeliver, "allow_file_targets", func(c *Config) *bool { return &c.Deliver.AllowFileTargets }),
	boolKey(sectionDeliver, "extension_folder", func(c *Config) *bool { return &c.Deliver.ExtensionFolder }),
	sizeKey(sectionDeliver, "max_message_size", func(c *Config) *int64 { return &c.Deliver.MaxMessageSize }),
	boolKey(sectionDeliver, "text_index", func(c *Config) *bool { return &c.Deliver.TextIndex }),
	countKey(sectionDeliver, "queue_concurrency", func(c *Config) *int64 { return &c.Deliver.QueueConcurrency }),
	durationKey(sectionDeliver, "min_backoff", func(c *Config) *time.Duration { return &c.Deliver.MinBackoff }),
	durationKey(sectionDeliver, "max_backoff", func(c *Config) *time.Duration { return &c.Deliver.MaxBackoff }),
	durationKey(sectionDeliver, "queue_lifetime", func(c *Config) *time.Duration { return &c.Deliver.QueueLifetime }),
	durationKey(sectionDeliver, "delay_warning", func(c *Config) *time.Duration { return &c.Deliver.DelayWarning }),
	stringKey(sectionDeliver, "relay_host", func(c *Config) *string { return &c.Deliver.RelayHost }, checkRelayHost),
	stringKey(sectionDeliver, "relay_user", func(c *Config) *string { return &c.Deliver.RelayUser }, checkNoBlank),
	stringKey(sectionDeliver, "relay_password_file", func(c *Config) *string { return &c.Deliver.RelayPasswordFile }, checkOptionalAbsPath),
	stringKey(sectionDeliver, "transport_file", func(c *Config) *string { return &c.Deliver.TransportFile }, checkOptionalAbsPath),
	stringKey(sectionDeliver, "tls_security_level", func(c *Config) *string { return &c.Deliver.TLSSecurityLevel }, oneOf("none", "may", "encrypt", "verify")),
	countKey(sectionDeliver, "destination_concurrency", func(c *Config) *int64 { return &c.Deliver.DestinationConcurrency }),
}

// Default returns a Config with every field set to its documented default.
// The host name comes from os.Hostname, or "localhost" when the system
// cannot tell (a Config must never carry an empty hostname).
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || checkHostname(host) != nil {
		host = "localhost"
	}
	return &Config{
		Hostname:           host,
		Domains:            []string{},
		MailRoot:           "/var/mail/vhosts",
		PasswdFile:         "/etc/mailroom/passwd",
		AliasesFile:        "/etc/mailroom/aliases",
		SpoolDir:           "/var/spool/mailroom",
		RecipientDelimiter: "+",
		LogFormat:          "logfmt",
		LogLevel:           "info",
		TLSCert:            "",
		TLSKey:             "",
		Deliver: DeliverConfig{
			Quota:            0,
			QuotaMessages:    0,
			OverQuota:        "tempfail",
			AllowPipeTargets: false,
			AllowFileTargets: false,
			ExtensionFolder:  false,
			MaxMessageSize:   50 << 20,
			TextIndex:        true,
			QueueConcurrency: 8,
			MinBackoff:       5 * time.Minute,
			MaxBackoff:       time.Hour,
			QueueLifetime:    5 * 24 * time.Hour,
			DelayWarning:     0,
			TLSSecurityLevel: "may",
			// Postfix's default_destination_concurrency_limit.
			DestinationConcurrency: 20,
		},
		Smtpd: SmtpdConfig{
			User:                    "mailroom",
			ListenSMTP:              []string{":25"},
			ListenSubmission:        []string{":587"},
			ListenSubmissions:       []string{":465"},
			MaxMessageSize:          50 << 20,
			MaxRecipients:           1000,
			MaxLineLength:           64 << 10,
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
			LoginDelay:              0,
		},
		Sendmail: SendmailConfig{
			TrustedUsers: []string{"root"},
			Origin:       "",
		},
	}
}

// IsLocalDomain reports whether mail for domain is delivered here, comparing
// names case-insensitively (RFC 5321 §2.4: domain names are not
// case-sensitive).
func (c *Config) IsLocalDomain(domain string) bool {
	for _, d := range c.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

func stringKey(section, name string, field func(*Config) *string, check func(string) error) key {
	return key{
		section: section,
		name:    name,
		set: func(c *Config, v string) error {
			if err := check(v); err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) string { return *field(c) },
	}
}

// listKey's normalize is applied to the value before it is split (domains
// are stored lower-case, so every later comparison can be byte-wise).
func listKey(section, name string, field func(*Config) *[]string, normalize func(string) string, check func([]string) error) key {
	return key{
		section: section,
		name:    name,
		set: func(c *Config, v string) error {
			list := parseList(normalize(v))
			if err := check(list); err != nil {
				return err
			}
			*field(c) = list
			return nil
		},
		get:   func(c *Config) string { return strings.Join(*field(c), ", ") },
		check: func(c *Config) error { return check(*field(c)) },
	}
}

func sizeKey(section, name string, field func(*Config) *int64) key {
	return key{
		section: section,
		name:    name,
		set: func(c *Config, v string) error {
			n, err := ParseSize(v)
			if err != nil {
				return err
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return FormatSize(*field(c)) },
	}
}

func countKey(section, name string, field func(*Config) *int64) key {
	return key{
		section: section,
		name:    name,
		set: func(c *Config, v string) error {
			n, err := parseCount(v)
			if err != nil {
				return err
			}
			*field(c) = n
			return nil
		},
		get: func(c *Config) string { return strconv.FormatInt(*field(c), 10) },
	}
}

func boolKey(section, name string, field func(*Config) *bool) key {
	return key{
		section: section,
		name:    name,
		set: func(c *Config, v string) error {
			b, err := parseBool(v)
			if err != nil {
				return err
			}
			*field(c) = b
			return nil
		},
		get: func(c *Config) string { return formatBool(*field(c)) },
	}
}

// findKey returns the key called name in section.
func findKey(section, name string) (key, bool) {
	for _, k := range keys {
		if k.section == section && k.name == name {
			return k, true
		}
	}
	return key{}, false
}

// homeOf returns the section a key name belongs to, for the error that
// tells an admin where a misplaced key should go.
func homeOf(name string) (string, bool) {
	for _, k := range keys {
		if k.name == name {
			return k.section, true
		}
	}
	return "", false
}

func isSection(name string) bool {
	for _, s := range sections {
		if s == name {
			return true
		}
	}
	return false
}
