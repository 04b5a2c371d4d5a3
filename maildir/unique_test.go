package maildir

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUniqueBase(t *testing.T) {
	now := time.Unix(1732380000, 123456789)
	got := UniqueBase(now, "mx/1:a")
	re := regexp.MustCompile(fmt.Sprintf(`^1732380000\.M123456P%dQ(\d+)\.mx\\0571\\072a$`, os.Getpid()))
	if !re.MatchString(got) {
		t.Fatalf("UniqueBase = %q, want match %s", got, re)
	}
	if n, err := ParseName(WithSizes(got, 10, 12)); err != nil || n.Base != WithSizes(got, 10, 12) {
		t.Fatalf("unique name does not parse as a bare base: %+v %v", n, err)
	}
}

func TestUniqueBaseConcurrent(t *testing.T) {
	const workers, each = 8, 500
	now := time.Unix(1, 0) // same microsecond for everyone: only Q differs
	var mu sync.Mutex
	seen := make(map[string]bool, workers*each)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]string, 0, each)
			for i := 0; i < each; i++ {
				local = append(local, UniqueBase(now, "h"))
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range local {
				if seen[s] {
					t.Errorf("duplicate unique name %q", s)
				}
				seen[s] = true
			}
		}()
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d names, want %d", len(seen), workers*each)
	}
}

func TestEscapeHost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"mx.example.org", "mx.example.org"},
		{"", "localhost"},
		{"a/b", `a\057b`},
		{"a:b", `a\072b`},
		{"a,b", `a\054b`},
		{"/:,", `\057\072\054`},
	}
	for _, tc := range tests {
		if got := EscapeHost(tc.in); got != tc.want {
			t.Errorf("EscapeHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.ContainsAny(EscapeHost(tc.in), "/:,") {
			t.Errorf("EscapeHost(%q) still holds a separator", tc.in)
		}
	}
}

func TestWithSizes(t *testing.T) {
	if got := WithSizes("b", 0, 0); got != "b,S=0,W=0" {
		t.Errorf("WithSizes = %q", got)
	}
	n, _ := ParseName(WithSizes("1.M1P1Q1.h", 1234, 1300) + ":2,S")
	if s, ok := n.Size(); !ok || s != 1234 {
		t.Errorf("Size = %d %v", s, ok)
	}
	if s, ok := n.VSize(); !ok || s != 1300 {
		t.Errorf("VSize = %d %v", s, ok)
	}
}

func TestSizeCounter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		size   int64
		vsize  int64
	}{
		{"empty", nil, 0, 0},
		{"lf", []string{"a\nb\n"}, 4, 6},
		{"crlf", []string{"a\r\nb\r\n"}, 6, 6},
		{"mixed", []string{"a\r\nb\nc"}, 6, 7},
		{"lone cr", []string{"a\rb"}, 3, 3},
		{"crlf split", []string{"a\r", "\nb"}, 4, 4},
		{"lf split after lf", []string{"a\n", "\n"}, 3, 5},
		{"cr then empty then lf", []string{"a\r", "", "\n"}, 3, 3},
		{"leading lf", []string{"\n"}, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c SizeCounter
			for _, ch := range tc.chunks {
				if n, err := c.Write([]byte(ch)); n != len(ch) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if c.Size != tc.size || c.VSize != tc.vsize {
				t.Errorf("S=%d W=%d, want S=%d W=%d", c.Size, c.VSize, tc.size, tc.vsize)
			}
		})
	}
}
