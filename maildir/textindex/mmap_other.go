//go:build !linux

package textindex

import "syscall"

// mapFlags: see mmap_linux.go.
const mapFlags = syscall.MAP_SHARED
