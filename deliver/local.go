package deliver

// The local write path both modes share: routing a recipient to its
// mailboxes, the trace fields, loop detection, quotas, and one file per
// recipient hard-linked into every mailbox it expands to.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"mailroom/internal/account"
	"mailroom/internal/alias"
	"mailroom/internal/config"
	"mailroom/internal/route"
	"mailroom/maildir"
)

// tables are the loaded users and aliases and the router over them. They
// are read-only once loaded, so one value serves concurrent deliveries; the
// queue daemon replaces it as a whole on SIGHUP.
type tables struct {
	cfg    *config.Config
	users  *account.DB
	router *route.Router
}

// loadTables reads the passwd-file and the aliases file (alias.Load takes
// a missing aliases file for an empty one).
func loadTables(cfg *config.Config) (*tables, error) {
	users, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if err != nil {
		return nil, err
	}
	aliases, err := alias.Load(cfg.AliasesFile)
	if err != nil {
		return nil, err
	}
	return &tables{cfg: cfg, users: users, router: route.New(cfg, users, aliases)}, nil
}

// group is the delivery for one envelope recipient: one file, carrying
// that recipient's Delivered-To, hard-linked into every mailbox the
// recipient expands to.
type group struct {
	rcpt    string           // as given
	prefix  []byte           // trace fields prepended to the message
	targets []maildir.Target // deduplicated
	mailbox []string         // the account address of each target
	folder  []string         // the folder asked for, before the fallback to INBOX
	// textIndex: gather the delivered file's words for imapd's text
	// index ([deliver] text_index; textindex.go).
	textIndex bool
}

// plan routes one recipient and decides, before anything is written,
// whether it can be delivered. Mailbox targets go into the group; every
// other target is handed to other, in route order, and a failed outcome
// from it refuses the recipient whole, so that nothing is left behind.
// folder, if not "", overrides the route's folder (MDA mode's -m).
func (t *tables) plan(rcpt string, env envelope, sender, folder string, other func(route.Target) outcome) (*group, outcome) {
	if isLoop(env, rcpt) {
		// Postfix bounces such mail with 5.4.6; 65 is permanent for Postfix,
		// qmail and Exim alike.
		return nil, permFail(ExitDataErr, "5.4.6", "<%s>: mail forwarding loop (Delivered-To already names it)", rcpt)
	}
	res := t.router.Resolve(rcpt)
	if len(res.Targets) == 0 {
		return nil, permFail(ExitNoUser, "5.1.1", "<%s>: user unknown", rcpt)
	}
	g := &group{rcpt: rcpt, prefix: tracePrefix(env, sender, rcpt), textIndex: t.cfg.Deliver.TextIndex}
	seen := map[string]bool{}
	for _, tg := range res.Targets {
		if tg.Kind != route.Mailbox {
			if o := other(tg); o.failed() {
				return nil, o
			}
			continue
		}
		requested := tg.Folder
		if folder != "" {
			requested = folder
		}
		// Deduplicate on the folder the message will really go to: "a" and
		// "a+missing" both end in a's INBOX, and the engine must not be
		// given one new/ twice (the second link would clash with the
		// first).
		real := existingFolder(tg.Root, requested)
		key := filepath.Clean(tg.Root) + "\x00" + real
		if seen[key] {
			continue
		}
		seen[key] = true
		g.targets = append(g.targets, maildir.Target{Root: tg.Root, Folder: real, Quota: t.quota(tg.Address)})
		g.mailbox = append(g.mailbox, tg.Address)
		g.folder = append(g.folder, requested)
	}
	return g, delivered
}

// unusableTarget is the outcome for an unknown or refused target, and for
// any kind this version does not know.
func unusableTarget(rcpt string, t route.Target) outcome {
	switch t.Kind {
	case route.Unknown:
		return permFail(ExitNoUser, "5.1.1", "<%s>: user unknown", rcpt)
	case route.Refused:
		return permFail(ExitNoPerm, "5.7.1", "<%s>: delivery refused: %s", rcpt, t.Reason)
	}
	return permFail(ExitNoPerm, "5.3.0", "<%s>: unusable route (%s)", rcpt, t.Kind)
}

// isLoop reports whether the message already carries a Delivered-To naming
// rcpt (compared case-insensitively, as Postfix does), not counting the one
// the MTA prepended for this very delivery.
func isLoop(env envelope, rcpt string) bool {
	seen := env.deliveredTo
	if env.mtaDeliveredTo != "" {
		seen = seen[1:] // the trace block's is the first Delivered-To
	}
	want := normalizeAddr(rcpt)
	for _, a := range seen {
		if a == want {
			return true
		}
	}
	return false
}

// tracePrefix is what deliver prepends: Return-Path (RFC 5321 §4.4) unless
// the message already opens with one, and Delivered-To unless the MTA's
// trace block already has it. Line ends follow the message's own.
func tracePrefix(env envelope, sender, rcpt string) []byte {
	var b bytes.Buffer
	if !env.returnPathFirst {
		fmt.Fprintf(&b, "Return-Path: <%s>%s", sender, env.eol)
	}
	if env.mtaDeliveredTo == "" {
		fmt.Fprintf(&b, "Delivered-To: %s%s", strings.ToLower(rcpt), env.eol)
	}
	return b.Bytes()
}

// quota is the account's own quota, else the [deliver] defaults.
func (t *tables) quota(address string) maildir.Quota {
	q := maildir.Quota{Bytes: t.cfg.Deliver.Quota, Messages: t.cfg.Deliver.QuotaMessages}
	if u, ok := t.users.Lookup(address); ok {
		if uq, ok := u.Quota(); ok {
			q = maildir.Quota{Bytes: uq.Bytes, Messages: uq.Messages}
		}
	}
	return q
}

// groupResult is what writing one recipient's file did.
type groupResult struct {
	results  []maildir.Result // one per target when err is nil
	outcomes []outcome        // classified results, one per target
	final    outcome          // the recipient's outcome: the worst of them
	err      error            // a failure that hit every target
}

// writeGroup writes one recipient's file (its trace prefix, then body)
// and links it into its mailboxes. g is the guard body reads through; its
// verdict (NUL, size) beats the read error it caused. Once the file is
// committed, its words go to the mailboxes' text index (when the group
// asks for it); a failure there is logged on log, never returned.
func writeGroup(d *maildir.Deliverer, grp *group, body io.Reader, g *guard, overQuota string, log *slog.Logger) groupResult {
	results, err := d.Deliver(io.MultiReader(bytes.NewReader(grp.prefix), body), grp.targets)
	if g.err != nil {
		err = g.err
	}
	if err == nil && len(results) != len(grp.targets) {
		err = fmt.Errorf("engine returned %d results for %d targets", len(results), len(grp.targets))
		return groupResult{final: tempFail("4.3.0", "temporary local problem"), err: err}
	}
	if err != nil {
		return groupResult{final: classify(err, overQuota), err: err}
	}
	if grp.textIndex {
		indexDelivered(results, log)
	}
	r := groupResult{results: results, final: delivered}
	for _, res := range results {
		o := classify(res.Err, overQuota)
		r.outcomes = append(r.outcomes, o)
		r.final = worse(r.final, o)
	}
	return r
}
