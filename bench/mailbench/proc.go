package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// What the benchmarks read of a server's process tree in /proc (Linux):
// its members, their CPU time and their memory.

// procStat is what /proc/<pid>/stat says about the parent and the CPU
// time in clock ticks (utime+stime+cutime+cstime).
type procStat struct {
	ppid int
	cpu  int64
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var st procStat
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, err
	}
	for _, k := range f[11:15] {
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return procStat{}, err
		}
		st.cpu += v
	}
	return st, nil
}

// processTree returns tops and all their living descendants, with their
// stats.
func processTree(tops ...int) map[int]procStat {
	all := map[int]procStat{}
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, de := range ents {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil {
			all[pid] = st
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	tree := map[int]procStat{}
	queue := append([]int(nil), tops...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		st, ok := all[p]
		if _, seen := tree[p]; !ok || seen {
			continue
		}
		tree[p] = st
		queue = append(queue, children[p]...)
	}
	return tree
}

// kbField is the number after key in a /proc file of "Key: n kB" lines
// (status, smaps_rollup); 0 when absent.
func kbField(text []byte, key string) int64 {
	for _, line := range strings.Split(string(text), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return 0
}
