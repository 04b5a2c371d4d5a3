package route

import (
	"strings"
	"testing"
	"time"

	"mailroom/internal/alias"
)

// FuzzResolve checks that Resolve never panics, terminates promptly
// whatever the alias table, and always explains itself.
func FuzzResolve(f *testing.F) {
	f.Add("a: b\nb: a\n", "a@example.org")
	f.Add("a: a, b\n@example.org: a\n", "A+x@EXAMPLE.org")
	f.Add("x@example.org: |cmd, /f, \\y, z@remote.example\n", "x@example.org")
	f.Add("a: b, c\nb: c, a\nc: a, b\n", "c+@example.org")
	f.Add("", "../x@example.org")
	f.Fuzz(func(t *testing.T, aliasText, address string) {
		if strings.Contains(strings.ToLower(aliasText), ":include:") {
			return // keep the fuzzer off the real file system
		}
		tab, err := alias.Parse(strings.NewReader(aliasText), "fuzz")
		if err != nil {
			return
		}
		c := testConfig()
		c.Deliver.ExtensionFolder = true
		r := New(c, testUsers, tab)
		done := make(chan Result, 1)
		go func() { done <- r.Resolve(address) }()
		var res Result
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Resolve(%q) did not terminate", address)
		}
		if len(res.Targets) == 0 || len(res.Steps) == 0 {
			t.Fatalf("no targets or no steps: %+v", res)
		}
		seen := map[Target]bool{}
		for _, tg := range res.Targets {
			if seen[tg] {
				t.Fatalf("duplicate target %+v", tg)
			}
			seen[tg] = true
			switch tg.Kind {
			case Mailbox:
				if tg.Root == "" || strings.Contains(tg.Folder, "/") {
					t.Fatalf("bad mailbox target %+v", tg)
				}
			case Unknown, Refused:
				if tg.Reason == "" {
					t.Fatalf("%s target without reason", tg.Kind)
				}
			case Remote, Pipe, File:
			default:
				t.Fatalf("unknown kind %q", tg.Kind)
			}
		}
		for _, s := range res.Steps {
			if s.Depth < 0 || s.Depth > MaxDepth+1 {
				t.Fatalf("step depth %d", s.Depth)
			}
		}
	})
}
