package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDotLockExclusive(t *testing.T) {
	target := filepath.Join(t.TempDir(), "dovecot-uidlist")
	l, err := CreateDotLock(target, DotLockOptions{StaleTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(target + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if string(data) != strconv.Itoa(os.Getpid())+":"+host {
		t.Fatalf("lock content %q, want pid:host", data)
	}
	// A second attempt with no wait fails: the holder (us) is alive.
	if _, err := CreateDotLock(target, DotLockOptions{StaleTimeout: 2 * time.Minute}); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(target + ".lock"); !os.IsNotExist(err) {
		t.Fatalf("lock not removed: %v", err)
	}
}

func TestDotLockStale(t *testing.T) {
	host, _ := os.Hostname()
	old := time.Now().Add(-10 * time.Second)
	tests := []struct {
		name    string
		content string
		mtime   time.Time
		now     func() time.Time
		stale   bool
	}{
		{"dead local pid", "999999999:" + host, old, nil, true},
		{"dead pid but lock too new to check", "999999999:" + host, time.Now(), nil, false},
		{"live pid (init)", "1:" + host, old, nil, false},
		{"other host, fresh", "123:elsewhere.example", old, nil, false},
		{"other host, untouched past stale timeout", "123:elsewhere.example", old,
			func() time.Time { return time.Now().Add(3 * time.Minute) }, true},
		{"empty lock past stale timeout", "", old,
			func() time.Time { return time.Now().Add(3 * time.Minute) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(target+".lock", []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(target+".lock", tt.mtime, tt.mtime); err != nil {
				t.Fatal(err)
			}
			l, err := CreateDotLock(target, DotLockOptions{StaleTimeout: 2 * time.Minute, Now: tt.now})
			if tt.stale {
				if err != nil {
					t.Fatalf("stale lock not overridden: %v", err)
				}
				if err := l.Release(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrLockTimeout) {
				t.Fatalf("live lock overridden: %v", err)
			}
		})
	}
}

func TestDotLockReleaseDetectsOverride(t *testing.T) {
	target := filepath.Join(t.TempDir(), "f")
	l, err := CreateDotLock(target, DotLockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(target + ".lock"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target+".lock", []byte("1:other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); !errors.Is(err, ErrLockOverridden) {
		t.Fatalf("release = %v", err)
	}
	if data, _ := os.ReadFile(target + ".lock"); !strings.HasPrefix(string(data), "1:") {
		t.Fatal("someone else's lock was removed")
	}
}

func TestDotLockWaitsForRelease(t *testing.T) {
	target := filepath.Join(t.TempDir(), "f")
	l, err := CreateDotLock(target, DotLockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		l2, err := CreateDotLock(target, DotLockOptions{Timeout: 20 * time.Second})
		if err == nil {
			err = l2.Release()
		}
		got <- err
	}()
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
