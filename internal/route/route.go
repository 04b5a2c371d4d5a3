// Package route decides where mail for one address goes: into a local
// Maildir, to another host, to a command or file named by an alias, or
// nowhere (unknown or refused). Resolve is a pure function of the
// configuration, the user table and the alias table, all loaded
// beforehand, so deliver and smtpd (RCPT checks) share one decision and
// "deliver --explain ADDRESS" can show every step of it.
//
// The rules, in order (Postfix-like; differences are marked):
//
//  1. The address splits at its last '@'. No '@', an empty part, a control
//     character anywhere (CR LF would reach an SMTP command) or a '/', '\'
//     or blank in the domain is refused. One trailing '.' of the domain is
//     dropped; the domain is compared case-insensitively (RFC 5321 §2.4).
//  2. A domain not in `domains` is remote: the target keeps the local part
//     exactly as written, since only the destination host may interpret
//     its case (RFC 5321 §2.4). Aliases are never applied to it.
//  3. For a hosted domain the local part is lower-cased (mailroom's user
//     names are case-insensitive, Dovecot's %Lu). A local part that is
//     empty, contains '/', NUL or another control character, contains ".."
//     or starts with '.' is refused: local parts become directory names.
//  4. Alias for the exact address "local@domain", else for the bare name
//     "local" (a bare-name alias applies in every hosted domain). Its
//     targets are resolved recursively from rule 1; a bare-name target is
//     qualified with the domain being expanded. A target naming the alias
//     itself ("a: a, b") is the mailbox of that user, not expanded again
//     (Postfix behaviour); "\name" also goes straight to the mailbox.
//  5. If the local part contains a recipient_delimiter character, the part
//     before the first one ("user" of "user+tag") is tried as an alias.
//     Extensions are not propagated through aliases (Postfix's default
//     propagate_unmatched_extensions leaves aliases out).
//  6. A user named by the exact address gets the mail.
//  7. Else the user named by the address without its extension, with
//     Folder set to the extension when extension_folder = yes (in the
//     case the sender wrote, since Maildir++ folder names are
//     case-sensitive). Rule 6 before 7 differs from a literal reading of
//     "strip, then look up": a user literally called "a+b" wins over "a".
//  8. Else the catch-all alias "@domain". Unlike Postfix's
//     virtual_alias_maps, the catch-all applies only after every alias and
//     user has missed, so it never steals an existing user's mail.
//  9. Else the address is unknown.
//
// Pipe and file targets are Kind refused unless allow_pipe_targets /
// allow_file_targets. An address met again while it is being expanded
// (a -> b -> a) is a loop, and nesting deeper than MaxDepth is refused;
// both yield a refused target with a reason and the rest of the expansion
// goes on. At most MaxExpansions addresses are resolved per call, as
// Postfix's virtual_alias_expansion_limit, so a fan-out cannot explode.
// Identical final targets are reported once. An alias whose targets are
// all in empty :include: files yields a refused target rather than
// silently dropping the mail.
package route

import (
	"strings"

	"mailroom/internal/alias"
	"mailroom/internal/config"
)

// Limits on one Resolve call.
const (
	MaxDepth      = 20   // alias nesting
	MaxExpansions = 1000 // addresses resolved
)

// Users is the user table: the Maildir++ root of an address, if it is a
// user. *account.DB implements it.
type Users interface {
	Mailbox(address string) (root string, ok bool)
}

// Kind is what happens to mail for a target.
type Kind string

const (
	Mailbox Kind = "mailbox" // delivered into Root (and Folder)
	Remote  Kind = "remote"  // sent to the domain's MX
	Pipe    Kind = "pipe"    // fed to Command
	File    Kind = "file"    // appended to File
	Unknown Kind = "unknown" // no such user: 550 5.1.1 / exit 67
	Refused Kind = "refused" // not allowed or broken (loop, disabled pipe): 550 5.7.1 / exit 77
)

// Target is one final destination.
type Target struct {
	Kind    Kind   `json:"kind"`
	Address string `json:"address"`          // final address
	Root    string `json:"root,omitempty"`   // Maildir++ root, mailbox only
	Folder  string `json:"folder,omitempty"` // from the sub-address when extension_folder = yes
	Command string `json:"command,omitempty"`
	File    string `json:"file,omitempty"`
	Reason  string `json:"reason,omitempty"` // for unknown and refused, human-readable
}

// Rule names used in Step.Rule.
const (
	RuleInvalid    = "invalid address"
	RuleRemote     = "domain not hosted"
	RuleAlias      = "alias"
	RuleSubAddress = "sub-address"
	RuleUser       = "user"
	RuleSelf       = "alias names itself"
	RuleVerbatim   = "verbatim"
	RuleCatchAll   = "catch-all"
	RuleUnknown    = "unknown"
	RuleLoop       = "loop"
	RuleDepth      = "too deep"
	RuleLimit      = "expansion limit"
	RulePipe       = "pipe"
	RuleFile       = "file"
	RuleEmpty      = "empty alias"
)

// Step is one decision on the way, for --explain.
type Step struct {
	Address string `json:"address"`
	Rule    string `json:"rule"`             // one of the Rule* names
	Detail  string `json:"detail,omitempty"` // e.g. "/etc/mailroom/aliases:12"
	Depth   int    `json:"depth"`            // alias nesting level, 0 for the address asked about
}

// Result is the whole decision for one address.
type Result struct {
	Address string   `json:"address"`
	Targets []Target `json:"targets"`
	Steps   []Step   `json:"steps"`
}

// Router holds what Resolve needs. It is read-only after New, so one
// Router serves concurrent callers.
type Router struct {
	domains    map[string]bool
	delimiters string
	extFolder  bool
	allowPipe  bool
	allowFile  bool
	users      Users
	aliases    *alias.Table
}

// New returns a Router over c's domains and delivery switches, the user
// table and the alias table. users and aliases may be nil (no users, no
// aliases). Later changes to c do not affect the Router.
func New(c *config.Config, users Users, aliases *alias.Table) *Router {
	r := &Router{
		domains:    make(map[string]bool, len(c.Domains)),
		delimiters: c.RecipientDelimiter,
		extFolder:  c.Deliver.ExtensionFolder,
		allowPipe:  c.Deliver.AllowPipeTargets,
		allowFile:  c.Deliver.AllowFileTargets,
		users:      users,
		aliases:    aliases,
	}
	for _, d := range c.Domains {
		r.domains[strings.ToLower(d)] = true
	}
	return r
}
