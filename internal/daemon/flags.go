package daemon

import (
	"fmt"
	"strings"

	"mailroom/internal/config"
	"mailroom/internal/listen"
)

// applyListen puts the --listen flags ("ADDR" for the first service,
// "NAME=ADDR") in place of cfg's addresses, as spec.ListenPerService
// says.
func applyListen(spec *Spec, cfg *config.Config, flags []string) error {
	if len(flags) == 0 {
		return nil
	}
	replaced := map[string]bool{}
	if !spec.ListenPerService {
		for _, sv := range spec.Services {
			*sv.Addrs(cfg) = nil
			replaced[sv.Name] = true
		}
	}
	for _, f := range flags {
		name, addr, named := strings.Cut(f, "=")
		if !named {
			name, addr = spec.Services[0].Name, f
		}
		sv := spec.service(name)
		if sv == nil {
			return fmt.Errorf("--listen %s: unknown service %q (want %s)", f, name, spec.serviceNames())
		}
		if addr == "" {
			return fmt.Errorf("--listen %s: empty address", f)
		}
		list := sv.Addrs(cfg)
		if !replaced[name] {
			*list, replaced[name] = nil, true
		}
		*list = append(*list, addr)
	}
	return nil
}

// wants are the services and their addresses, for listen.Open.
func wants(spec *Spec, cfg *config.Config) []listen.Want {
	out := make([]listen.Want, 0, len(spec.Services))
	for _, sv := range spec.Services {
		out = append(out, listen.Want{Name: sv.Name, Addrs: *sv.Addrs(cfg)})
	}
	return out
}
