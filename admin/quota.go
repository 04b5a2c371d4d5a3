package admin

import (
	"fmt"

	"mailroom/internal/account"
	"mailroom/internal/config"
)

// quotaRuleKey is the passwd-file extra field holding a user's quota rule,
// the name Dovecot's quota plugin reads (userdb_quota_rule).
const quotaRuleKey = "userdb_quota_rule"

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

// dovecotSize writes n bytes as mailroom.conf would (config.FormatSize:
// the largest unit that divides n exactly), adding the "B" unit where that
// leaves a bare number. Dovecot's quota plugin (2.3, quota_limit_parse)
// reads storage=N as kilobytes when N has no unit, while mailroom.conf
// reads a bare number as bytes; with a unit always written (B, k, M, G;
// Dovecot accepts b, k, M, G, T in either case), both read one number.
func dovecotSize(n int64) string {
	s := config.FormatSize(n)
	if last := s[len(s)-1]; last >= '0' && last <= '9' {
		return s + "B"
	}
	return s
}
