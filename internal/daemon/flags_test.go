package daemon

import (
	"slices"
	"strings"
	"testing"

	"mailroom/internal/config"
)

// testSpec is a program with two services: "plain" (a --listen ADDR's)
// and "secure" (implicit TLS), on the [imapd] keys.
func testSpec(perService bool) *Spec {
	return &Spec{
		Name: "testd",
		Services: []Service{
			{Name: "plain", Addrs: func(c *config.Config) *[]string { return &c.Imapd.ListenIMAP },
				Reject: func(c *config.Config) string { return "BUSY " + c.Hostname }},
			{Name: "secure", ImplicitTLS: true, Addrs: func(c *config.Config) *[]string { return &c.Imapd.ListenIMAPS }},
		},
		ListenPerService: perService,
		Limits:           func(c *config.Config) (int64, int64) { return c.Imapd.MaxConnections, c.Imapd.MaxConnectionsPerClient },
		Fixed: []Fixed{
			{Key: "[testd] max_connections", Field: func(c *config.Config) any { return &c.Imapd.MaxConnections }},
		},
	}
}

func TestApplyListen(t *testing.T) {
	for _, tc := range []struct {
		perService    bool
		flags         []string
		plain, secure []string
		err           string
	}{
		{false, nil, []string{"127.0.0.1:1143"}, []string{"127.0.0.1:1993", "[::1]:1993"}, ""},
		{false, []string{":2143"}, []string{":2143"}, nil, ""},
		{false, []string{"secure=:2993"}, nil, []string{":2993"}, ""},
		{false, []string{"plain=:1", "secure=:2", ":3"}, []string{":1", ":3"}, []string{":2"}, ""},
		{false, []string{"pop3=:110"}, nil, nil, `unknown service "pop3" (want plain or secure)`},
		{false, []string{"plain="}, nil, nil, "empty address"},
		// Per service: a service no flag names keeps its addresses.
		{true, []string{":2143"}, []string{":2143"}, []string{"127.0.0.1:1993", "[::1]:1993"}, ""},
		{true, []string{"secure=:1", "secure=:2"}, []string{"127.0.0.1:1143"}, []string{":1", ":2"}, ""},
		{true, []string{"smtp=:25"}, nil, nil, "unknown service"},
	} {
		cfg := config.Default()
		cfg.Imapd.ListenIMAP = []string{"127.0.0.1:1143"}
		cfg.Imapd.ListenIMAPS = []string{"127.0.0.1:1993", "[::1]:1993"}
		spec := testSpec(tc.perService)
		err := applyListen(spec, cfg, tc.flags)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v %q: error %v, want %q", tc.perService, tc.flags, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v %q: %v", tc.perService, tc.flags, err)
			continue
		}
		// Applying the flags again (a reload does) changes nothing.
		if err := applyListen(spec, cfg, tc.flags); err != nil {
			t.Errorf("%v %q: again: %v", tc.perService, tc.flags, err)
		}
		w := wants(spec, cfg)
		if len(w) != 2 || w[0].Name != "plain" || w[1].Name != "secure" ||
			!slices.Equal(w[0].Addrs, tc.plain) || !slices.Equal(w[1].Addrs, tc.secure) {
			t.Errorf("%v %q: wants %+v, want plain %q secure %q", tc.perService, tc.flags, w, tc.plain, tc.secure)
		}
	}
}

func TestKeepFixed(t *testing.T) {
	spec := testSpec(false)
	old := config.Default()
	old.Imapd.ListenIMAP = []string{":143"}
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		keys   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"reloadable only", func(c *config.Config) { c.Hostname = "new.example"; c.Imapd.IdleTimeout = 1 }, nil},
		{"spool and user", func(c *config.Config) { c.SpoolDir = "/elsewhere"; c.Smtpd.User = "other" }, []string{"spool_dir", "[smtpd] user"}},
		{"listen and limit", func(c *config.Config) { c.Imapd.ListenIMAP = []string{":1143"}; c.Imapd.MaxConnections = 7 },
			[]string{"[testd] listen_plain", "[testd] max_connections"}},
		{"logging and mail root", func(c *config.Config) { c.LogLevel = "debug"; c.MailRoot = "/m"; c.LogFormat = "syslog" },
			[]string{"mail_root", "log_format", "log_level"}},
	} {
		next := *old
		next.Imapd.ListenIMAP = slices.Clone(old.Imapd.ListenIMAP)
		tc.change(&next)
		host := next.Hostname
		got := KeepFixed(old, &next, fixedKeys(spec))
		if !slices.Equal(got, tc.keys) {
			t.Errorf("%s: changed %q, want %q", tc.name, got, tc.keys)
		}
		// Every fixed key is back at its old value; the rest is new.
		if again := KeepFixed(old, &next, fixedKeys(spec)); again != nil {
			t.Errorf("%s: still changed after KeepFixed: %q", tc.name, again)
		}
		if next.Hostname != host {
			t.Errorf("%s: hostname %q, want the new %q", tc.name, next.Hostname, host)
		}
	}
}
