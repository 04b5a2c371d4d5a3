package account

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"mailroom/internal/account/internal/hashcost"
)

// Password scheme names, as Dovecot spells them inside {}.
const (
	SchemeBcrypt = "BLF-CRYPT"
	SchemeSHA512 = "SHA512-CRYPT"
	SchemeArgon2 = "ARGON2ID"
	schemeCrypt  = "CRYPT" // Dovecot's crypt(3): the format is in the hash itself
)

// DefaultScheme is what HashPassword uses for "".
const DefaultScheme = SchemeBcrypt

// BcryptCost is the cost HashPassword uses for BLF-CRYPT (tests of other
// packages may lower it through accounttest.CheapHashes).
const BcryptCost = 12

// bcryptCost is the cost of new BLF-CRYPT hashes: BcryptCost outside tests.
func bcryptCost() int { return hashcost.Current.Bcrypt }

// bcryptMaxPassword: bcrypt reads at most 72 bytes of the password.
const bcryptMaxPassword = 72

// ErrUnknownScheme is returned for a {SCHEME} mailroom cannot verify.
var ErrUnknownScheme = errors.New("unknown password scheme")

// HashPassword hashes password for storage as "{SCHEME}hash". scheme is
// BLF-CRYPT (bcrypt, cost BcryptCost) or ARGON2ID (m=64MiB, t=3, p=1, as
// doveadm pw writes it); "" means DefaultScheme.
func HashPassword(password, scheme string) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	switch strings.ToUpper(scheme) {
	case "", SchemeBcrypt:
		h, err := hashBcrypt(password, bcryptCost())
		if err != nil {
			return "", err
		}
		return "{" + SchemeBcrypt + "}" + h, nil
	case SchemeArgon2:
		h, err := hashArgon2id(password, defaultArgonParams())
		if err != nil {
			return "", err
		}
		return "{" + SchemeArgon2 + "}" + h, nil
	}
	return "", fmt.Errorf("%w %q for new passwords (want %s or %s)", ErrUnknownScheme, scheme, SchemeBcrypt, SchemeArgon2)
}

func hashBcrypt(password string, cost int) (string, error) {
	if len(password) > bcryptMaxPassword {
		// Refuse rather than silently ignore the tail.
		return "", fmt.Errorf("password longer than %d bytes, the most bcrypt uses", bcryptMaxPassword)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	// Go computes the corrected algorithm, which crypt_blowfish (Dovecot's
	// BLF-CRYPT) names $2y$; its $2a$ carries a compatibility quirk for
	// 8-bit passwords, so write the unambiguous prefix.
	return "$2y$" + string(h[4:]), nil
}

// splitScheme separates "{SCHEME}hash" into upper-cased scheme and hash; a
// hash without braces is CRYPT, Dovecot's default scheme.
func splitScheme(stored string) (scheme, hash string, err error) {
	if !strings.HasPrefix(stored, "{") {
		return schemeCrypt, stored, nil
	}
	end := strings.IndexByte(stored, '}')
	if end < 0 {
		return "", "", errors.New("unterminated {SCHEME}")
	}
	return strings.ToUpper(stored[1:end]), stored[end+1:], nil
}

// VerifyHash reports whether password matches stored ("{SCHEME}hash"). It
// knows BLF-CRYPT, SHA512-CRYPT and ARGON2ID, and CRYPT (no braces) holding
// one of their formats; anything else, or a malformed hash, is an error.
// Comparisons are constant-time.
func VerifyHash(stored, password string) (bool, error) {
	scheme, h, err := splitScheme(stored)
	if err != nil {
		return false, err
	}
	switch scheme {
	case SchemeBcrypt:
		return verifyBcrypt(h, password)
	case SchemeSHA512:
		return verifySHACrypt(h, password)
	case SchemeArgon2:
		return verifyArgon2id(h, password)
	case schemeCrypt:
		switch {
		case strings.HasPrefix(h, shaCryptPrefix):
			return verifySHACrypt(h, password)
		case isBcrypt(h):
			return verifyBcrypt(h, password)
		case strings.HasPrefix(h, argonPrefix):
			return verifyArgon2id(h, password)
		}
		return false, fmt.Errorf("%w: CRYPT hash format not supported", ErrUnknownScheme)
	}
	return false, fmt.Errorf("%w %q", ErrUnknownScheme, scheme)
}

func isBcrypt(h string) bool {
	return len(h) >= 4 && h[0] == '$' && h[1] == '2' && strings.IndexByte("aby", h[2]) >= 0 && h[3] == '$'
}

func verifyBcrypt(h, password string) (bool, error) {
	if !isBcrypt(h) {
		// $2x$ (the pre-2011 crypt_blowfish bug) cannot be reproduced here.
		return false, errors.New("BLF-CRYPT hash does not start with $2a$, $2b$ or $2y$")
	}
	if len(password) > bcryptMaxPassword {
		password = password[:bcryptMaxPassword] // what crypt_blowfish does
	}
	err := bcrypt.CompareHashAndPassword([]byte(h), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	}
	return false, fmt.Errorf("BLF-CRYPT: %w", err)
}

// Verify reports whether password is address's password. An unknown user,
// or one whose hash is empty or broken, costs one hash verification like a
// known one, so timing does not tell whether an address exists.
func (db *DB) Verify(address, password string) bool {
	u, ok := db.byName[normalize(address)]
	stored := ""
	if ok {
		stored = db.users[u].Hash
	}
	if stored == "" {
		_, _ = VerifyHash(db.dummyHash(), password) // the cost is the point, not the result
		return false
	}
	match, err := VerifyHash(stored, password)
	if err != nil {
		_, _ = VerifyHash(db.dummyHash(), password)
		return false
	}
	return match
}

// dummyHash is a hash of a random password with the same scheme and cost as
// the first user's, computed once on first use.
func (db *DB) dummyHash() string {
	db.dummyOnce.Do(func() {
		like := ""
		if len(db.users) > 0 {
			like = db.users[0].Hash
		}
		db.dummy = sameCostHash(like)
	})
	return db.dummy
}

// sameCostHash hashes a random password with the scheme and cost
// parameters of like, falling back to the defaults.
func sameCostHash(like string) string {
	var buf [16]byte
	_, _ = rand.Read(buf[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	pw := hex.EncodeToString(buf[:])
	scheme, h, _ := splitScheme(like)
	var out string
	var err error
	switch {
	case (scheme == SchemeBcrypt || scheme == schemeCrypt) && isBcrypt(h):
		cost, cerr := bcrypt.Cost([]byte(h))
		if cerr != nil {
			cost = bcryptCost()
		}
		out, err = hashBcrypt(pw, cost)
	case (scheme == SchemeSHA512 || scheme == schemeCrypt) && strings.HasPrefix(h, shaCryptPrefix):
		set, _, perr := parseSHACrypt(h)
		if perr != nil {
			set = shaCryptSetting{rounds: shaCryptDefaultRounds}
		}
		set.salt = pw[:shaCryptMaxSalt]
		out = shaCrypt([]byte(pw), set)
	case (scheme == SchemeArgon2 || scheme == schemeCrypt) && strings.HasPrefix(h, argonPrefix):
		p, perr := parseArgon2id(h)
		if perr != nil {
			p = defaultArgonParams()
		}
		out, err = hashArgon2id(pw, p)
	default:
		out, err = hashBcrypt(pw, bcryptCost())
	}
	if err != nil {
		// Cannot happen with the bounded inputs above; keep a verifiable
		// value so Verify still spends time.
		out, _ = hashBcrypt(pw, bcrypt.DefaultCost)
	}
	return out
}
