package fsx

import (
	"os"
	"path/filepath"
	"testing"
)

func TestResolveExisting(t *testing.T) {
	top, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(top, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(top, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{real, real},
		{link, real},
		{filepath.Join(link, "a", "b"), filepath.Join(real, "a", "b")},
		{filepath.Join(top, "none", "x"), filepath.Join(top, "none", "x")},
	} {
		got, err := ResolveExisting(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ResolveExisting(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	loop := filepath.Join(top, "loop")
	if err := os.Symlink(loop, loop); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveExisting(filepath.Join(loop, "x")); err == nil {
		t.Error("ResolveExisting through a symlink loop succeeded")
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		path, dir string
		want      bool
	}{
		{"/a/b", "/a", true},
		{"/a", "/a", true},
		{"/ab", "/a", false},
		{"/b", "/a", false},
		{"/anything", "/", true},
	} {
		if got := Within(tc.path, tc.dir); got != tc.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tc.path, tc.dir, got, tc.want)
		}
	}
}
