package alias

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func addr(v string, line int) Target {
	return Target{Kind: Address, Value: v, From: Source{"aliases", line}}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		key  string
		want []Target
		src  int
	}{
		{"simple", "postmaster: root\n", "postmaster", []Target{addr("root", 1)}, 1},
		{"lookup lower-cases", "Postmaster: root\n", "POSTMASTER", []Target{addr("root", 1)}, 1},
		{"several", "staff: alice, bob@example.org ,carol\n", "staff",
			[]Target{addr("alice", 1), addr("bob@example.org", 1), addr("carol", 1)}, 1},
		{"full address name", "Sales@Example.ORG: alice\n", "sales@example.org", []Target{addr("alice", 1)}, 1},
		{"catch-all", "@example.org: alice\n", "@example.org", []Target{addr("alice", 1)}, 1},
		{"comments and blank lines", "# head\n\n  # indented\nx: y\n", "x", []Target{addr("y", 4)}, 4},
		{"continuation", "list: a,\n  b,\n\tc\n", "list", []Target{addr("a", 1), addr("b", 2), addr("c", 3)}, 1},
		{"continuation over comment", "list: a,\n# note\n b\n", "list", []Target{addr("a", 1), addr("b", 3)}, 1},
		{"trailing comma", "x: a, b,\n", "x", []Target{addr("a", 1), addr("b", 1)}, 1},
		{"CRLF", "x: a\r\n", "x", []Target{addr("a", 1)}, 1},
		{"pipe", "vac: |/usr/bin/vacation alice\n", "vac",
			[]Target{{Kind: Pipe, Value: "/usr/bin/vacation alice", From: Source{"aliases", 1}}}, 1},
		{"quoted pipe with comma", `p: "|/bin/sh -c 'a, b'", x` + "\n", "p",
			[]Target{{Kind: Pipe, Value: "/bin/sh -c 'a, b'", From: Source{"aliases", 1}}, addr("x", 1)}, 1},
		{"quoted escape", `p: "|echo \"hi\""` + "\n", "p",
			[]Target{{Kind: Pipe, Value: `echo "hi"`, From: Source{"aliases", 1}}}, 1},
		{"file", "log: /var/log/mail.copy\n", "log",
			[]Target{{Kind: File, Value: "/var/log/mail.copy", From: Source{"aliases", 1}}}, 1},
		{"quoted file", `log: "/var/log/my file"` + "\n", "log",
			[]Target{{Kind: File, Value: "/var/log/my file", From: Source{"aliases", 1}}}, 1},
		{"verbatim", `alice: \alice, bob` + "\n", "alice",
			[]Target{{Kind: Address, Value: "alice", Verbatim: true, From: Source{"aliases", 1}}, addr("bob", 1)}, 1},
		{"quoted name", `"odd name": x` + "\n", "odd name", []Target{addr("x", 1)}, 1},
		{"quoted name with colon", `"a:b": x` + "\n", "a:b", []Target{addr("x", 1)}, 1},
		{"colon in target", "x: a@b\ny: z\n", "y", []Target{addr("z", 2)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tt.in), "aliases")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, src, ok := tab.Lookup(tt.key)
			if !ok {
				t.Fatalf("Lookup(%q) not found; names %v", tt.key, tab.Names())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("targets = %+v\nwant %+v", got, tt.want)
			}
			if src != (Source{"aliases", tt.src}) {
				t.Errorf("source = %v, want aliases:%d", src, tt.src)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no colon", "# x\nalice bob\n", `aliases:2: want "name: target, ..."`},
		{"empty name", ": x\n", `aliases:1: empty alias name`},
		{"blank in name", "a b: x\n", `aliases:1: alias name "a b" contains a blank`},
		{"no targets", "x:\n", `aliases:1: alias "x" has no targets`},
		{"only commas", "x: , ,\n", `alias "x" has no targets`},
		{"duplicate", "x: a\ny: b\nX: c\n", `aliases:3: alias "x" already defined at aliases:1`},
		{"continuation first", "  x: a\n", `aliases:1: continuation line with no alias above it`},
		{"unterminated quote", "x: \"|cmd\n", `aliases:1: target "|cmd: unterminated quote`},
		{"unterminated quote in target", "x: a, \"b\n", `target "b: unterminated quote`},
		{"blank in address", "x: a b\n", `address "a b" contains a blank`},
		{"error on continuation line", "x: a,\n  b c\n", `aliases:2: address "b c"`},
		{"two ats", "x: a@b@c\n", `more than one @`},
		{"empty local", "x: @example.org\n", `empty local part`},
		{"empty domain", "x: a@\n", `empty domain`},
		{"name empty domain", "x@: a\n", `alias name "x@" has an empty domain`},
		{"name two ats", "a@b@c: a\n", `more than one @`},
		{"empty pipe", "x: |\n", `empty command after |`},
		{"root file", "x: /\n", `names no file`},
		{"verbatim pipe", `x: \|cmd` + "\n", `\ before pipe target`},
		{"relative include", "x: :include:list\n", `:include: path "list" is not absolute`},
		{"missing include", "x: :include:/nonexistent/mailroom/list\n", `aliases:1: :include: open /nonexistent/mailroom/list`},
		{"invalid utf8", "x: \xff\n", `aliases:1: invalid UTF-8`},
		{"control in name", "\"a\x01\": b\n", `control character`},
		{"nul target", "x: \"a\x00\"\n", `contains`},
		{"long line", "x: " + strings.Repeat("a", maxLineLength) + "\n", `aliases:1: line longer than`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, err := Parse(strings.NewReader(tt.in), "aliases")
			if err == nil {
				t.Fatalf("Parse succeeded (%v); want error containing %q", tab.Names(), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInclude(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "list")
	inner := filepath.Join(dir, "inner")
	empty := filepath.Join(dir, "empty")
	writeFile(t, list, "# members\nalice, bob@example.net\n\ncarol\n:include:"+inner+"\n")
	writeFile(t, inner, "dave\n")
	writeFile(t, empty, "# nobody yet\n")
	in := "staff: root, :include:" + list + "\nnone: :INCLUDE:" + empty + "\n"
	tab, err := Parse(strings.NewReader(in), "aliases")
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := tab.Lookup("staff")
	want := []Target{
		addr("root", 1),
		{Kind: Address, Value: "alice", From: Source{list, 2}},
		{Kind: Address, Value: "bob@example.net", From: Source{list, 2}},
		{Kind: Address, Value: "carol", From: Source{list, 4}},
		{Kind: Address, Value: "dave", From: Source{inner, 1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("staff = %+v\nwant %+v", got, want)
	}
	if got, _, ok := tab.Lookup("none"); !ok || len(got) != 0 {
		t.Errorf("none = %v, %v; want found and empty", got, ok)
	}
}

func TestIncludeErrors(t *testing.T) {
	dir := t.TempDir()
	pipe := filepath.Join(dir, "pipe")
	file := filepath.Join(dir, "file")
	loopA := filepath.Join(dir, "a")
	loopB := filepath.Join(dir, "b")
	bad := filepath.Join(dir, "bad")
	writeFile(t, pipe, "alice\n|/bin/evil\n")
	writeFile(t, file, "/etc/passwd\n")
	writeFile(t, loopA, ":include:"+loopB+"\n")
	writeFile(t, loopB, ":include:"+loopA+"\n")
	writeFile(t, bad, "ok, not ok\n")
	deep := make([]string, maxIncludeDepth+2)
	for i := range deep {
		deep[i] = filepath.Join(dir, "deep"+string(rune('a'+i)))
	}
	for i := range deep {
		next := "x\n"
		if i+1 < len(deep) {
			next = ":include:" + deep[i+1] + "\n"
		}
		writeFile(t, deep[i], next)
	}
	tests := []struct{ name, target, want string }{
		{"pipe", pipe, "aliases:1: :include: " + pipe + `:2: pipe target "/bin/evil" not allowed in an :include: file`},
		{"file", file, `file target "/etc/passwd" not allowed in an :include: file`},
		{"loop", loopA, ":include: loop: " + loopA + " -> " + loopB + " -> " + loopA},
		{"bad line", bad, bad + `:1: address "not ok"`},
		{"too deep", deep[0], "nested deeper than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader("x: :include:"+tt.target+"\n"), "aliases")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	tab, err := Load(filepath.Join(dir, "missing"))
	if err != nil {
		t.Fatalf("Load(missing) = %v, want no error", err)
	}
	if tab.Len() != 0 {
		t.Errorf("missing file gave %d aliases", tab.Len())
	}
	path := filepath.Join(dir, "aliases")
	writeFile(t, path, "b: x\na: y\n")
	tab, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Names(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Names = %v", got)
	}
	if _, src, _ := tab.Lookup("b"); src != (Source{path, 1}) {
		t.Errorf("source = %v", src)
	}
	writeFile(t, path, "b: x\nbroken\n")
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("Load error = %v, want prefix %s:2:", err, path)
	}
	if _, err := Load(dir); err == nil {
		t.Error("Load(directory) succeeded")
	}
}

func TestNilTable(t *testing.T) {
	var tab *Table
	if _, _, ok := tab.Lookup("x"); ok {
		t.Error("nil table found an alias")
	}
	if tab.Len() != 0 || tab.Names() != nil {
		t.Error("nil table is not empty")
	}
}

func TestLookupReturnsCopy(t *testing.T) {
	tab, err := Parse(strings.NewReader("x: a, b\n"), "aliases")
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := tab.Lookup("x")
	got[0].Value = "changed"
	again, _, _ := tab.Lookup("x")
	if again[0].Value != "a" {
		t.Error("Lookup exposed the table's slice")
	}
}
