package account

import (
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SHA-512 crypt ("$6$"), from Ulrich Drepper's specification "Unix crypt
// using SHA-256 and SHA-512" (the algorithm in glibc's crypt(3)). Only
// verification is offered: new hashes use bcrypt or Argon2id.
const (
	shaCryptPrefix        = "$6$"
	shaCryptRoundsPrefix  = "rounds="
	shaCryptDefaultRounds = 5000
	shaCryptMinRounds     = 1000
	// shaCryptMaxVerify is the most rounds a hash may ask for: the
	// specification allows up to 999999999, minutes of CPU for one login from
	// a tampered passwd file. Real hashes use thousands (glibc's default)
	// to hundreds of thousands; a hash above this never verifies.
	shaCryptMaxVerify = 10_000_000
	shaCryptMaxSalt   = 16
)

// cryptAlphabet is crypt(3)'s base-64 alphabet.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// shaCryptSetting is the parsed "$6$[rounds=N$]salt" part of a hash.
type shaCryptSetting struct {
	rounds       int
	roundsCustom bool // "rounds=" was written, so it is written back
	salt         string
}

// parseSHACrypt splits "$6$[rounds=N$]salt[$hash]" into setting and hash.
func parseSHACrypt(s string) (shaCryptSetting, string, error) {
	rest, ok := strings.CutPrefix(s, shaCryptPrefix)
	if !ok {
		return shaCryptSetting{}, "", errors.New("SHA512-CRYPT hash does not start with $6$")
	}
	set := shaCryptSetting{rounds: shaCryptDefaultRounds}
	if r, ok := strings.CutPrefix(rest, shaCryptRoundsPrefix); ok {
		num, after, found := strings.Cut(r, "$")
		if !found {
			return shaCryptSetting{}, "", errors.New("SHA512-CRYPT: rounds= without '$'")
		}
		n, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			return shaCryptSetting{}, "", fmt.Errorf("SHA512-CRYPT: bad rounds %q", num)
		}
		if n > shaCryptMaxVerify {
			return shaCryptSetting{}, "", fmt.Errorf("SHA512-CRYPT: rounds=%d above the %d mailroom verifies", n, shaCryptMaxVerify)
		}
		// The specification raises a value below the minimum instead of failing.
		set.rounds = int(max(n, shaCryptMinRounds))
		set.roundsCustom = true
		rest = after
	}
	salt, sum, _ := strings.Cut(rest, "$")
	if len(salt) > shaCryptMaxSalt {
		salt = salt[:shaCryptMaxSalt]
	}
	set.salt = salt
	return set, sum, nil
}

// verifySHACrypt checks password against a "$6$..." hash.
func verifySHACrypt(stored, password string) (bool, error) {
	set, sum, err := parseSHACrypt(stored)
	if err != nil {
		return false, err
	}
	if len(sum) != 86 {
		return false, errors.New("SHA512-CRYPT: hash is not 86 characters")
	}
	got := shaCrypt([]byte(password), set)
	want := set.String() + "$" + sum
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1, nil
}

func (s shaCryptSetting) String() string {
	if s.roundsCustom {
		return shaCryptPrefix + shaCryptRoundsPrefix + strconv.Itoa(s.rounds) + "$" + s.salt
	}
	return shaCryptPrefix + s.salt
}

// shaCrypt computes the full "$6$...$hash" string; the numbered steps are
// the specification's.
func shaCrypt(key []byte, set shaCryptSetting) string {
	salt := []byte(set.salt)
	h := sha512.New()

	// Steps 4-8: digest B = H(key salt key).
	h.Write(key)
	h.Write(salt)
	h.Write(key)
	b := h.Sum(nil)

	// Steps 1-3, 9-12: digest A.
	h.Reset()
	h.Write(key)
	h.Write(salt)
	writeRepeated(h, b, len(key))
	for n := len(key); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(key)
		}
	}
	a := h.Sum(nil)

	// Steps 13-16: byte sequence P from digest DP = H(key repeated len(key) times).
	h.Reset()
	for range len(key) {
		h.Write(key)
	}
	p := repeatTo(h.Sum(nil), len(key))

	// Steps 17-20: byte sequence S from digest DS = H(salt repeated 16+A[0] times).
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	s := repeatTo(h.Sum(nil), len(salt))

	// Step 21: the rounds.
	c := a
	for i := range set.rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}
	return set.String() + "$" + encodeSHA512Crypt(c)
}

// writeRepeated writes n bytes taken cyclically from block.
func writeRepeated(h hash.Hash, block []byte, n int) {
	for ; n > len(block); n -= len(block) {
		h.Write(block)
	}
	h.Write(block[:n])
}

// repeatTo returns n bytes taken cyclically from block.
func repeatTo(block []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, block[:min(len(block), n-len(out))]...)
	}
	return out
}

// sha512CryptOrder is the specification's byte permutation for step 22:
// each triple is encoded as four characters, least significant first.
var sha512CryptOrder = [21][3]int{
	{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
	{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
	{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
	{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
	{62, 20, 41},
}

func encodeSHA512Crypt(d []byte) string {
	var sb strings.Builder
	put := func(w uint32, n int) {
		for range n {
			sb.WriteByte(cryptAlphabet[w&0x3f])
			w >>= 6
		}
	}
	for _, t := range sha512CryptOrder {
		put(uint32(d[t[0]])<<16|uint32(d[t[1]])<<8|uint32(d[t[2]]), 4)
	}
	put(uint32(d[63]), 2)
	return sb.String()
}
