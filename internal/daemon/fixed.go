package daemon

import (
	"reflect"

	"mailroom/internal/config"
)

// Fixed is a configuration key read only at start: a reload keeps its
// old value and warns that changing it needs a restart.
type Fixed struct {
	Key string // as mailroom.conf spells it: "spool_dir", "[smtpd] user"
	// Field returns a pointer to the key's field in a configuration.
	Field func(*config.Config) any
}

// CommonFixed are the keys no program can change while running: the
// directories it opened or dropped privileges for, the user it became,
// and the logger it writes with.
var CommonFixed = []Fixed{
	{"spool_dir", func(c *config.Config) any { return &c.SpoolDir }},
	{"mail_root", func(c *config.Config) any { return &c.MailRoot }},
	{"log_format", func(c *config.Config) any { return &c.LogFormat }},
	{"log_level", func(c *config.Config) any { return &c.LogLevel }},
	{"[smtpd] user", func(c *config.Config) any { return &c.Smtpd.User }},
}

// KeepFixed gives next the old value of every key in fixed and returns,
// in order, the keys whose value next had changed.
func KeepFixed(old, next *config.Config, fixed []Fixed) []string {
	var changed []string
	for _, f := range fixed {
		was := reflect.ValueOf(f.Field(old)).Elem()
		now := reflect.ValueOf(f.Field(next)).Elem()
		if reflect.DeepEqual(was.Interface(), now.Interface()) {
			continue
		}
		changed = append(changed, f.Key)
		now.Set(was)
	}
	return changed
}

// fixedKeys are every key the daemon running spec keeps: CommonFixed, the
// services' addresses and the program's own.
func fixedKeys(spec *Spec) []Fixed {
	out := append([]Fixed(nil), CommonFixed...)
	for _, sv := range spec.Services {
		key := "[" + spec.Name + "] listen_" + sv.Name
		out = append(out, Fixed{Key: key, Field: func(c *config.Config) any { return sv.Addrs(c) }})
	}
	return append(out, spec.Fixed...)
}
