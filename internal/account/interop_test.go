package account

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"mailroom/internal/account/accounttest"
	"mailroom/internal/testutil"
)

const doveadm = "doveadm"

func doveadmHash(t *testing.T, scheme, password string) string {
	t.Helper()
	out, err := exec.Command(doveadm, "pw", "-s", scheme, "-p", password).Output()
	if err != nil {
		t.Fatalf("doveadm pw -s %s: %v", scheme, err)
	}
	return strings.TrimSpace(string(out))
}

// doveadmVerifies runs doveadm pw -t, which exits 0 only on a match.
func doveadmVerifies(t *testing.T, hash, password string) bool {
	t.Helper()
	cmd := exec.Command(doveadm, "pw", "-t", hash, "-p", password)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &exit) && strings.Contains(string(out), "mismatch"):
		return false
	}
	t.Fatalf("doveadm pw -t %s: %v: %s", hash, err, out)
	return false
}

// Passwords that exercise bcrypt's 8-bit handling and SHA-crypt's length
// branches (key lengths around the 64-byte digest size).
var interopPasswords = []string{"secret", "pässwörd ✓", strings.Repeat("x", 64), strings.Repeat("y", 65)}

func TestDoveadmHashesVerifyHere(t *testing.T) {
	testutil.RequireTool(t, doveadm)
	for _, scheme := range []string{"SHA512-CRYPT", "BLF-CRYPT", "ARGON2ID"} {
		pws := interopPasswords
		if scheme == "ARGON2ID" {
			pws = pws[:2] // 64 MiB per verification; the length cases are for the crypts
		}
		for _, pw := range pws {
			h := doveadmHash(t, scheme, pw)
			if ok, err := VerifyHash(h, pw); !ok || err != nil {
				t.Errorf("VerifyHash(doveadm %s of %q) = %v, %v", h, pw, ok, err)
			}
			if ok, err := VerifyHash(h, pw+"!"); ok || err != nil {
				t.Errorf("VerifyHash(doveadm %s, wrong password) = %v, %v", h, ok, err)
			}
		}
	}
	// A non-default rounds count, written back as rounds=N.
	h := doveadmHash(t, "SHA512-CRYPT", "secret") // default rounds
	if ok, _ := VerifyHash(h, "secret"); !ok {
		t.Errorf("default-rounds doveadm hash does not verify: %s", h)
	}
	out, err := exec.Command(doveadm, "pw", "-s", "SHA512-CRYPT", "-r", "12345", "-p", "secret").Output()
	if err != nil {
		t.Fatal(err)
	}
	h = strings.TrimSpace(string(out))
	if !strings.Contains(h, "rounds=12345$") {
		t.Fatalf("doveadm ignored -r: %s", h)
	}
	if ok, err := VerifyHash(h, "secret"); !ok || err != nil {
		t.Errorf("VerifyHash(%s) = %v, %v", h, ok, err)
	}
}

func TestOurHashesVerifyInDoveadm(t *testing.T) {
	testutil.RequireTool(t, doveadm)
	accounttest.CheapHashes(t) // doveadm reads the costs from the hash; the format is what matters
	for _, scheme := range []string{"BLF-CRYPT", "ARGON2ID"} {
		for _, pw := range interopPasswords {
			h, err := HashPassword(pw, scheme)
			if err != nil {
				t.Fatal(err)
			}
			if !doveadmVerifies(t, h, pw) {
				t.Errorf("doveadm rejects our %s of %q: %s", scheme, pw, h)
			}
			if doveadmVerifies(t, h, pw+"!") {
				t.Errorf("doveadm accepts a wrong password for %s", h)
			}
		}
	}
	// Our SHA512-CRYPT (verification-only in the API, but the same code
	// computes what we compare against).
	for _, set := range []shaCryptSetting{
		{rounds: shaCryptDefaultRounds, salt: "abcdefgh12345678"},
		{rounds: 1234, roundsCustom: true, salt: "short"},
	} {
		h := "{SHA512-CRYPT}" + shaCrypt([]byte("pässwörd ✓"), set)
		if !doveadmVerifies(t, h, "pässwörd ✓") {
			t.Errorf("doveadm rejects our SHA512-CRYPT %s", h)
		}
	}
}
