package admin

import (
	"fmt"
	"strconv"

	"mailroom/internal/account"
	"mailroom/internal/config"
)

// quotaRuleKey is the passwd-file extra field holding a user's quota rule,
// the name Dovecot's quota plugin reads (userdb_quota_rule).
const quotaRuleKey = "userdb_quota_rule"

// Dovecot's quota plugin (2.3, quota_limit_parse) reads storage=N as
// kilobytes when N has no unit, while mailroom.conf reads a bare number as
// bytes. "user add --quota" takes mailroom.conf's syntax, and the rule is
// always written with an explicit unit (B, k, M, G; Dovecot accepts b, k,
// M, G, T in either case), so that Dovecot and mailroom read one number.
var dovecotUnits = []struct {
	suffix string
	mult   int64
}{
	{"G", 1 << 30},
	{"M", 1 << 20},
	{"k", 1 << 10},
}

// storageRule turns a --quota SIZE (config.ParseSize syntax) into the
// userdb_quota_rule value "*:storage=<N><unit>", and checks that
// internal/account reads back the same number of bytes.
func storageRule(size string) (string, error) {
	n, err := config.ParseSize(size)
	if err != nil {
		return "", fmt.Errorf("bad --quota: %w", err)
	}
	rule := "*:storage=" + dovecotSize(n)
	u := account.User{Extra: map[string]string{quotaRuleKey: rule}}
	if q, ok := u.Quota(); !ok || q.Bytes != n {
		return "", fmt.Errorf("--quota %s: rule %q reads back as %d bytes, want %d", size, rule, q.Bytes, n)
	}
	return rule, nil
}

// dovecotSize writes n bytes with the largest unit that divides it
// exactly, else as bytes with the "B" unit (never a bare number, which
// Dovecot would take as kilobytes).
func dovecotSize(n int64) string {
	if n > 0 {
		for _, u := range dovecotUnits {
			if n%u.mult == 0 {
				return strconv.FormatInt(n/u.mult, 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
