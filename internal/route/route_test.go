package route

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mailroom/internal/account"
	"mailroom/internal/alias"
	"mailroom/internal/config"
)

// The user table of the real program must fit Users.
var _ Users = (*account.DB)(nil)

// fakeUsers maps lower-case addresses to "/mail/<address>".
type fakeUsers map[string]bool

func (u fakeUsers) Mailbox(address string) (string, bool) {
	if !u[strings.ToLower(address)] {
		return "", false
	}
	return "/mail/" + strings.ToLower(address), true
}

var testUsers = fakeUsers{
	"alice@example.org":   true,
	"bob@example.org":     true,
	"bob@example.net":     true,
	"selfish@example.org": true,
	"x+y@example.org":     true,
}

// testAliases is written so that each line number below is stable.
func testAliases(t *testing.T) *alias.Table {
	t.Helper()
	lines := []string{
		"postmaster: root",        // 1
		"root@example.org: alice", // 2
		"staff@example.org: alice, bob@example.net, Carol@Remote.Example",    // 3
		"selfish@example.org: selfish, bob",                                  // 4
		"ghost@example.org: ghost, alice",                                    // 5
		"bob@example.org: carol@remote.example",                              // 6
		`list@example.org: alice, \bob`,                                      // 7
		"alice+spam@example.org: /var/spool/spam",                            // 8
		`vacation@example.org: "|/usr/bin/vacation alice", alice`,            // 9
		"loopa@example.org: loopb",                                           // 10
		"loopb@example.org: loopa",                                           // 11
		"dup@example.org: alice, alice@example.org, ALICE@EXAMPLE.ORG, list", // 12
		"@example.net: alice@example.org",                                    // 13
		"@loop.example: nobody",                                              // 14
		"evil@example.org: ../../etc/passwd",                                 // 15
	}
	for i := 0; i <= MaxDepth+1; i++ {
		lines = append(lines, fmt.Sprintf("deep%d@example.org: deep%d", i, i+1))
	}
	for i := 0; i < 16; i++ {
		lines = append(lines,
			fmt.Sprintf("fan%da@example.org: fan%da, fan%db", i, i+1, i+1),
			fmt.Sprintf("fan%db@example.org: fan%da, fan%db", i, i+1, i+1))
	}
	tab, err := alias.Parse(strings.NewReader(strings.Join(lines, "\n")+"\n"), "aliases")
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func testConfig() *config.Config {
	c := config.Default()
	c.Domains = []string{"example.org", "example.net", "loop.example"}
	return c
}

func mailbox(a string) Target { return Target{Kind: Mailbox, Address: a, Root: "/mail/" + a} }
func remote(a string) Target  { return Target{Kind: Remote, Address: a} }

func TestResolve(t *testing.T) {
	tests := []struct {
		name   string
		addr   string
		config func(c *config.Config)
		want   []Target
		rules  []string // when set, the rules of the steps in order
	}{
		{name: "remote domain keeps local case", addr: "Someone@Remote.Example",
			want: []Target{remote("Someone@remote.example")}, rules: []string{RuleRemote}},
		{name: "user", addr: "alice@example.org",
			want: []Target{mailbox("alice@example.org")}, rules: []string{RuleUser}},
		{name: "trailing dot in domain", addr: "alice@example.org.",
			want: []Target{mailbox("alice@example.org")}},
		{name: "only a dot as domain", addr: "alice@.",
			want: []Target{{Kind: Refused, Address: "alice@.", Reason: `address "alice@." has an empty domain`}}},
		{name: "case-insensitive", addr: "ALICE@Example.ORG",
			want: []Target{mailbox("alice@example.org")}},
		{name: "unknown", addr: "nobody@example.org",
			want:  []Target{{Kind: Unknown, Address: "nobody@example.org", Reason: "no such user or alias: nobody@example.org"}},
			rules: []string{RuleUnknown}},
		{name: "catch-all", addr: "nobody@example.net",
			want: []Target{mailbox("alice@example.org")}, rules: []string{RuleCatchAll, RuleUser}},
		{name: "user before catch-all", addr: "bob@example.net",
			want: []Target{mailbox("bob@example.net")}, rules: []string{RuleUser}},
		{name: "exact alias", addr: "root@example.org",
			want: []Target{mailbox("alice@example.org")}, rules: []string{RuleAlias, RuleUser}},
		{name: "bare-name alias, target in same domain", addr: "postmaster@example.org",
			want: []Target{mailbox("alice@example.org")}, rules: []string{RuleAlias, RuleAlias, RuleUser}},
		{name: "bare-name alias in other hosted domain", addr: "postmaster@example.net",
			want: []Target{mailbox("alice@example.org")}, rules: []string{RuleAlias, RuleCatchAll, RuleUser}},
		{name: "bare-name alias not for remote domains", addr: "postmaster@remote.example",
			want: []Target{remote("postmaster@remote.example")}},
		{name: "alias before user", addr: "bob@example.org",
			want: []Target{remote("carol@remote.example")}},
		{name: "several targets", addr: "staff@example.org",
			want: []Target{mailbox("alice@example.org"), mailbox("bob@example.net"), remote("Carol@remote.example")}},
		{name: "alias names itself", addr: "selfish@example.org",
			want:  []Target{mailbox("selfish@example.org"), remote("carol@remote.example")},
			rules: []string{RuleAlias, RuleSelf, RuleUser, RuleAlias, RuleRemote}},
		{name: "alias names itself, no such user", addr: "ghost@example.org",
			want: []Target{{Kind: Unknown, Address: "ghost@example.org", Reason: "no such user: ghost@example.org"},
				mailbox("alice@example.org")}},
		{name: "verbatim skips aliases", addr: "list@example.org",
			want:  []Target{mailbox("alice@example.org"), mailbox("bob@example.org")},
			rules: []string{RuleAlias, RuleUser, RuleVerbatim, RuleUser}},
		{name: "sub-address to user", addr: "alice+lists@example.org",
			want: []Target{mailbox("alice@example.org")}, rules: []string{RuleSubAddress, RuleUser}},
		{name: "sub-address to folder", addr: "Alice+Lists@example.org",
			config: func(c *config.Config) { c.Deliver.ExtensionFolder = true },
			want:   []Target{{Kind: Mailbox, Address: "alice@example.org", Root: "/mail/alice@example.org", Folder: "Lists"}}},
		{name: "sub-address with empty extension", addr: "alice+@example.org",
			config: func(c *config.Config) { c.Deliver.ExtensionFolder = true },
			want:   []Target{mailbox("alice@example.org")}},
		{name: "sub-address unusable as folder", addr: "alice+x.@example.org",
			config: func(c *config.Config) { c.Deliver.ExtensionFolder = true },
			want:   []Target{mailbox("alice@example.org")}},
		{name: "several delimiters, first wins", addr: "alice-a+b@example.org",
			config: func(c *config.Config) { c.RecipientDelimiter = "+-"; c.Deliver.ExtensionFolder = true },
			want:   []Target{{Kind: Mailbox, Address: "alice@example.org", Root: "/mail/alice@example.org", Folder: "a+b"}}},
		{name: "sub-address to alias", addr: "postmaster+x@example.org",
			config: func(c *config.Config) { c.Deliver.ExtensionFolder = true },
			want:   []Target{mailbox("alice@example.org")},
			rules:  []string{RuleSubAddress, RuleAlias, RuleAlias, RuleUser}},
		{name: "sub-address to self alias keeps folder", addr: "selfish+tag@example.org",
			config: func(c *config.Config) { c.Deliver.ExtensionFolder = true },
			want: []Target{{Kind: Mailbox, Address: "selfish@example.org", Root: "/mail/selfish@example.org", Folder: "tag"},
				remote("carol@remote.example")}},
		{name: "exact alias wins over sub-address", addr: "alice+spam@example.org",
			want: []Target{{Kind: Refused, Address: "alice+spam@example.org", File: "/var/spool/spam",
				Reason: "file targets are disabled (allow_file_targets = no)"}},
			rules: []string{RuleAlias, RuleFile}},
		{name: "file target allowed", addr: "alice+spam@example.org",
			config: func(c *config.Config) { c.Deliver.AllowFileTargets = true },
			want:   []Target{{Kind: File, Address: "alice+spam@example.org", File: "/var/spool/spam"}}},
		{name: "literal user with delimiter", addr: "x+y@example.org",
			want: []Target{mailbox("x+y@example.org")}},
		{name: "delimiter disabled", addr: "alice+lists@example.org",
			config: func(c *config.Config) { c.RecipientDelimiter = "" },
			want:   []Target{{Kind: Unknown, Address: "alice+lists@example.org", Reason: "no such user or alias: alice+lists@example.org"}}},
		{name: "leading delimiter is not a sub-address", addr: "+x@example.net",
			want: []Target{mailbox("alice@example.org")}, rules: []string{RuleCatchAll, RuleUser}},
		{name: "pipe refused", addr: "vacation@example.org",
			want: []Target{{Kind: Refused, Address: "vacation@example.org", Command: "/usr/bin/vacation alice",
				Reason: "pipe targets are disabled (allow_pipe_targets = no)"}, mailbox("alice@example.org")}},
		{name: "pipe allowed", addr: "vacation@example.org",
			config: func(c *config.Config) { c.Deliver.AllowPipeTargets = true },
			want:   []Target{{Kind: Pipe, Address: "vacation@example.org", Command: "/usr/bin/vacation alice"}, mailbox("alice@example.org")}},
		{name: "loop", addr: "loopa@example.org",
			want: []Target{{Kind: Refused, Address: "loopa@example.org",
				Reason: "alias loop: loopa@example.org -> loopb@example.org -> loopa@example.org"}}},
		{name: "catch-all loop", addr: "someone@loop.example",
			want: []Target{{Kind: Refused, Address: "nobody@loop.example",
				Reason: "alias loop: someone@loop.example -> nobody@loop.example -> nobody@loop.example"}}},
		{name: "too deep", addr: "deep0@example.org",
			want: []Target{{Kind: Refused, Address: fmt.Sprintf("deep%d@example.org", MaxDepth+1),
				Reason: fmt.Sprintf("aliases nested deeper than %d", MaxDepth)}}},
		{name: "duplicates removed", addr: "dup@example.org",
			want: []Target{mailbox("alice@example.org"), mailbox("bob@example.org")}},
		{name: "alias target escaping mail_root", addr: "evil@example.org",
			want: []Target{{Kind: Refused, Address: "../../etc/passwd@example.org",
				Reason: `local part "../../etc/passwd" contains '/'`}}},
		{name: "slash", addr: "a/b@example.org",
			want: []Target{{Kind: Refused, Address: "a/b@example.org", Reason: `local part "a/b" contains '/'`}}},
		{name: "dot-dot", addr: "a..b@example.org",
			want: []Target{{Kind: Refused, Address: "a..b@example.org", Reason: `local part "a..b" contains ".."`}}},
		{name: "leading dot", addr: ".hidden@example.org",
			want: []Target{{Kind: Refused, Address: ".hidden@example.org", Reason: `local part ".hidden" starts with '.'`}}},
		{name: "NUL", addr: "a\x00b@example.org",
			want: []Target{{Kind: Refused, Address: "a\x00b@example.org", Reason: `address contains control character '\x00'`}}},
		{name: "CRLF to remote", addr: "a\r\nRCPT TO:<x>@remote.example",
			want: []Target{{Kind: Refused, Address: "a\r\nRCPT TO:<x>@remote.example", Reason: `address contains control character '\r'`}}},
		{name: "no domain", addr: "alice",
			want: []Target{{Kind: Refused, Address: "alice", Reason: `address "alice" has no @domain`}}},
		{name: "empty local part", addr: "@example.org",
			want: []Target{{Kind: Refused, Address: "@example.org", Reason: `address "@example.org" has an empty local part`}}},
		{name: "empty domain", addr: "alice@",
			want: []Target{{Kind: Refused, Address: "alice@", Reason: `address "alice@" has an empty domain`}}},
		{name: "slash in domain", addr: "alice@../x",
			want: []Target{{Kind: Refused, Address: "alice@../x", Reason: `domain "../x" contains a blank, '/' or '\'`}}},
	}
	aliases := testAliases(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			if tt.config != nil {
				tt.config(c)
			}
			res := New(c, testUsers, aliases).Resolve(tt.addr)
			if res.Address != tt.addr {
				t.Errorf("Address = %q", res.Address)
			}
			if !reflect.DeepEqual(res.Targets, tt.want) {
				t.Errorf("targets:\n got %+v\nwant %+v", res.Targets, tt.want)
			}
			if tt.rules != nil {
				var rules []string
				for _, s := range res.Steps {
					rules = append(rules, s.Rule)
				}
				if !reflect.DeepEqual(rules, tt.rules) {
					t.Errorf("rules = %q, want %q", rules, tt.rules)
				}
			}
			if t.Failed() {
				var buf bytes.Buffer
				res.WriteText(&buf)
				t.Log("\n" + buf.String())
			}
		})
	}
}

func TestExpansionLimit(t *testing.T) {
	res := New(testConfig(), testUsers, testAliases(t)).Resolve("fan0a@example.org")
	last := res.Targets[len(res.Targets)-1]
	want := Target{Kind: Refused, Address: "fan0a@example.org",
		Reason: fmt.Sprintf("alias expansion of more than %d addresses", MaxExpansions)}
	if last != want {
		t.Errorf("last target = %+v, want %+v", last, want)
	}
	if len(res.Steps) > 3*MaxExpansions {
		t.Errorf("%d steps: the limit did not stop the expansion", len(res.Steps))
	}
}

func TestStepsExplain(t *testing.T) {
	res := New(testConfig(), testUsers, testAliases(t)).Resolve("Postmaster+x@Example.NET")
	want := []Step{
		{Address: "postmaster+x@example.net", Rule: RuleSubAddress, Detail: `user "postmaster", extension "x"`},
		{Address: "postmaster@example.net", Rule: RuleAlias, Detail: "aliases:1 (bare name postmaster)"},
		{Address: "root@example.net", Rule: RuleCatchAll, Detail: "aliases:13", Depth: 1},
		{Address: "alice@example.org", Rule: RuleUser, Detail: "/mail/alice@example.org", Depth: 2},
	}
	if !reflect.DeepEqual(res.Steps, want) {
		t.Errorf("steps:\n got %+v\nwant %+v", res.Steps, want)
	}
}

func TestEmptyAlias(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "members")
	if err := os.WriteFile(empty, []byte("# none yet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tab, err := alias.Parse(strings.NewReader("team@example.org: :include:"+empty+"\n"), "aliases")
	if err != nil {
		t.Fatal(err)
	}
	res := New(testConfig(), testUsers, tab).Resolve("team@example.org")
	want := []Target{{Kind: Refused, Address: "team@example.org", Reason: "alias has no targets (an empty :include: file?)"}}
	if !reflect.DeepEqual(res.Targets, want) {
		t.Errorf("targets = %+v", res.Targets)
	}
}

func TestNilTables(t *testing.T) {
	res := New(testConfig(), nil, nil).Resolve("alice@example.org")
	if len(res.Targets) != 1 || res.Targets[0].Kind != Unknown {
		t.Errorf("targets = %+v, want one unknown", res.Targets)
	}
}

func TestNewCopiesConfig(t *testing.T) {
	c := testConfig()
	r := New(c, testUsers, nil)
	c.Domains[0] = "changed.example"
	c.Deliver.AllowPipeTargets = true
	if got := r.Resolve("alice@example.org").Targets; !reflect.DeepEqual(got, []Target{mailbox("alice@example.org")}) {
		t.Errorf("router changed with its config: %+v", got)
	}
}

func TestJSON(t *testing.T) {
	res := New(testConfig(), testUsers, testAliases(t)).Resolve("vacation@example.org")
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"address":"vacation@example.org","targets":[` +
		`{"kind":"refused","address":"vacation@example.org","command":"/usr/bin/vacation alice","reason":"pipe targets are disabled (allow_pipe_targets = no)"},` +
		`{"kind":"mailbox","address":"alice@example.org","root":"/mail/alice@example.org"}],"steps":[` +
		`{"address":"vacation@example.org","rule":"alias","detail":"aliases:9","depth":0},` +
		`{"address":"vacation@example.org","rule":"pipe","detail":"|/usr/bin/vacation alice from aliases:9","depth":1},` +
		`{"address":"alice@example.org","rule":"user","detail":"/mail/alice@example.org","depth":1}]}`
	if string(data) != want {
		t.Errorf("JSON:\n got %s\nwant %s", data, want)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil || !reflect.DeepEqual(back, res) {
		t.Errorf("JSON round trip: %v\n%+v", err, back)
	}
}

func TestWriteText(t *testing.T) {
	c := testConfig()
	c.Deliver.ExtensionFolder = true
	res := New(c, testUsers, testAliases(t)).Resolve("selfish+tag@example.org")
	var buf bytes.Buffer
	if err := res.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	want := `address selfish+tag@example.org
  sub-address: selfish+tag@example.org  user "selfish", extension "tag"
  alias: selfish@example.org  aliases:4
    alias names itself: selfish@example.org  aliases:4
    user: selfish@example.org  /mail/selfish@example.org
    alias: bob@example.org  aliases:6
      domain not hosted: carol@remote.example  not in domains
targets
  mailbox  selfish@example.org root="/mail/selfish@example.org" folder="tag"
  remote   carol@remote.example
`
	if buf.String() != want {
		t.Errorf("WriteText:\n%s\nwant\n%s", buf.String(), want)
	}
	empty := Result{Address: "x"}
	buf.Reset()
	if err := empty.WriteText(&buf); err != nil || !strings.Contains(buf.String(), "(none)") {
		t.Errorf("empty result text = %q, %v", buf.String(), err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWriteTextError(t *testing.T) {
	if err := (Result{Address: "x"}).WriteText(failWriter{}); err == nil {
		t.Error("WriteText hid a write error")
	}
}
