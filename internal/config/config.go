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
//   - Value types: string; list (items separated by commas and/or spaces);
//     bool (yes, no, true, false; printed as yes/no); size (bytes, with an
//     optional k, M or G suffix, powers of 1024; see ParseSize); count (a
//     plain non-negative integer); duration (a number with a unit: s, m, h
//     or d, e.g. "90s", "5m", "5d"; "0" alone is zero; see ParseDuration).
//
// Load does not call Check: a program overlays its flags first, then calls
// Check on the result, so that flags are held to the same rules as the file.
package config

import "time"

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
	TLSCert            string   // tls_cert: PEM certificate chain for every daemon's TLS; "" = no TLS
	TLSKey             string   // tls_key: PEM private key of tls_cert
	// plaintext_auth_on_loopback: password logins without TLS are allowed
	// from 127.0.0.0/8 and ::1 (make run's playground); never elsewhere.
	PlaintextAuthOnLoopback bool

	Deliver  DeliverConfig
	Smtpd    SmtpdConfig
	Imapd    ImapdConfig
	Pop3d    Pop3dConfig
	Sendmail SendmailConfig
}

// SendmailConfig is the [sendmail] section.
type SendmailConfig struct {
	// trusted_users: login names (or uids) that may set any envelope sender
	// with -f/-r; everyone else sends as themselves.
	TrustedUsers []string
	// origin: the domain that qualifies bare local names (root, www-data)
	// in sendmail's sender and recipients; "" = /etc/mailname, else hostname.
	Origin string
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
	TextIndex        bool   // text_index: gather each delivered message's words for imapd's SEARCH BODY/TEXT index

	// The queue daemon (deliver --queue).
	QueueConcurrency int64         // queue_concurrency: messages delivered at once
	MinBackoff       time.Duration // min_backoff: first retry delay after a temporary failure
	MaxBackoff       time.Duration // max_backoff: the retry delay doubles up to this
	QueueLifetime    time.Duration // queue_lifetime: a message still undelivered after this is bounced
	DelayWarning     time.Duration // delay_warning: warn the sender after this delay (0 = never)

	// Remote delivery.
	RelayHost              string // relay_host: "host:port", or "[host]:port" for no MX lookup; "" = deliver to each domain's MX
	RelayUser              string // relay_user: AUTH user at the relay host ("" = no AUTH)
	RelayPasswordFile      string // relay_password_file: file holding the relay password (first line)
	TransportFile          string // transport_file: "domain nexthop" lines, as Postfix's transport_maps
	TLSSecurityLevel       string // tls_security_level: none, may (opportunistic), encrypt, verify
	DestinationConcurrency int64  // destination_concurrency: connections at once per destination
}

// SmtpdConfig is the [smtpd] section.
type SmtpdConfig struct {
	User                    string        // user: the account smtpd runs as once started as root
	ListenSMTP              []string      // listen_smtp: MX addresses (port 25); empty = none
	ListenSubmission        []string      // listen_submission: STARTTLS + AUTH (587)
	ListenSubmissions       []string      // listen_submissions: implicit TLS + AUTH (465)
	MaxMessageSize          int64         // max_message_size: SIZE limit; bigger is 552 5.3.4
	MaxRecipients           int64         // max_recipients: per message; more get 452 4.5.3
	MaxLineLength           int64         // max_line_length: longest command or data line accepted
	CommandTimeout          time.Duration // command_timeout: idle time allowed between commands
	DataTimeout             time.Duration // data_timeout: idle time allowed inside DATA/BDAT
	MaxConnections          int64         // max_connections: in total, per listener set
	MaxConnectionsPerClient int64         // max_connections_per_client: per client IP address
	MaxErrors               int64         // max_errors: error replies before 421 and disconnect
	AuthFailuresBeforeDelay int64         // auth_failures_before_delay: failed AUTHs before each reply is delayed, growing
}

// ImapdConfig is the [imapd] section.
type ImapdConfig struct {
	ListenIMAP              []string      // listen_imap: STARTTLS listener (143); empty = none
	ListenIMAPS             []string      // listen_imaps: implicit TLS (993)
	LoginTimeout            time.Duration // login_timeout: silence allowed before login
	IdleTimeout             time.Duration // idle_timeout: after login; RFC 9051 §5.4 asks for at least 30 minutes
	MaxConnections          int64         // max_connections: in total
	MaxConnectionsPerClient int64         // max_connections_per_client: per client IP address
	MaxErrors               int64         // max_errors: BAD replies in a row before BYE
	AppendLimit             int64         // append_limit: largest APPEND (APPENDLIMIT)
	MaxAuthFailures         int64         // max_auth_failures: failed logins before the connection is closed
	TextIndexBackground     bool          // text_index_background: build the SEARCH BODY/TEXT index after SELECT
}

// Pop3dConfig is the [pop3d] section.
type Pop3dConfig struct {
	ListenPOP3              []string      // listen_pop3: STLS listener (110); empty = none
	ListenPOP3S             []string      // listen_pop3s: implicit TLS (995)
	UIDLFormat              string        // uidl_format: "maildir" (base name) or "dovecot" (%08Xu%08Xv)
	IdleTimeout             time.Duration // idle_timeout: RFC 1939 §3 asks for at least 10 minutes
	MaxConnections          int64         // max_connections: in total
	MaxConnectionsPerClient int64         // max_connections_per_client: per client IP address
	Expire                  string        // expire: advertised in CAPA EXPIRE: "never" or a number of days
	LoginDelay              time.Duration // login_delay: advertised in CAPA LOGIN-DELAY (0 = not advertised); whole seconds
}
