package account

import (
	"strings"
	"testing"
)

func FuzzParseLine(f *testing.F) {
	for _, s := range strings.Split(samplePasswd, "\n") {
		f.Add(s)
	}
	f.Add("a@b:x:1:2:g:/h:/s:k=v k2 userdb_quota_rule=*:storage=1G:messages=3")
	f.Add("a@b:x:::::: userdb_quota_rule2=*:bytes=10k")
	f.Add("a@b")
	f.Add("#a@b:x")
	f.Fuzz(func(t *testing.T, line string) {
		u, ok, err := parseLine(line)
		if err != nil || !ok {
			return
		}
		if ValidAddress(u.Address) != nil {
			t.Fatalf("parseLine accepted invalid address %q", u.Address)
		}
		// A parsed user re-formats to a line that parses to the same user.
		again, ok, err := parseLine(formatLine(u))
		if err != nil || !ok {
			t.Fatalf("formatLine(%+v) = %q does not parse: %v", u, formatLine(u), err)
		}
		if formatLine(again) != formatLine(u) {
			t.Fatalf("round trip changed %q into %q", formatLine(u), formatLine(again))
		}
		// Editing the password field keeps the line otherwise unchanged.
		f := splitFields(line)
		if strings.Join(f, ":") != line {
			t.Fatalf("splitFields does not rejoin to %q", line)
		}
	})
}

func FuzzVerifyHash(f *testing.F) {
	for _, h := range knownHashes {
		f.Add(h, "secret")
	}
	for _, v := range sha512CryptVectors {
		f.Add(v.want, v.key)
	}
	f.Add("{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "x")
	f.Add("{SHA512-CRYPT}$6$rounds=1000$s$", "x")
	f.Add("{PLAIN}x", "x")
	f.Fuzz(func(t *testing.T, stored, password string) {
		// Keep each input cheap: the fuzzer must not spend minutes on
		// expensive but valid cost parameters.
		if strings.Contains(stored, "rounds=") || strings.Contains(stored, "$2") && !strings.Contains(stored, "$04$") {
			return
		}
		if p, err := parseArgon2id(strings.TrimPrefix(stored, "{ARGON2ID}")); err == nil && (p.memory > 1024 || p.time > 2) {
			return
		}
		ok, err := VerifyHash(stored, password)
		if err != nil && ok {
			t.Fatalf("VerifyHash(%q) = true with error %v", stored, err)
		}
	})
}

func FuzzValidAddress(f *testing.F) {
	f.Add("bob@example.org")
	f.Add("../x@y")
	f.Add("a@b@c")
	f.Fuzz(func(t *testing.T, a string) {
		if ValidAddress(a) != nil {
			return
		}
		local, domain := splitAddress(a)
		for _, part := range []string{local, domain} {
			if part == "" || part == "." || part == ".." || strings.ContainsAny(part, "/\x00:") {
				t.Fatalf("ValidAddress accepted %q", a)
			}
		}
	})
}
