package account

import "testing"

// Test vectors from Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"
// (the SHA-512 table): setting, key, expected output.
var sha512CryptVectors = []struct{ setting, key, want string }{
	{"$6$saltstring", "Hello world!",
		"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
		"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"$6$rounds=5000$toolongsaltstring", "This is just a test",
		"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	{"$6$rounds=1400$anotherlongsaltstring", "a very much longer text to encrypt.  This one even stretches over morethan one line.",
		"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	{"$6$rounds=77777$short", "we have a short salt string but not a short password",
		"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
	{"$6$rounds=123456$asaltof16chars..", "a short string",
		"$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
	{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
		"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
}

func TestSHA512CryptSpecVectors(t *testing.T) {
	for _, v := range sha512CryptVectors {
		set, _, err := parseSHACrypt(v.setting)
		if err != nil {
			t.Fatalf("parse %q: %v", v.setting, err)
		}
		if got := shaCrypt([]byte(v.key), set); got != v.want {
			t.Errorf("shaCrypt(%q, %q)\n got %s\nwant %s", v.key, v.setting, got, v.want)
		}
		for _, tc := range []struct {
			pw   string
			want bool
		}{{v.key, true}, {v.key + "x", false}, {"", false}} {
			ok, err := VerifyHash("{SHA512-CRYPT}"+v.want, tc.pw)
			if err != nil || ok != tc.want {
				t.Errorf("VerifyHash(%s, %q) = %v, %v; want %v", v.want, tc.pw, ok, err, tc.want)
			}
		}
	}
}

func TestSHA512CryptMalformed(t *testing.T) {
	for _, h := range []string{
		"$6$salt",          // no hash
		"$6$salt$tooshort", // wrong length
		"$6$rounds=x$salt$" + string(make([]byte, 86)),
		"$6$rounds=5000", // rounds without '$'
		"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZF2Z2xXq5", // SHA-256 crypt
	} {
		if ok, err := VerifyHash("{SHA512-CRYPT}"+h, "x"); err == nil || ok {
			t.Errorf("VerifyHash(%q) = %v, %v; want error", h, ok, err)
		}
	}
}
