package listen

import (
	"fmt"
	"strings"
)

// FromFlags turns a daemon's configured addresses and its --listen flags
// into Wants. The first service is the default for a plain "ADDR"; a flag
// "NAME=ADDR" names its service. When any flag is given, the flags replace
// the configured addresses of every service (a service no flag names is
// not served).
func FromFlags(configured []Want, flags []string) ([]Want, error) {
	wants := make([]Want, len(configured))
	copy(wants, configured)
	if len(flags) == 0 || len(wants) == 0 {
		return wants, nil
	}
	names := make([]string, len(wants))
	for i := range wants {
		wants[i].Addrs = nil
		names[i] = wants[i].Name
	}
	for _, f := range flags {
		name, addr, named := strings.Cut(f, "=")
		if !named {
			name, addr = wants[0].Name, f
		}
		i := indexOf(names, name)
		if i < 0 {
			return nil, fmt.Errorf("--listen %s: unknown service %q (want %s)", f, name, strings.Join(names, " or "))
		}
		wants[i].Addrs = append(wants[i].Addrs, addr)
	}
	return wants, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
