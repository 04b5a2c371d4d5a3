package account

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Quota is a user's limit; zero in a field means no limit of that kind.
type Quota struct {
	Bytes    int64
	Messages int64
}

// Quota returns the user's quota from Dovecot's userdb extra fields
// userdb_quota_rule, userdb_quota_rule2, ... Only rules for the mailbox "*"
// (the whole account) count; ok is false when there is none, meaning the
// configured default applies.
//
// Rule syntax (Dovecot quota plugin): "<mailbox>:<limit>[:<limit>...]" where
// a limit is storage=N (kilobytes unless a b/k/M/G/T suffix is given),
// bytes=N (bytes unless suffixed), messages=N, or a keyword such as
// "ignore" or "noenforcing", which carries no number.
func (u *User) Quota() (q Quota, ok bool) {
	q, ok, err := u.quota()
	if err != nil {
		// Load already refused such a user; a hand-built User with a bad
		// rule has no usable quota.
		return Quota{}, false
	}
	return q, ok
}

func (u *User) quota() (q Quota, ok bool, err error) {
	keys := make([]string, 0, 2)
	for k := range u.Extra {
		if isQuotaRuleKey(k) {
			keys = append(keys, k)
		}
	}
	// Dovecot applies quota_rule, then quota_rule2, quota_rule3, ...
	sort.Slice(keys, func(i, j int) bool { return quotaRuleIndex(keys[i]) < quotaRuleIndex(keys[j]) })
	for _, k := range keys {
		mailbox, limits, found := strings.Cut(u.Extra[k], ":")
		if !found {
			return Quota{}, false, fmt.Errorf("%s=%q: want <mailbox>:<limit>", k, u.Extra[k])
		}
		if mailbox != "*" {
			continue
		}
		if err := applyLimits(&q, limits); err != nil {
			return Quota{}, false, fmt.Errorf("%s=%q: %w", k, u.Extra[k], err)
		}
		ok = true
	}
	return q, ok, nil
}

const quotaRuleKey = "userdb_quota_rule"

func isQuotaRuleKey(k string) bool { return quotaRuleIndex(k) > 0 }

// quotaRuleIndex is 1 for userdb_quota_rule, n for userdb_quota_rule<n>
// (n >= 2), and 0 for any other key.
func quotaRuleIndex(k string) int {
	rest, found := strings.CutPrefix(k, quotaRuleKey)
	if !found {
		return 0
	}
	if rest == "" {
		return 1
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 2 || rest[0] == '0' {
		return 0
	}
	return n
}

func applyLimits(q *Quota, limits string) error {
	for _, l := range strings.Split(limits, ":") {
		name, val, hasVal := strings.Cut(l, "=")
		if !hasVal {
			continue // keywords: ignore, noenforcing, backend
		}
		var err error
		switch strings.ToLower(name) {
		case "storage":
			q.Bytes, err = parseSize(val, 1024)
		case "bytes":
			q.Bytes, err = parseSize(val, 1)
		case "messages":
			q.Messages, err = parseSize(val, 1)
		default:
			err = fmt.Errorf("unknown limit %q", name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var sizeSuffix = map[byte]int64{
	'b': 1, 'B': 1,
	'k': 1 << 10, 'K': 1 << 10,
	'm': 1 << 20, 'M': 1 << 20,
	'g': 1 << 30, 'G': 1 << 30,
	't': 1 << 40, 'T': 1 << 40,
}

// parseSize parses N with an optional b/k/M/G/T suffix (case-insensitive);
// without a suffix N is multiplied by unit.
func parseSize(s string, unit int64) (int64, error) {
	mult := unit
	if s != "" {
		if m, ok := sizeSuffix[s[len(s)-1]]; ok {
			mult, s = m, s[:len(s)-1]
		}
	}
	// Relative ("+100M") and percentage limits only make sense for
	// per-mailbox rules, which mailroom does not apply.
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || s[0] == '+' {
		return 0, fmt.Errorf("bad size %q", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q overflows", s)
	}
	return n * mult, nil
}
