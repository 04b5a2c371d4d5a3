// Package accounttest helps the tests of packages that create users
// through internal/account. It is imported by _test.go files only.
package accounttest

import (
	"testing"

	"mailroom/internal/account/internal/hashcost"
)

// CheapHashes makes the hashes account creates cheap (bcrypt cost 4,
// Argon2id m=1 MiB, t=1) until tb's test ends, so that -race runs stay
// short. The hashes keep their schemes and encodings, and verification
// reads the costs from each hash, so everything but the work factor is
// exercised as in production; account's own tests check the production
// costs. A test calling it must not use t.Parallel: the costs are global.
func CheapHashes(tb testing.TB) {
	tb.Helper()
	old := hashcost.Current
	hashcost.Current = hashcost.Cheap
	tb.Cleanup(func() { hashcost.Current = old })
}
