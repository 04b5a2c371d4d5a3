package account

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const bobHash = "{BLF-CRYPT}$2y$04$eIFgAFdeW2qgjsYxFh/Crugao2a6jYi/r6iaCihFV7IktBjegu2kS" // "secret"

const samplePasswd = `# mailroom users
bob@Example.org:` + bobHash + `

alice@example.org:{SHA512-CRYPT}$6$R3VLQMdmEydIZS4h$Ipp8icOYOPi8vRcturKWtuqRoaC8v2njbPy2LIFhPjJQ79yIdjk/F6j6YWFZ852zHe/iXOaARNvLKhsq6vZtV1:5000:5000:Alice:/srv/mail/alice::userdb_quota_rule=*:storage=1G userdb_quota_rule2=*:messages=1000 nopassword
carol@example.net::::::
`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	db, err := Load(writeFile(t, samplePasswd), "/var/mail")
	if err != nil {
		t.Fatal(err)
	}
	want := []User{
		{Address: "bob@Example.org", Hash: bobHash, UID: -1, GID: -1},
		{Address: "alice@example.org", Hash: "{SHA512-CRYPT}$6$R3VLQMdmEydIZS4h$Ipp8icOYOPi8vRcturKWtuqRoaC8v2njbPy2LIFhPjJQ79yIdjk/F6j6YWFZ852zHe/iXOaARNvLKhsq6vZtV1",
			UID: 5000, GID: 5000, Home: "/srv/mail/alice",
			Extra: map[string]string{"userdb_quota_rule": "*:storage=1G", "userdb_quota_rule2": "*:messages=1000", "nopassword": ""}},
		{Address: "carol@example.net", UID: -1, GID: -1},
	}
	if got := db.Users(); !reflect.DeepEqual(got, want) {
		t.Errorf("Users() =\n%#v\nwant\n%#v", got, want)
	}

	for _, tc := range []struct {
		addr, mailbox string
		found         bool
	}{
		{"bob@example.org", "/var/mail/example.org/bob", true},
		{"BOB@EXAMPLE.ORG", "/var/mail/example.org/bob", true},
		{"alice@Example.Org", "/srv/mail/alice", true},
		{"carol@example.net", "/var/mail/example.net/carol", true},
		{"dave@example.org", "", false},
		{"bob", "", false},
	} {
		u, ok := db.Lookup(tc.addr)
		if ok != tc.found || (ok && normalize(u.Address) != normalize(tc.addr)) {
			t.Errorf("Lookup(%q) = %v, %v", tc.addr, u, ok)
		}
		root, ok := db.Mailbox(tc.addr)
		if ok != tc.found || root != tc.mailbox {
			t.Errorf("Mailbox(%q) = %q, %v; want %q, %v", tc.addr, root, ok, tc.mailbox, tc.found)
		}
	}

	// Lookup returns copies: changing one does not change the DB.
	u, _ := db.Lookup("alice@example.org")
	u.Extra["userdb_quota_rule"] = "*:storage=1k"
	u.Home = "/tmp"
	if again, _ := db.Lookup("alice@example.org"); again.Home != "/srv/mail/alice" || again.Extra["userdb_quota_rule"] != "*:storage=1G" {
		t.Errorf("Lookup result aliases the DB: %+v", again)
	}
}

func TestVerify(t *testing.T) {
	db, err := Load(writeFile(t, samplePasswd), "/var/mail")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr, pw string
		want     bool
	}{
		{"bob@example.org", "secret", true},
		{"Bob@Example.ORG", "secret", true},
		{"bob@example.org", "wrong", false},
		{"alice@example.org", "secret", true},
		{"alice@example.org", "", false},
		{"carol@example.net", "", false}, // empty hash never verifies
		{"carol@example.net", "anything", false},
		{"nobody@example.org", "secret", false},
	} {
		if got := db.Verify(tc.addr, tc.pw); got != tc.want {
			t.Errorf("Verify(%q, %q) = %v, want %v", tc.addr, tc.pw, got, tc.want)
		}
	}
	// The dummy hash of unknown users has the first user's cost.
	if !strings.HasPrefix(db.dummyHash(), "$2y$04$") {
		t.Errorf("dummy hash %q does not copy the first user's cost", db.dummyHash())
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ content, want string }{
		{"bob@example.org\n", ":1: no password field"},
		{"# c\nbob:x\n", ":2: user field: missing @domain"},
		{"bob@example.org:x:abc\n", ":1: uid field is not a number"},
		{"bob@example.org:x:0:0\n", ":1: uid 0"},
		{"bob@example.org:x:1:-1\n", ":1: gid field is not a number"},
		{"bob@example.org:x:1:1::relative/home\n", ":1: home"},
		{"bob@example.org:x\nBOB@example.org:y\n", ":2: user BOB@example.org already defined on line 1"},
		{"bob@example.org:x\r\n", ":1: line contains CR"},
		{"bob@example.org:x:::::: userdb_quota_rule=*:storage=lots\n", ":1: userdb_quota_rule"},
		{"bob@example.org:x:::::: userdb_quota_rule=nocolon\n", ":1: userdb_quota_rule"},
		{"../etc@example.org:x\n", ":1: user field: local part starts with '.'"},
		{"bob@exa/mple.org:x\n", ":1: user field: domain contains '/'"},
	} {
		p := writeFile(t, tc.content)
		_, err := Load(p, "/var/mail")
		if err == nil || !strings.Contains(err.Error(), p+tc.want) {
			t.Errorf("Load(%q) error = %v, want containing %q", tc.content, err, p+tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"), "/var/mail")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestQuota(t *testing.T) {
	for _, tc := range []struct {
		extra map[string]string
		want  Quota
		ok    bool
	}{
		{nil, Quota{}, false},
		{map[string]string{"userdb_quota_rule": "*:storage=1G"}, Quota{Bytes: 1 << 30}, true},
		{map[string]string{"userdb_quota_rule": "*:storage=2048"}, Quota{Bytes: 2 << 20}, true}, // kilobytes
		{map[string]string{"userdb_quota_rule": "*:bytes=2048"}, Quota{Bytes: 2048}, true},
		{map[string]string{"userdb_quota_rule": "*:storage=10M:messages=500"}, Quota{Bytes: 10 << 20, Messages: 500}, true},
		{map[string]string{"userdb_quota_rule": "*:storage=1G", "userdb_quota_rule2": "*:messages=7"}, Quota{Bytes: 1 << 30, Messages: 7}, true},
		{map[string]string{"userdb_quota_rule2": "*:storage=1M", "userdb_quota_rule": "*:storage=1G"}, Quota{Bytes: 1 << 20}, true}, // rule2 applies after rule
		{map[string]string{"userdb_quota_rule": "Trash:storage=+100M"}, Quota{}, false},
		{map[string]string{"userdb_quota_rule": "*:storage=0"}, Quota{}, true},
		{map[string]string{"quota_rule": "*:storage=1G"}, Quota{}, false}, // passdb field, not userdb
		{map[string]string{"userdb_quota_rule": "*:storage=1Q"}, Quota{}, false},
		{map[string]string{"userdb_quota_rule": "*:storage=50%"}, Quota{}, false},
		{map[string]string{"userdb_quota_rule": "*:storage=99999999999T"}, Quota{}, false},
	} {
		u := User{Address: "a@b", Extra: tc.extra}
		got, ok := u.Quota()
		if got != tc.want || ok != tc.ok {
			t.Errorf("Quota(%v) = %+v, %v; want %+v, %v", tc.extra, got, ok, tc.want, tc.ok)
		}
	}
}

func TestValidAddress(t *testing.T) {
	for _, a := range []string{"bob@example.org", "b.o-b+x@ex-ample.org", "ünï@exämple.org", "a@b", "{$b}=@_srv.example.org", "bob@[192.0.2.1]"} {
		if err := ValidAddress(a); err != nil {
			t.Errorf("ValidAddress(%q) = %v", a, err)
		}
	}
	for _, a := range []string{
		"", "bob", "@example.org", "bob@", "bob@@example.org", "a@b@c",
		"bo/b@example.org", "bob@example/org", "bob@..", "../x@example.org", "b..b@example.org",
		".bob@example.org", "bob@.example.org", "bob@example.org.", "bob@exa..mple.org",
		"bo\x00b@example.org", "bo\nb@example.org", "bo\tb@example.org", "bo b@example.org",
		"bo:b@example.org", "#bob@example.org", "bo\\b@example.org", "\xffbob@example.org",
		strings.Repeat("a", 65) + "@example.org", "a@" + strings.Repeat("b", 256),
		// A ';' or '@' typed for ':' glues the hash to the domain.
		"bob@example.org;{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA",
		"bob@example.org{X}y", "bob@exa$mple.org", "bob@exa=mple.org", "bob@exa,mple.org",
	} {
		if err := ValidAddress(a); err == nil {
			t.Errorf("ValidAddress(%q) = nil, want error", a)
		}
	}
}

func TestFormatLineRoundTrip(t *testing.T) {
	for _, u := range []User{
		{Address: "a@b", Hash: "{X}y", UID: -1, GID: -1},
		{Address: "a@b", Hash: "{X}y", UID: 8, GID: -1},
		{Address: "a@b", Hash: "", UID: 8, GID: 9, Home: "/h", Extra: map[string]string{"userdb_quota_rule": "*:storage=1G", "flag": ""}},
	} {
		line := formatLine(u)
		got, ok, err := parseLine(line)
		if err != nil || !ok {
			t.Fatalf("parseLine(%q) = %v, %v", line, ok, err)
		}
		if u.Extra == nil && len(got.Extra) == 0 {
			got.Extra = nil
		}
		if !reflect.DeepEqual(got, u) {
			t.Errorf("round trip %q:\n got %#v\nwant %#v", line, got, u)
		}
	}
	if got := formatLine(User{Address: "a@b", Hash: "h", UID: -1, GID: -1}); got != "a@b:h" {
		t.Errorf("trailing empty fields kept: %q", got)
	}
}

// Load's errors reach logs and "mailroom check"; when a ':' is missing or
// doubled, a hash lands in the user, uid, gid or home field, so an error
// must never quote a field of the line.
func TestLoadErrorsDoNotQuoteHash(t *testing.T) {
	const secret = "$2y$04$eIFgAFdeW2qgjsYxFh/Crugao2a6jYi/r6iaCihFV7IktBjegu2kS"
	for _, line := range []string{
		"bob@example.org::{BLF-CRYPT}" + secret,            // doubled ':': hash in uid
		"bob@example.org:x:1:{BLF-CRYPT}" + secret,         // hash in gid
		"bob@example.org:x:1:1::{BLF-CRYPT}" + secret,      // hash in home
		"{BLF-CRYPT}" + secret + ":bob@example.org",        // fields swapped
		"bob@example.org;{BLF-CRYPT}" + secret + ":1:1",    // ';' for ':'
		"bob@example.org {BLF-CRYPT}" + secret + ":x:1:1",  // ' ' for ':'
		"bob@example.org@{BLF-CRYPT}" + secret + ":x:1:1:", // '@' for ':'
	} {
		_, err := Load(writeFile(t, line+"\n"), "/var/mail")
		if err == nil {
			t.Errorf("Load(%q) = nil error", line)
			continue
		}
		if strings.Contains(err.Error(), "eIFgAFdeW2qg") {
			t.Errorf("Load(%q) error quotes the hash: %v", line, err)
		}
	}
}
