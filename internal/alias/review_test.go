package alias

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// TestIncludeFanOutBounded: :include: files that each include the next
// level many times make the work exponential in the nesting depth
// (50^7 file reads here). Whoever may edit a list file must not be able
// to hang every delivery that way: Load stops with an error after
// maxIncludeReads reads.
func TestIncludeFanOutBounded(t *testing.T) {
	const fanOut, levels = 50, maxIncludeDepth
	opens := 0
	open := func(path string) (io.ReadCloser, error) {
		opens++
		if opens > 10*maxIncludeReads {
			// Keep a failing run bounded in time.
			return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrPermission}
		}
		var level int
		if _, err := fmt.Sscanf(path, "/l%d", &level); err != nil {
			return nil, err
		}
		if level == levels-1 {
			return io.NopCloser(strings.NewReader("member\n")), nil
		}
		line := fmt.Sprintf(":include:/l%d\n", level+1)
		return io.NopCloser(strings.NewReader(strings.Repeat(line, fanOut))), nil
	}
	_, err := parse(strings.NewReader("bomb: :include:/l0\n"), "aliases", open)
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("parse error = %v, want the read limit", err)
	}
	if !strings.HasPrefix(err.Error(), "aliases:1:") {
		t.Errorf("error does not name the alias line: %v", err)
	}
	if opens > maxIncludeReads+1 {
		t.Errorf("%d include files opened, limit %d", opens, maxIncludeReads)
	}
}

// TestIncludeReadsWithinLimit: many aliases sharing one list file stay
// well within the limit.
func TestIncludeReadsWithinLimit(t *testing.T) {
	open := func(string) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("a, b\n")), nil }
	var in strings.Builder
	for i := 0; i < maxIncludeReads; i++ {
		fmt.Fprintf(&in, "list%d: :include:/list\n", i)
	}
	tab, err := parse(strings.NewReader(in.String()), "aliases", open)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _ := tab.Lookup("list0"); len(got) != 2 {
		t.Errorf("list0 = %v", got)
	}
}
