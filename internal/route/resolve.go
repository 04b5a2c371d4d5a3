package route

import (
	"fmt"
	"slices"
	"strings"

	"mailroom/internal/alias"
)

// Resolve returns where mail for address goes and why. It performs no
// I/O and always terminates (see MaxDepth, MaxExpansions).
func (r *Router) Resolve(address string) Result {
	x := &expansion{
		r:    r,
		res:  Result{Address: address, Targets: []Target{}, Steps: []Step{}},
		seen: map[Target]bool{},
	}
	x.resolve(address, 0, nil)
	return x.res
}

// expansion is the state of one Resolve call.
type expansion struct {
	r        *Router
	res      Result
	seen     map[Target]bool // final targets already reported
	resolved int             // addresses resolved so far
	stopped  bool            // MaxExpansions reached: do nothing more
}

func (x *expansion) step(address, rule, detail string, depth int) {
	x.res.Steps = append(x.res.Steps, Step{Address: address, Rule: rule, Detail: detail, Depth: depth})
}

func (x *expansion) add(t Target) {
	if x.seen[t] {
		return
	}
	x.seen[t] = true
	x.res.Targets = append(x.res.Targets, t)
}

func (x *expansion) refuse(address, rule, reason string, depth int) {
	x.step(address, rule, reason, depth)
	x.add(Target{Kind: Refused, Address: address, Reason: reason})
}

// resolve applies the package rules to address. chain holds the hosted
// addresses being expanded above this one, for loop detection.
func (x *expansion) resolve(address string, depth int, chain []string) {
	if !x.budget(address, depth) {
		return
	}
	a, ok := x.parse(address, depth)
	if !ok {
		return
	}
	if slices.Contains(chain, a.full) {
		x.refuse(a.full, RuleLoop, "alias loop: "+strings.Join(append(slices.Clip(chain), a.full), " -> "), depth)
		return
	}
	chain = append(chain[:len(chain):len(chain)], a.full)
	if x.expandAlias(a.local, a.domain, a, depth, chain) {
		return
	}
	base, ext, hasExt := x.r.splitExtension(a)
	if hasExt {
		x.step(a.full, RuleSubAddress, fmt.Sprintf("user %q, extension %q", base, ext), depth)
		baseFull := base + "@" + a.domain
		if !slices.Contains(chain, baseFull) {
			chain = append(chain[:len(chain):len(chain)], baseFull)
		}
		if x.expandAlias(base, a.domain, a, depth, chain) {
			return
		}
	}
	if x.deliverUser(a.full, "", depth) {
		return
	}
	if hasExt && x.deliverUser(base+"@"+a.domain, x.folder(ext, depth, a.full), depth) {
		return
	}
	if targets, src, ok := x.r.aliases.Lookup("@" + a.domain); ok {
		x.step(a.full, RuleCatchAll, src.String(), depth)
		x.expandTargets(targets, a.full, "", a, depth, chain)
		return
	}
	x.step(a.full, RuleUnknown, "no alias, no user, no catch-all", depth)
	x.add(Target{Kind: Unknown, Address: a.full, Reason: "no such user or alias: " + a.full})
}

// budget enforces MaxExpansions and MaxDepth.
func (x *expansion) budget(address string, depth int) bool {
	if x.stopped {
		return false
	}
	x.resolved++
	if x.resolved > MaxExpansions {
		x.stopped = true
		x.refuse(x.res.Address, RuleLimit, fmt.Sprintf("alias expansion of more than %d addresses", MaxExpansions), depth)
		return false
	}
	if depth > MaxDepth {
		x.refuse(address, RuleDepth, fmt.Sprintf("aliases nested deeper than %d", MaxDepth), depth)
		return false
	}
	return true
}

// addr is an address of a hosted domain, split and normalised.
type addr struct {
	local, domain, full string
	original            string // local part as written, for the extension's case
}

// parse applies rules 1-3: it reports remote and invalid addresses itself
// and returns ok only for a valid address of a hosted domain.
func (x *expansion) parse(address string, depth int) (addr, bool) {
	local, domain, err := split(address)
	if err != nil {
		x.refuse(address, RuleInvalid, err.Error(), depth)
		return addr{}, false
	}
	// A fully-qualified "example.org." is example.org, as Postfix's
	// resolver has it; otherwise it would be sent to ourselves as remote.
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if !x.r.domains[domain] {
		remote := local + "@" + domain
		x.step(remote, RuleRemote, "not in domains", depth)
		x.add(Target{Kind: Remote, Address: remote})
		return addr{}, false
	}
	lower := strings.ToLower(local)
	if err := checkLocal(lower); err != nil {
		x.refuse(address, RuleInvalid, err.Error(), depth)
		return addr{}, false
	}
	return addr{local: lower, domain: domain, full: lower + "@" + domain, original: local}, true
}

// split divides an address at its last '@' (a quoted local part may hold
// another, RFC 5321 §4.1.2). CR, LF and other control characters are
// refused everywhere: the address may end up in an SMTP command.
func split(address string) (local, domain string, err error) {
	if i := strings.IndexFunc(address, isControl); i >= 0 {
		return "", "", fmt.Errorf("address contains control character %q", address[i])
	}
	at := strings.LastIndexByte(address, '@')
	switch {
	case at < 0:
		return "", "", fmt.Errorf("address %q has no @domain", address)
	case at == 0:
		return "", "", fmt.Errorf("address %q has an empty local part", address)
	case at == len(address)-1, address[at+1:] == ".":
		return "", "", fmt.Errorf("address %q has an empty domain", address)
	}
	domain = address[at+1:]
	if strings.ContainsAny(domain, " /\\") {
		return "", "", fmt.Errorf("domain %q contains a blank, '/' or '\\'", domain)
	}
	return address[:at], domain, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkLocal refuses local parts that could escape mail_root once used as
// a directory name.
func checkLocal(local string) error {
	switch {
	case strings.ContainsRune(local, '/'):
		return fmt.Errorf("local part %q contains '/'", local)
	case strings.Contains(local, ".."):
		return fmt.Errorf("local part %q contains \"..\"", local)
	case strings.HasPrefix(local, "."):
		return fmt.Errorf("local part %q starts with '.'", local)
	}
	return nil
}

// splitExtension splits a's local part at the first delimiter character:
// base from the lower-cased local part, the extension as written.
func (r *Router) splitExtension(a addr) (base, ext string, ok bool) {
	if r.delimiters == "" {
		return "", "", false
	}
	i := strings.IndexAny(a.local, r.delimiters)
	j := strings.IndexAny(a.original, r.delimiters)
	if i <= 0 || j < 0 {
		// No delimiter, or nothing before it: "+tag" has no user to strip to.
		return "", "", false
	}
	return a.local[:i], a.original[j+1:], true
}

// folder returns the Maildir++ folder for an extension, or "" when
// extension_folder is off or the extension cannot name a folder safely.
func (x *expansion) folder(ext string, depth int, address string) string {
	if !x.r.extFolder || ext == "" {
		return ""
	}
	if strings.HasPrefix(ext, ".") || strings.HasSuffix(ext, ".") || strings.Contains(ext, "..") {
		x.step(address, RuleSubAddress, fmt.Sprintf("extension %q is not a usable folder name; INBOX", ext), depth)
		return ""
	}
	return ext
}

// expandAlias applies the alias for local@domain or, failing that, the
// bare name local. It reports whether there was one.
func (x *expansion) expandAlias(local, domain string, a addr, depth int, chain []string) bool {
	full := local + "@" + domain
	targets, src, ok := x.r.aliases.Lookup(full)
	detail := src.String()
	if !ok {
		if targets, src, ok = x.r.aliases.Lookup(local); !ok {
			return false
		}
		detail = src.String() + " (bare name " + local + ")"
	}
	x.step(full, RuleAlias, detail, depth)
	x.expandTargets(targets, full, full, a, depth, chain)
	return true
}

// expandTargets resolves the targets of the alias named name one level
// deeper. self is the alias's own address ("" for a catch-all): a target
// naming it is the user's mailbox. orig is the address being resolved
// (with its extension); bare names are qualified with its domain.
func (x *expansion) expandTargets(targets []alias.Target, name, self string, orig addr, depth int, chain []string) {
	if len(targets) == 0 {
		x.refuse(name, RuleEmpty, "alias has no targets (an empty :include: file?)", depth)
		return
	}
	for _, t := range targets {
		from := t.From.String()
		switch t.Kind {
		case alias.Pipe:
			x.pipe(name, t.Value, from, depth+1)
		case alias.File:
			x.file(name, t.Value, from, depth+1)
		default:
			address := t.Value
			if !strings.Contains(address, "@") {
				address += "@" + orig.domain
			}
			switch {
			case t.Verbatim:
				x.mailboxOnly(address, orig, RuleVerbatim, from, depth+1)
			case self != "" && strings.EqualFold(address, self):
				x.mailboxOnly(address, orig, RuleSelf, from, depth+1)
			default:
				x.resolve(address, depth+1, chain)
			}
		}
	}
}

// mailboxOnly delivers to the user named by address without alias
// expansion or catch-all ("a: a, b" and "\a"). When that user is the one
// orig's extension was stripped from, the extension still picks the folder.
func (x *expansion) mailboxOnly(address string, orig addr, rule, from string, depth int) {
	if !x.budget(address, depth) {
		return
	}
	a, ok := x.parse(address, depth)
	if !ok {
		return
	}
	x.step(a.full, rule, from, depth)
	folder := ""
	if base, ext, hasExt := x.r.splitExtension(orig); hasExt && a.local == base && a.domain == orig.domain {
		folder = x.folder(ext, depth, a.full)
	}
	if x.deliverUser(a.full, folder, depth) {
		return
	}
	if base, ext, hasExt := x.r.splitExtension(a); hasExt &&
		x.deliverUser(base+"@"+a.domain, x.folder(ext, depth, a.full), depth) {
		return
	}
	x.step(a.full, RuleUnknown, "not a user", depth)
	x.add(Target{Kind: Unknown, Address: a.full, Reason: "no such user: " + a.full})
}

func (x *expansion) deliverUser(full, folder string, depth int) bool {
	if x.r.users == nil {
		return false
	}
	root, ok := x.r.users.Mailbox(full)
	if !ok {
		return false
	}
	x.step(full, RuleUser, root, depth)
	x.add(Target{Kind: Mailbox, Address: full, Root: root, Folder: folder})
	return true
}

func (x *expansion) pipe(address, command, from string, depth int) {
	x.step(address, RulePipe, "|"+command+" from "+from, depth)
	if !x.r.allowPipe {
		x.add(Target{Kind: Refused, Address: address, Command: command,
			Reason: "pipe targets are disabled (allow_pipe_targets = no)"})
		return
	}
	x.add(Target{Kind: Pipe, Address: address, Command: command})
}

func (x *expansion) file(address, path, from string, depth int) {
	x.step(address, RuleFile, path+" from "+from, depth)
	if !x.r.allowFile {
		x.add(Target{Kind: Refused, Address: address, File: path,
			Reason: "file targets are disabled (allow_file_targets = no)"})
		return
	}
	x.add(Target{Kind: File, Address: address, File: path})
}
