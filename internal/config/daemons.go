package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The daemons' sections. Keys may share a name across sections
// (max_connections in [smtpd] and [pop3d]): a key is found by section and
// name together.
var smtpdKeys = []key{
	stringKey(sectionSmtpd, "user", func(c *Config) *string { return &c.Smtpd.User }, checkUserName),
	listKey(sectionSmtpd, "listen_smtp", func(c *Config) *[]string { return &c.Smtpd.ListenSMTP }, keepCase, checkAddrs),
	listKey(sectionSmtpd, "listen_submission", func(c *Config) *[]string { return &c.Smtpd.ListenSubmission }, keepCase, checkAddrs),
	listKey(sectionSmtpd, "listen_submissions", func(c *Config) *[]string { return &c.Smtpd.ListenSubmissions }, keepCase, checkAddrs),
	sizeKey(sectionSmtpd, "max_message_size", func(c *Config) *int64 { return &c.Smtpd.MaxMessageSize }),
	countKey(sectionSmtpd, "max_recipients", func(c *Config) *int64 { return &c.Smtpd.MaxRecipients }),
	sizeKey(sectionSmtpd, "max_line_length", func(c *Config) *int64 { return &c.Smtpd.MaxLineLength }),
	durationKey(sectionSmtpd, "command_timeout", func(c *Config) *time.Duration { return &c.Smtpd.CommandTimeout }),
	durationKey(sectionSmtpd, "data_timeout", func(c *Config) *time.Duration { return &c.Smtpd.DataTimeout }),
	countKey(sectionSmtpd, "max_connections", func(c *Config) *int64 { return &c.Smtpd.MaxConnections }),
	countKey(sectionSmtpd, "max_connections_per_client", func(c *Config) *int64 { return &c.Smtpd.MaxConnectionsPerClient }),
	countKey(sectionSmtpd, "max_errors", func(c *Config) *int64 { return &c.Smtpd.MaxErrors }),
	countKey(sectionSmtpd, "auth_failures_before_delay", func(c *Config) *int64 { return &c.Smtpd.AuthFailuresBeforeDelay }),
}

var imapdKeys = []key{
	listKey(sectionImapd, "listen_imap", func(c *Config) *[]string { return &c.Imapd.ListenIMAP }, keepCase, checkAddrs),
	listKey(sectionImapd, "listen_imaps", func(c *Config) *[]string { return &c.Imapd.ListenIMAPS }, keepCase, checkAddrs),
	durationKey(sectionImapd, "login_timeout", func(c *Config) *time.Duration { return &c.Imapd.LoginTimeout }),
	durationKey(sectionImapd, "idle_timeout", func(c *Config) *time.Duration { return &c.Imapd.IdleTimeout }),
	countKey(sectionImapd, "max_connections", func(c *Config) *int64 { return &c.Imapd.MaxConnections }),
	countKey(sectionImapd, "max_connections_per_client", func(c *Config) *int64 { return &c.Imapd.MaxConnectionsPerClient }),
	countKey(sectionImapd, "max_errors", func(c *Config) *int64 { return &c.Imapd.MaxErrors }),
	sizeKey(sectionImapd, "append_limit", func(c *Config) *int64 { return &c.Imapd.AppendLimit }),
	countKey(sectionImapd, "max_auth_failures", func(c *Config) *int64 { return &c.Imapd.MaxAuthFailures }),
	boolKey(sectionImapd, "text_index_background", func(c *Config) *bool { return &c.Imapd.TextIndexBackground }),
}

var pop3dKeys = []key{
	listKey(sectionPop3d, "listen_pop3", func(c *Config) *[]string { return &c.Pop3d.ListenPOP3 }, keepCase, checkAddrs),
	listKey(sectionPop3d, "listen_pop3s", func(c *Config) *[]string { return &c.Pop3d.ListenPOP3S }, keepCase, checkAddrs),
	stringKey(sectionPop3d, "uidl_format", func(c *Config) *string { return &c.Pop3d.UIDLFormat }, oneOf("maildir", "dovecot")),
	durationKey(sectionPop3d, "idle_timeout", func(c *Config) *time.Duration { return &c.Pop3d.IdleTimeout }),
	countKey(sectionPop3d, "max_connections", func(c *Config) *int64 { return &c.Pop3d.MaxConnections }),
	countKey(sectionPop3d, "max_connections_per_client", func(c *Config) *int64 { return &c.Pop3d.MaxConnectionsPerClient }),
	stringKey(sectionPop3d, "expire", func(c *Config) *string { return &c.Pop3d.Expire }, checkExpire),
	durationKey(sectionPop3d, "login_delay", func(c *Config) *time.Duration { return &c.Pop3d.LoginDelay }),
}

var sendmailKeys = []key{
	listKey(sectionSendmail, "trusted_users", func(c *Config) *[]string { return &c.Sendmail.TrustedUsers }, keepCase, checkUserNames),
	stringKey(sectionSendmail, "origin", func(c *Config) *string { return &c.Sendmail.Origin }, checkOptionalDomain),
}

func keepCase(s string) string { return s }

func checkUserNames(list []string) error {
	for _, u := range list {
		if err := checkUserName(u); err != nil {
			return err
		}
	}
	return nil
}

func checkOptionalDomain(v string) error {
	if v == "" {
		return nil
	}
	return checkDomain(v)
}

func durationKey(section, name string, field func(*Config) *time.Duration) key {
	return key{
		section: section,
		name:    name,
		set: func(c *Config, v string) error {
			d, err := ParseDuration(v)
			if err != nil {
				return err
			}
			*field(c) = d
			return nil
		},
		get: func(c *Config) string { return FormatDuration(*field(c)) },
	}
}

var durationUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
}

// ParseDuration reads a duration as mailroom.conf writes it: a non-negative
// whole number followed by one unit, s, m, h or d ("30s", "10m", "5d"), or
// "0". Fractions and compound forms ("1h30m") are refused so that every value
// has one spelling, the one FormatDuration prints.
func ParseDuration(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	for _, u := range durationUnits {
		num, ok := strings.CutSuffix(v, u.suffix)
		if !ok {
			continue
		}
		n, err := parseCount(num)
		if err != nil || n > int64(1<<62)/int64(u.unit) {
			break
		}
		return time.Duration(n) * u.unit, nil
	}
	return 0, fmt.Errorf("bad duration %q (want a whole number with s, m, h or d, e.g. 30s, 5m, 5d)", v)
}

// FormatDuration prints d with the largest unit that divides it exactly;
// a duration below a second (never produced by ParseDuration) is rounded
// up to whole seconds rather than printed in a form the parser refuses.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	for _, u := range durationUnits {
		if d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10) + "s"
}

// checkAddrs accepts listen addresses as net.Listen takes them:
// "host:port", "[v6]:port" or ":port" (every address).
func checkAddrs(list []string) error {
	for _, a := range list {
		i := strings.LastIndexByte(a, ':')
		if i < 0 {
			return fmt.Errorf("bad listen address %q (want host:port)", a)
		}
		port, err := strconv.Atoi(a[i+1:])
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("bad port in listen address %q", a)
		}
		host := a[:i]
		if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") {
			return fmt.Errorf("bad listen address %q (unbalanced brackets)", a)
		}
	}
	return nil
}

// checkUserName accepts a login name or a numeric uid, as in /etc/passwd.
func checkUserName(v string) error {
	if v == "" {
		return errors.New("empty user name")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-", r)) {
			return fmt.Errorf("bad user name %q", v)
		}
	}
	return nil
}

// checkExpire accepts what RFC 2449 §6.7 lets CAPA EXPIRE say: NEVER, or a
// number of days.
func checkExpire(v string) error {
	if v == "never" {
		return nil
	}
	if _, err := parseCount(v); err != nil {
		return fmt.Errorf("bad expire %q (want never or a number of days)", v)
	}
	return nil
}

func checkOptionalAbsPath(v string) error {
	if v == "" {
		return nil
	}
	return checkAbsPath(v)
}

// checkRelayHost accepts "", "host", "host:port", "[host]" or "[host]:port"
// (brackets: no MX lookup, as in Postfix's relayhost).
func checkRelayHost(v string) error {
	if v == "" {
		return nil
	}
	if strings.ContainsAny(v, " \t/@,") {
		return fmt.Errorf("bad relay_host %q (want host, host:port or [host]:port)", v)
	}
	host := v
	if strings.HasPrefix(v, "[") {
		end := strings.IndexByte(v, ']')
		if end < 0 {
			return fmt.Errorf("bad relay_host %q (unbalanced brackets)", v)
		}
		host, v = v[1:end], v[end+1:]
		if v != "" && !strings.HasPrefix(v, ":") {
			return fmt.Errorf("bad relay_host: text after ]")
		}
	} else if i := strings.LastIndexByte(v, ':'); i >= 0 {
		host, v = v[:i], v[i:]
	} else {
		v = ""
	}
	if host == "" {
		return fmt.Errorf("bad relay_host: empty host")
	}
	if v != "" {
		port, err := strconv.Atoi(v[1:])
		if err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("bad port in relay_host")
		}
	}
	return nil
}

// checkNoBlank accepts any value without blanks (a user name for AUTH).
func checkNoBlank(v string) error {
	if strings.ContainsAny(v, " \t") {
		return fmt.Errorf("%q contains a blank", v)
	}
	return nil
}
