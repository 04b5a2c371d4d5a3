package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"mailroom/internal/account/internal/hashcost"
)

// Argon2id in the PHC string encoding Dovecot (through libsodium) writes:
//
//	$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
//
// salt and hash in standard base64 without padding.
const (
	argonPrefix  = "$argon2id$"
	argonVersion = argon2.Version // 19

	// The costs of new hashes are in hashcost.Production.
	argonSaltLen = 16
	argonKeyLen  = 32

	// Bounds when verifying, so that a tampered or mistyped hash cannot
	// make each login allocate gigabytes (m is KiB, and every concurrent
	// login allocates it anew) or run for minutes: libsodium's largest
	// preset, "sensitive", is m=1 GiB and t=4, and nothing above it is
	// in real use.
	argonMaxMemory = 1 << 20            // KiB = 1 GiB
	argonMaxWork   = argonMaxMemory * 4 // m·t: passes over memory, in KiB
	argonMaxTime   = argonMaxWork / 8   // with the smallest m (8 KiB per lane)
	argonMinKeyLen = 4
	argonMaxKeyLen = 1024
)

var argonB64 = base64.RawStdEncoding

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func parseArgon2id(s string) (argonParams, error) {
	rest, ok := strings.CutPrefix(s, argonPrefix)
	if !ok {
		return argonParams{}, errors.New("ARGON2ID hash does not start with $argon2id$")
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 4 {
		return argonParams{}, errors.New("ARGON2ID: want v=..$m=..,t=..,p=..$salt$hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[0], "v=%d", &version); err != nil || parts[0] != fmt.Sprintf("v=%d", version) {
		return argonParams{}, fmt.Errorf("ARGON2ID: bad version field %q", parts[0])
	}
	if version != argonVersion {
		return argonParams{}, fmt.Errorf("ARGON2ID: unsupported version %d", version)
	}
	var p argonParams
	var m, t, th uint64
	if _, err := fmt.Sscanf(parts[1], "m=%d,t=%d,p=%d", &m, &t, &th); err != nil ||
		parts[1] != fmt.Sprintf("m=%d,t=%d,p=%d", m, t, th) {
		return argonParams{}, fmt.Errorf("ARGON2ID: bad parameters %q", parts[1])
	}
	if th < 1 || th > 255 || t < 1 || t > argonMaxTime || m < 8*th || m > argonMaxMemory || m*t > argonMaxWork {
		return argonParams{}, fmt.Errorf("ARGON2ID: parameters out of range %q", parts[1])
	}
	p.memory, p.time, p.threads = uint32(m), uint32(t), uint8(th)
	var err error
	if p.salt, err = argonB64.DecodeString(parts[2]); err != nil || len(p.salt) < 8 {
		return argonParams{}, errors.New("ARGON2ID: bad salt")
	}
	if p.key, err = argonB64.DecodeString(parts[3]); err != nil || len(p.key) < argonMinKeyLen || len(p.key) > argonMaxKeyLen {
		return argonParams{}, errors.New("ARGON2ID: bad hash")
	}
	return p, nil
}

func (p argonParams) String() string {
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", argonPrefix, argonVersion,
		p.memory, p.time, p.threads, argonB64.EncodeToString(p.salt), argonB64.EncodeToString(p.key))
}

func verifyArgon2id(stored, password string) (bool, error) {
	p, err := parseArgon2id(stored)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

// hashArgon2id hashes password with p's cost parameters and a fresh salt.
func hashArgon2id(password string, p argonParams) (string, error) {
	p.salt = make([]byte, argonSaltLen)
	if _, err := rand.Read(p.salt); err != nil {
		return "", fmt.Errorf("argon2id salt: %w", err)
	}
	p.key = argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, argonKeyLen)
	return p.String(), nil
}

// defaultArgonParams are the costs of new hashes: hashcost.Production
// outside tests.
func defaultArgonParams() argonParams {
	c := hashcost.Current
	return argonParams{memory: c.ArgonMemoryKiB, time: c.ArgonTime, threads: c.ArgonThreads}
}
