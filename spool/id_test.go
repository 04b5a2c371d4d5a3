package spool

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewIDIsWellFormedAndIncreasing(t *testing.T) {
	prev := NewID()
	for i := 0; i < 10000; i++ {
		id := NewID()
		if _, err := ParseID(string(id)); err != nil {
			t.Fatalf("NewID made %q: %v", id, err)
		}
		if id <= prev {
			t.Fatalf("ids not increasing: %q after %q", id, prev)
		}
		prev = id
	}
}

func TestNewIDConcurrentUnique(t *testing.T) {
	const workers, each = 8, 2000
	var mu sync.Mutex
	seen := make(map[ID]bool, workers*each)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]ID, each)
			for i := range ids {
				ids[i] = NewID()
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
}

func TestIDTime(t *testing.T) {
	tests := []time.Time{
		time.Unix(0, 0),
		time.Date(2025, 11, 23, 21, 56, 0, 123456000, time.UTC),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for _, when := range tests {
		id := encodeID(uint64(when.UnixMicro()), 12345)
		if _, err := ParseID(string(id)); err != nil {
			t.Errorf("%v: %v", when, err)
		}
		if got := id.Time(); !got.Equal(when) {
			t.Errorf("%v: id %s has time %v", when, id, got)
		}
	}
	// Later times sort later, as strings.
	a := encodeID(uint64(tests[1].UnixMicro()), 1<<44)
	b := encodeID(uint64(tests[1].UnixMicro())+1, 0)
	if a >= b {
		t.Errorf("%s should sort before %s", a, b)
	}
}

func TestParseID(t *testing.T) {
	good := string(encodeID(uint64(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro()), 99))
	tests := []struct {
		in string
		ok bool
	}{
		{good, true},
		{"0000000000000000000z", true},
		{"7zzzzzzzzzzzzzzzzzzz", true},
		{"zzzzzzzzzzzzzzzzzzzz", true}, // the year 3111
		{"zzzzzzzzzzzzzzzzzzz\x00", false},
		{"", false},
		{good[:19], false},
		{good + "0", false},
		{strings.ToUpper(good), false},
		{"000000000000000000iu", false}, // i, u not in the alphabet
		{"../../../etc/passwd0", false},
		{"0000000000/000000000", false},
		{"00000000000000000.00", false},
	}
	for _, tc := range tests {
		id, err := ParseID(tc.in)
		if tc.ok && (err != nil || string(id) != tc.in) {
			t.Errorf("ParseID(%q) = %q, %v; want ok", tc.in, id, err)
		}
		if !tc.ok && (err == nil || !errors.Is(err, ErrBadID)) {
			t.Errorf("ParseID(%q) = %q, %v; want ErrBadID", tc.in, id, err)
		}
	}
}

func FuzzParseID(f *testing.F) {
	f.Add(string(NewID()))
	f.Add("0000000000000000000z")
	f.Add("zzzzzzzzzzzzzzzzzzzz")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if string(id) != s || len(s) != IDLength {
			t.Fatalf("ParseID(%q) = %q", s, id)
		}
		// A valid id is safe as one path element and round-trips its time.
		if strings.ContainsAny(s, "/.\x00 ") {
			t.Fatalf("id %q is not file-name safe", s)
		}
		back := encodeID(uint64(id.Time().UnixMicro()), 0)
		if back[:idTimeChars] != id[:idTimeChars] {
			t.Fatalf("time of %q does not round-trip: %q", s, back)
		}
	})
}
