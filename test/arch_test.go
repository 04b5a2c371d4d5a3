// Package test holds the repository-wide checks; test/e2e holds the
// multi-process tests.
//
// The architecture test keeps DESIGN.md §3 true as the tree grows:
//
//   - Program packages (deliver, smtpd, imapd, pop3d, sendmail, and admin,
//     the "mailroom" command), each with its cmd/<name> wrapper, never
//     depend on one another. They share only maildir, spool and internal/...
//   - Shared packages never depend on a program package, nor on
//     internal/testutil.
//   - A third-party wire library is used by the programs it belongs to:
//     go-smtp (and its go-sasl) by smtpd alone (deliver's remote client is
//     our own, for PIPELINING); go-imap by no program at all (its client
//     drives imapd's tests, which this test does not restrict).
//   - Every package of the module has a place in this scheme; a new
//     top-level package fails the test until it is given one here.
//
// Only production code is checked: tests may import what they need.
package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "mailroom"

// programs are the program groups; admin is the "mailroom" command.
var programs = []string{"deliver", "smtpd", "imapd", "pop3d", "sendmail", "admin"}

// wireLibraries maps a module path prefix to the program groups allowed to
// depend on it. None: tests only.
var wireLibraries = []struct {
	prefix  string
	allowed []string
}{
	{"github.com/emersion/go-smtp", []string{"smtpd"}},
	{"github.com/emersion/go-sasl", []string{"smtpd"}},
	{"github.com/emersion/go-imap", nil},
}

// A role is where a package of the module sits.
type role struct {
	kind    string // "program", "shared", "tool" or "unknown"
	program string // for kind "program": its group
}

func classify(importPath string) role {
	rest, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return role{kind: "unknown"}
	}
	top, sub, _ := strings.Cut(rest, "/")
	switch top {
	case "maildir", "spool", "internal":
		return role{kind: "shared"}
	case "bench", "test":
		return role{kind: "tool"}
	case "cmd":
		name, _, _ := strings.Cut(sub, "/")
		if name == "mailroom" {
			name = "admin"
		}
		if slices.Contains(programs, name) {
			return role{kind: "program", program: name}
		}
		return role{kind: "unknown"}
	}
	if slices.Contains(programs, top) {
		return role{kind: "program", program: top}
	}
	return role{kind: "unknown"}
}

// listedPackage is the part of `go list -json` output the test reads.
type listedPackage struct {
	ImportPath string
	Standard   bool
	Deps       []string // transitive, sorted
	Error      *struct{ Err string }
}

func inModule(path string) bool {
	return path == module || strings.HasPrefix(path, module+"/")
}

func hasPathPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// violations returns one line per broken rule, for the module's packages
// among pkgs.
func violations(pkgs []listedPackage) []string {
	var out []string
	for _, p := range pkgs {
		if !inModule(p.ImportPath) {
			continue
		}
		r := classify(p.ImportPath)
		if r.kind == "unknown" {
			out = append(out, fmt.Sprintf("%s: not a program, shared or tool package; give it a place in test/arch_test.go", p.ImportPath))
			continue
		}
		if r.kind == "tool" {
			continue
		}
		for _, d := range p.Deps {
			if v := checkDep(p.ImportPath, r, d); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// checkDep judges one dependency d of package p, which has role r (program
// or shared).
func checkDep(p string, r role, d string) string {
	if inModule(d) {
		dr := classify(d)
		switch {
		case d == module+"/internal/testutil":
			return fmt.Sprintf("%s depends on %s, which is for tests only", p, d)
		case dr.kind == "program" && r.kind == "shared":
			return fmt.Sprintf("shared package %s depends on program package %s", p, d)
		case dr.kind == "program" && dr.program != r.program:
			return fmt.Sprintf("%s (program %s) depends on %s (program %s)", p, r.program, d, dr.program)
		}
		return ""
	}
	for _, lib := range wireLibraries {
		if hasPathPrefix(d, lib.prefix) && !slices.Contains(lib.allowed, r.program) {
			who := "shared package " + p
			if r.kind == "program" {
				who = fmt.Sprintf("%s (program %s)", p, r.program)
			}
			if lib.allowed == nil {
				return fmt.Sprintf("%s depends on %s, which only tests may use", who, d)
			}
			return fmt.Sprintf("%s depends on %s, which only %s may use", who, d, strings.Join(lib.allowed, " and "))
		}
	}
	return ""
}

// goListDeps runs `go list -e -deps -json` over the whole module. -e keeps
// half-written packages in the listing (with an Error) instead of failing:
// their build is other tests' business, their imports are ours.
func goListDeps(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-json", module+"/...")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestArchitecture(t *testing.T) {
	pkgs := goListDeps(t)
	var mine []string
	for _, p := range pkgs {
		if !inModule(p.ImportPath) {
			continue
		}
		mine = append(mine, p.ImportPath)
		if p.Error != nil {
			t.Logf("%s does not build (not judged here): %s", p.ImportPath, p.Error.Err)
		}
	}
	// The listing must have reached the module: a test that saw nothing
	// would pass for nothing.
	for _, want := range []string{module + "/maildir", module + "/internal/fsx"} {
		if !slices.Contains(mine, want) {
			t.Fatalf("go list did not report %s; it reported %v", want, mine)
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

func TestViolations(t *testing.T) {
	tests := []struct {
		name string
		pkg  listedPackage
		want string // a substring of the single violation; "" for none
	}{
		{"program uses shared", listedPackage{ImportPath: "mailroom/deliver",
			Deps: []string{"mailroom/maildir", "mailroom/internal/fsx", "os"}}, ""},
		{"cmd uses its program", listedPackage{ImportPath: "mailroom/cmd/deliver",
			Deps: []string{"mailroom/deliver", "mailroom/spool"}}, ""},
		{"admin command uses admin", listedPackage{ImportPath: "mailroom/cmd/mailroom",
			Deps: []string{"mailroom/admin", "github.com/urfave/cli/v2"}}, ""},
		{"program uses another program", listedPackage{ImportPath: "mailroom/smtpd",
			Deps: []string{"mailroom/deliver"}}, "(program smtpd) depends on mailroom/deliver (program deliver)"},
		{"cmd uses another program", listedPackage{ImportPath: "mailroom/cmd/mailroom",
			Deps: []string{"mailroom/imapd/wire"}}, "(program admin) depends on mailroom/imapd/wire (program imapd)"},
		{"shared uses a program", listedPackage{ImportPath: "mailroom/internal/config",
			Deps: []string{"mailroom/sendmail"}}, "shared package mailroom/internal/config depends on program package"},
		{"production uses testutil", listedPackage{ImportPath: "mailroom/maildir",
			Deps: []string{"mailroom/internal/testutil", "testing"}}, "for tests only"},
		{"smtpd uses go-smtp", listedPackage{ImportPath: "mailroom/smtpd",
			Deps: []string{"github.com/emersion/go-smtp", "github.com/emersion/go-sasl"}}, ""},
		{"deliver uses go-smtp", listedPackage{ImportPath: "mailroom/cmd/deliver",
			Deps: []string{"github.com/emersion/go-smtp"}}, "only smtpd may use"},
		{"imapd uses go-smtp", listedPackage{ImportPath: "mailroom/imapd",
			Deps: []string{"github.com/emersion/go-smtp"}}, "only smtpd may use"},
		{"shared uses go-sasl", listedPackage{ImportPath: "mailroom/internal/account",
			Deps: []string{"github.com/emersion/go-sasl"}}, "shared package mailroom/internal/account depends on github.com/emersion/go-sasl"},
		{"imapd uses go-imap", listedPackage{ImportPath: "mailroom/imapd",
			Deps: []string{"github.com/emersion/go-imap/v2/imapserver"}}, "only tests may use"},
		{"tools are free", listedPackage{ImportPath: "mailroom/bench/mailbench",
			Deps: []string{"mailroom/deliver", "github.com/emersion/go-imap/v2"}}, ""},
		{"unknown top-level package", listedPackage{ImportPath: "mailroom/webmail"}, "give it a place"},
		{"unknown command", listedPackage{ImportPath: "mailroom/cmd/lmtpd"}, "give it a place"},
		{"outside the module", listedPackage{ImportPath: "github.com/emersion/go-smtp",
			Deps: []string{"github.com/emersion/go-sasl"}}, ""},
		{"prefix is not a path prefix", listedPackage{ImportPath: "mailroom/pop3d",
			Deps: []string{"github.com/emersion/go-smtpish", "mailroom/maildir"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := violations([]listedPackage{tt.pkg})
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("violations = %q, want none", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("violations = %q, want one containing %q", got, tt.want)
			}
		})
	}
}
