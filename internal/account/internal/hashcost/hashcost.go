// Package hashcost holds the work factors package account uses for new
// password hashes. It lives apart from account, under account's internal/,
// so that only account and its test helper accounttest can reach it: the
// public API of account has no way to weaken a hash, and tests of other
// packages lower the costs through accounttest.CheapHashes alone.
package hashcost

// Costs are the work factors of a new hash.
type Costs struct {
	Bcrypt         int    // bcrypt cost (log2 of the rounds)
	ArgonMemoryKiB uint32 // Argon2id m
	ArgonTime      uint32 // Argon2id t
	ArgonThreads   uint8  // Argon2id p
}

// Production: bcrypt cost 12; Argon2id m=64 MiB, t=3, p=1, as doveadm pw
// writes it (libsodium's interactive limits).
var Production = Costs{Bcrypt: 12, ArgonMemoryKiB: 64 * 1024, ArgonTime: 3, ArgonThreads: 1}

// Cheap are the smallest costs the algorithms allow in practice: bcrypt's
// minimum cost 4, Argon2id over 1 MiB in one pass.
var Cheap = Costs{Bcrypt: 4, ArgonMemoryKiB: 1024, ArgonTime: 1, ArgonThreads: 1}

// Current is what account uses for new hashes. Only accounttest changes it,
// from a test's start to its end; it is not synchronised, so such tests
// must not run in parallel with others that hash.
var Current = Production
