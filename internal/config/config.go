// Package config reads mailroom.conf, the one configuration file every
// mailroom program shares (mailroom.conf(5) documents each key).
//
// Format: UTF-8 lines of "key = value"; '#' starts a comment line; blank
// lines are ignored; "[name]" starts a section. Keys before any section are
// common to all programs; [deliver], [smtpd], [imapd], [pop3d], [sendmail]
// hold one program's keys. An unknown key, a bad value or a repeated key is an
// error naming file:line. Flags override file values.
//
// Details of the contract:
//
//   - A comment is a whole line whose first non-blank character is '#'; a
//     '#' after a value is part of the value (as in Postfix's main.cf).
//   - Spaces around the key and the value are ignored; an empty value is
//     allowed where the type permits it (an empty list, an empty
//     recipient_delimiter).
//   - A section may appear more than once; a key may be set only once per
//     section, and only in the section it belongs to.
//   - [smtpd], [imapd], [pop3d] and [sendmail] are reserved for the programs
//     that will read them: the section names are accepted, but they have no
//     keys yet, so any key inside them is an error.
//   - Value types: string; list (items separated by commas and/or spaces);
//     bool (yes, no, true, false; printed as yes/no); size (bytes, with an
//     optional k, M or G suffix, powers of 1024; see ParseSize); count (a
//     plain non-negative integer).
//
// Load does not call Check: a program overlays its flags first, then calls
// Check on the result, so that flags are held to the same rules as the file.
package config

// Default path of the configuration file.
const DefaultPath = "/etc/mailroom/mailroom.conf"

// Config is the whole file, typed. Zero values are never used directly:
// Default() fills every field, and Load overlays the file on it.
type Config struct {
	// Common (top of file, no section).
	Hostname           string   // hostname: used in Maildir names, Received lines, banners; default os.Hostname()
	Domains            []string // domains: hosted domains (lower-case); mail for them is local
	MailRoot           string   // mail_root: Maildirs live in <mail_root>/<domain>/<localpart>/
	PasswdFile         string   // passwd_file: users, Dovecot passwd-file syntax
	AliasesFile        string   // aliases_file: aliases(5) plus user@domain forms
	SpoolDir           string   // spool_dir: the queue shared by smtpd, sendmail, deliver
	RecipientDelimiter string   // recipient_delimiter: sub-address separators, e.g. "+"; "" disables
	LogFormat          string   // log_format: "logfmt" (stderr) or "syslog"
	LogLevel           string   // log_level: debug, info, warn, error

	Deliver DeliverConfig
}

// DeliverConfig is the [deliver] section.
type DeliverConfig struct {
	Quota            int64  // quota: default per-user storage quota in bytes (0 = none); suffixes k M G
	QuotaMessages    int64  // quota_messages: default per-user message-count quota (0 = none)
	OverQuota        string // over_quota: "tempfail" (exit 75, retried) or "bounce" (permanent)
	AllowPipeTargets bool   // allow_pipe_targets: aliases may name "|command"
	AllowFileTargets bool   // allow_file_targets: aliases may name "/path/file"
	ExtensionFolder  bool   // extension_folder: user+ext delivers into folder .ext when it exists
	MaxMessageSize   int64  // max_message_size: bigger messages are refused (65 / 5.3.4); 0 = no limit
}
