package alias

import (
	"io"
	"io/fs"
	"strings"
	"testing"
)

// noFiles keeps the fuzzer from opening whatever path it invents
// (/dev/stdin would block).
func noFiles(path string) (io.ReadCloser, error) {
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

// FuzzParse checks that Parse never panics, that errors name the file, and
// that every accepted alias is found again by its lower-cased name with
// well-formed targets.
func FuzzParse(f *testing.F) {
	f.Add("postmaster: root\n")
	f.Add("list: a,\n  b@example.org,\n\t\"|/usr/bin/x y\"\n# c\n@example.org: catch\n")
	f.Add(`"quoted name": \self, /var/log/f, "a,b"@x` + "\n")
	f.Add("x: :include:/nonexistent\n")
	f.Add("x: \"unterminated\n")
	f.Fuzz(func(t *testing.T, in string) {
		tab, err := parse(strings.NewReader(in), "fuzz", noFiles)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") && !strings.Contains(err.Error(), ":include:") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, name := range tab.Names() {
			if name != strings.ToLower(name) || name == "" {
				t.Fatalf("name %q not lower-case or empty", name)
			}
			targets, src, ok := tab.Lookup(strings.ToUpper(name))
			if !ok && strings.ToLower(strings.ToUpper(name)) == name {
				t.Fatalf("Lookup(%q) failed", name)
			}
			if ok && (src.File != "fuzz" || src.Line < 1) {
				t.Fatalf("bad source %v", src)
			}
			for _, tg := range targets {
				if tg.Value == "" {
					t.Fatalf("empty target in %q", name)
				}
				if tg.Kind == File && tg.Value[0] != '/' {
					t.Fatalf("file target %q not absolute", tg.Value)
				}
			}
		}
	})
}
