package test

// The units test keeps etc/systemd/, etc/inetd.conf and etc/xinetd.d/ true
// to the programs and to the configuration defaults:
//
//   - scripts/lint-units.sh (systemd-analyze verify) passes, and fails on a
//     broken unit;
//   - every Accept=no socket names a service unit that exists and pulls it
//     in, and its FileDescriptorName is one of the names the daemons know
//     (internal/listen: smtp, submission, submissions, pop3, pop3s, imap,
//     imaps), each
//     name exactly once, on its well-known port;
//   - every Accept=yes socket has its template, whose --service matches the
//     port, and systemd's connection limits equal the daemon's defaults;
//   - every service is Type=notify, carries the whole sandbox exactly once,
//     may write exactly the config defaults spool_dir and mail_root its
//     program writes, and runs as the user docs/security.md gives it;
//   - every program path (units, inetd.conf, xinetd.d) is mailroom's, all in
//     one directory (/usr/sbin or /usr/lib/mailroom), with --config naming
//     the default configuration file;
//   - every Documentation= man page exists in man/.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/testutil"
	"mailroom/internal/tlsconf"
	"mailroom/spool"
)

const (
	unitsDir         = "../etc/systemd"
	perConnectionDir = "../etc/systemd/per-connection"
	inetdConfPath    = "../etc/inetd.conf"
	xinetdDir        = "../etc/xinetd.d"
	// mailOwner owns mail_root, the Maildirs and the spool (docs/security.md).
	mailOwner = "vmail"
)

// listenerService is one service a daemon offers: its FileDescriptorName
// (and /etc/services name), the program serving it and its port.
type listenerService struct {
	name string
	prog string
	port int
}

var listenerServices = []listenerService{
	{"smtp", "smtpd", 25},
	{"submission", "smtpd", 587},
	{"submissions", "smtpd", 465},
	{"pop3", "pop3d", 110},
	{"pop3s", "pop3d", 995},
	{"imap", "imapd", 143},
	{"imaps", "imapd", 993},
}

func serviceNamed(name string) (listenerService, bool) {
	for _, s := range listenerServices {
		if s.name == name {
			return s, true
		}
	}
	return listenerService{}, false
}

// sandbox is the hardening every service unit carries, each key once.
// CapabilityBoundingSet= empty: no capability at all, even if started as root.
var sandbox = map[string]string{
	"NoNewPrivileges":         "yes",
	"CapabilityBoundingSet":   "",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"ProtectKernelTunables":   "yes",
	"ProtectKernelModules":    "yes",
	"ProtectKernelLogs":       "yes",
	"ProtectControlGroups":    "yes",
	"ProtectClock":            "yes",
	"ProtectHostname":         "yes",
	"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
	"RestrictNamespaces":      "yes",
	"RestrictRealtime":        "yes",
	"RestrictSUIDSGID":        "yes",
	"LockPersonality":         "yes",
	"MemoryDenyWriteExecute":  "yes",
	"SystemCallArchitectures": "native",
	"SystemCallFilter":        "@system-service",
}

// programProfile is what a program's units must say about who it runs as
// and where it may write (docs/security.md, internal/config defaults).
type programProfile struct {
	user, group   string
	supplementary []string
	writes        []string
}

func profiles(cfg *config.Config) map[string]programProfile {
	return map[string]programProfile{
		// Every daemon runs in the primary group of the [smtpd] user
		// (mailroom): the spool's group, and the group that may read the
		// passwd file and the TLS key (privs.MailIDs, docs/security.md).
		// smtpd: its own user.
		"smtpd": {cfg.Smtpd.User, cfg.Smtpd.User, nil, []string{cfg.SpoolDir}},
		// pop3d, imapd and deliver --queue: the owner of mail_root, as
		// they make themselves when started as root.
		"pop3d":   {mailOwner, cfg.Smtpd.User, nil, []string{cfg.MailRoot}},
		"imapd":   {mailOwner, cfg.Smtpd.User, nil, []string{cfg.MailRoot}},
		"deliver": {mailOwner, cfg.Smtpd.User, nil, []string{cfg.SpoolDir, cfg.MailRoot}},
	}
}

// unit is a parsed systemd unit file: per section, each key's assignments
// in order ("Key=" included, as an empty value).
type unit struct {
	name     string
	sections map[string]map[string][]string
}

// parseUnit reads the subset of systemd.syntax(7) the units use. A line
// continuation is refused rather than half understood.
func parseUnit(name, text string) (*unit, error) {
	u := &unit{name: name, sections: map[string]map[string][]string{}}
	var section map[string][]string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case strings.HasSuffix(line, `\`):
			return nil, fmt.Errorf("%s:%d: line continuation", name, n)
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = map[string][]string{}
			u.sections[line[1:len(line)-1]] = section
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == nil {
			return nil, fmt.Errorf("%s:%d: not a key=value line in a section: %q", name, n, line)
		}
		key = strings.TrimSpace(key)
		section[key] = append(section[key], strings.TrimSpace(value))
	}
	return u, sc.Err()
}

// values is every assignment of key in section.
func (u *unit) values(section, key string) []string { return u.sections[section][key] }

// get is the one assignment of key, or "" and false when there is not
// exactly one.
func (u *unit) get(section, key string) (string, bool) {
	v := u.values(section, key)
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// list is a whitespace-separated list setting, as systemd accumulates it:
// assignments add, an empty one resets.
func (u *unit) list(section, key string) []string {
	var out []string
	for _, v := range u.values(section, key) {
		if v == "" {
			out = nil
			continue
		}
		out = append(out, strings.Fields(v)...)
	}
	return out
}

func loadUnits(t *testing.T, dir string) map[string]*unit {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	units := map[string]*unit{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		u, err := parseUnit(e.Name(), string(text))
		if err != nil {
			t.Fatal(err)
		}
		units[e.Name()] = u
	}
	if len(units) == 0 {
		t.Fatalf("no units in %s", dir)
	}
	return units
}

func requireTool(t *testing.T, path string) string {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("MAILROOM_REQUIRE_INTEROP") == "1" {
			t.Fatalf("%s is required (MAILROOM_REQUIRE_INTEROP=1): %v", path, err)
		}
		t.Skipf("%s not available: %v", path, err)
	}
	return path
}

func TestLintUnits(t *testing.T) {
	requireTool(t, "/usr/bin/systemd-analyze")
	out, err := exec.Command("../scripts/lint-units.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/lint-units.sh: %v\n%s", err, out)
	}
}

// TestLintUnitsCatches runs the lint on a copy of the tree with one unit
// broken at a time: each must make it fail.
func TestLintUnitsCatches(t *testing.T) {
	requireTool(t, "/usr/bin/systemd-analyze")
	// old is replaced by new in unit; an empty old removes the unit.
	tests := []struct{ name, unit, old, new, want string }{
		{"unknown key", "mailroom-smtpd.service",
			"\n[Service]\n", "\n[Service]\nProtectKernelFoo=yes\n", "Unknown key"},
		{"program not mailroom's", "mailroom-deliver.service",
			"\nExecStart=/usr/sbin/deliver ", "\nExecStart=/usr/sbin/delivr ", "not executable"},
		{"bad descriptor name", "mailroom-pop3s.socket",
			"\nFileDescriptorName=pop3s\n", "\nFileDescriptorName=pop:3s\n", "Invalid file descriptor name"},
		{"template missing", "per-connection/mailroom-pop3-accept@.service", "", "", "not loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := copyLintTree(t)
			path := filepath.Join(top, "etc/systemd", tt.unit)
			if tt.old == "" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				text, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				broken := strings.Replace(string(text), tt.old, tt.new, 1)
				if broken == string(text) {
					t.Fatalf("the test's change did not apply to %s", tt.unit)
				}
				if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			out, err := exec.Command(filepath.Join(top, "scripts/lint-units.sh")).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("lint passed a broken unit (err %v):\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("lint output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

// copyLintTree makes the parts of the checkout lint-units.sh reads: the
// script, etc/systemd, and cmd/'s directories (their names are the
// programs).
func copyLintTree(t *testing.T) string {
	t.Helper()
	top := t.TempDir()
	copyFile := func(src, dst string, mode os.FileMode) error {
		text, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, text, mode)
	}
	if err := copyFile("../scripts/lint-units.sh", filepath.Join(top, "scripts/lint-units.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(unitsDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel("..", path)
		if err != nil {
			return err
		}
		return copyFile(path, filepath.Join(top, rel), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	progs, err := os.ReadDir("../cmd")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range progs {
		if err := os.MkdirAll(filepath.Join(top, "cmd", p.Name()), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return top
}

// TestSockets checks the Accept=no sockets: one per listener service, named
// as the daemons expect, on the well-known port, feeding a service that
// exists and wants it.
func TestSockets(t *testing.T) {
	units := loadUnits(t, unitsDir)
	seen := map[string]string{}
	for name, u := range units {
		if !strings.HasSuffix(name, ".socket") {
			continue
		}
		fdName, ok := u.get("Socket", "FileDescriptorName")
		if !ok {
			t.Errorf("%s: want exactly one FileDescriptorName=", name)
			continue
		}
		svc, ok := serviceNamed(fdName)
		if !ok {
			t.Errorf("%s: FileDescriptorName=%s is no service the daemons know", name, fdName)
			continue
		}
		if other, dup := seen[fdName]; dup {
			t.Errorf("%s and %s both name %s", name, other, fdName)
		}
		seen[fdName] = name
		if want := "mailroom-" + svc.name + ".socket"; name != want {
			t.Errorf("%s: the socket for %s is called %s", name, svc.name, want)
		}
		if accept, _ := u.get("Socket", "Accept"); accept != "" && accept != "no" {
			t.Errorf("%s: Accept=%s; the per-connection sockets belong in per-connection/", name, accept)
		}
		if got := u.list("Socket", "ListenStream"); !slices.Equal(got, []string{strconv.Itoa(svc.port)}) {
			t.Errorf("%s: ListenStream %q, want %d", name, got, svc.port)
		}
		wantService := "mailroom-" + svc.prog + ".service"
		service, _ := u.get("Socket", "Service")
		if service != wantService {
			t.Errorf("%s: Service=%q, want %s", name, service, wantService)
		}
		target, ok := units[service]
		if !ok {
			t.Errorf("%s: Service=%s does not exist in etc/systemd", name, service)
			continue
		}
		for _, key := range []string{"Wants", "After"} {
			if !slices.Contains(target.list("Unit", key), name) {
				t.Errorf("%s: %s= lacks %s, which feeds it", service, key, name)
			}
		}
		if !slices.Contains(target.list("Install", "Also"), name) {
			t.Errorf("%s: Also= lacks %s, so enabling the service leaves it off", service, name)
		}
		if got := u.list("Install", "WantedBy"); !slices.Equal(got, []string{"sockets.target"}) {
			t.Errorf("%s: WantedBy=%q, want sockets.target", name, got)
		}
	}
	for _, s := range listenerServices {
		if seen[s.name] == "" {
			t.Errorf("no socket has FileDescriptorName=%s", s.name)
		}
	}
	// Every socket a service wants exists and feeds that service.
	for name, u := range units {
		if !strings.HasSuffix(name, ".service") {
			continue
		}
		for _, s := range u.list("Unit", "Wants") {
			if !strings.HasSuffix(s, ".socket") {
				continue
			}
			if sock, ok := units[s]; !ok {
				t.Errorf("%s: Wants=%s, which does not exist", name, s)
			} else if got, _ := sock.get("Socket", "Service"); got != name {
				t.Errorf("%s: Wants=%s, which feeds %q", name, s, got)
			}
		}
	}
}

// TestPerConnectionSockets checks the Accept=yes alternatives: each has its
// template, which serves the port's service, and systemd's limits are the
// daemon's defaults (which cannot count across processes).
func TestPerConnectionSockets(t *testing.T) {
	cfg := config.Default()
	limits := map[string][2]int64{
		"smtpd": {cfg.Smtpd.MaxConnections, cfg.Smtpd.MaxConnectionsPerClient},
		"pop3d": {cfg.Pop3d.MaxConnections, cfg.Pop3d.MaxConnectionsPerClient},
		"imapd": {cfg.Imapd.MaxConnections, cfg.Imapd.MaxConnectionsPerClient},
	}
	units := loadUnits(t, perConnectionDir)
	mains := loadUnits(t, unitsDir)
	seen := map[string]bool{}
	for name, u := range units {
		if !strings.HasSuffix(name, ".socket") {
			continue
		}
		if accept, _ := u.get("Socket", "Accept"); accept != "yes" {
			t.Errorf("%s: Accept=%q, want yes", name, accept)
		}
		if v := u.values("Socket", "Service"); v != nil {
			t.Errorf("%s: Service=%q; an Accept=yes socket starts <socket>@.service", name, v)
		}
		ports := u.list("Socket", "ListenStream")
		svc, ok := listenerService{}, false
		for _, s := range listenerServices {
			if slices.Equal(ports, []string{strconv.Itoa(s.port)}) {
				svc, ok = s, true
			}
		}
		if !ok {
			t.Errorf("%s: ListenStream %q is no listener's port", name, ports)
			continue
		}
		seen[svc.name] = true
		if want := "mailroom-" + svc.name + "-accept.socket"; name != want {
			t.Errorf("%s: the per-connection socket for %s is called %s", name, svc.name, want)
		}
		// It takes the Accept=no socket's port, so they must not run together.
		mainSocket := "mailroom-" + svc.name + ".socket"
		if _, ok := mains[mainSocket]; !ok || !slices.Contains(u.list("Unit", "Conflicts"), mainSocket) {
			t.Errorf("%s: want Conflicts=%s (an existing unit on the same port)", name, mainSocket)
		}
		lim := limits[svc.prog]
		for i, key := range []string{"MaxConnections", "MaxConnectionsPerSource"} {
			if got, _ := u.get("Socket", key); got != strconv.FormatInt(lim[i], 10) {
				t.Errorf("%s: %s=%q, want %d (the %s default)", name, key, got, lim[i], svc.prog)
			}
		}
		template := strings.TrimSuffix(name, ".socket") + "@.service"
		tu, ok := units[template]
		if !ok {
			t.Errorf("%s: its template %s does not exist", name, template)
			continue
		}
		args := execArgs(t, tu)
		if filepath.Base(args[0]) != svc.prog || !hasFlag(args, "--service", svc.name) {
			t.Errorf("%s: ExecStart %q, want %s --service %s", template, args, svc.prog, svc.name)
		}
	}
	for _, s := range listenerServices {
		if !seen[s.name] {
			t.Errorf("no per-connection socket for %s", s.name)
		}
	}
	for name := range units {
		if strings.HasSuffix(name, "@.service") {
			if _, ok := units[strings.TrimSuffix(name, "@.service")+".socket"]; !ok {
				t.Errorf("%s: no socket starts it", name)
			}
		}
	}
}

// execArgs is a unit's one ExecStart=, split into words (the units quote
// nothing).
func execArgs(t *testing.T, u *unit) []string {
	t.Helper()
	v, ok := u.get("Service", "ExecStart")
	if !ok || len(strings.Fields(v)) == 0 {
		t.Fatalf("%s: want exactly one ExecStart=", u.name)
	}
	return strings.Fields(v)
}

// hasFlag reports whether args has flag followed by value.
func hasFlag(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

// serviceProgram is the program a service unit runs: mailroom-<prog>.service
// or mailroom-<listener>-accept@.service.
func serviceProgram(name string) (string, bool) {
	if base, ok := strings.CutSuffix(name, "-accept@.service"); ok {
		svc, ok := serviceNamed(strings.TrimPrefix(base, "mailroom-"))
		return svc.prog, ok
	}
	base, ok := strings.CutSuffix(name, ".service")
	return strings.TrimPrefix(base, "mailroom-"), ok && strings.HasPrefix(base, "mailroom-")
}

// TestServices checks every service unit, long-running and per-connection:
// readiness, command line, user, writable paths and the whole sandbox.
func TestServices(t *testing.T) {
	cfg := config.Default()
	profs := profiles(cfg)
	all := map[string]*unit{}
	for _, dir := range []string{unitsDir, perConnectionDir} {
		for name, u := range loadUnits(t, dir) {
			switch {
			case strings.HasSuffix(name, ".service"):
				all[name] = u
			case strings.HasSuffix(name, ".socket"):
			default:
				t.Errorf("%s/%s: not a unit kind this test knows", dir, name)
			}
		}
	}
	longRunning := 0
	for name, u := range all {
		prog, ok := serviceProgram(name)
		prof, known := profs[prog]
		if !ok || !known {
			t.Errorf("%s: runs no program this test knows", name)
			continue
		}
		perConnection := strings.HasSuffix(name, "@.service")
		if !perConnection {
			longRunning++
		}
		if got, _ := u.get("Service", "Type"); got != "notify" {
			t.Errorf("%s: Type=%q, want notify (the daemons send READY=1)", name, got)
		}
		args := execArgs(t, u)
		if filepath.Base(args[0]) != prog || !hasFlag(args, "--config", config.DefaultPath) {
			t.Errorf("%s: ExecStart %q, want %s --config %s", name, args, prog, config.DefaultPath)
		}
		if prog == "deliver" && !slices.Contains(args, "--queue") {
			t.Errorf("%s: ExecStart %q lacks --queue", name, args)
		}
		if slices.Contains(args, "--inetd") || (!perConnection && slices.Contains(args, "--service")) {
			t.Errorf("%s: ExecStart %q: --inetd/--service are for single connections", name, args)
		}
		if !perConnection {
			if got, _ := u.get("Service", "ExecReload"); !strings.Contains(got, "-HUP $MAINPID") {
				t.Errorf("%s: ExecReload=%q, want a SIGHUP to $MAINPID", name, got)
			}
		}
		user, _ := u.get("Service", "User")
		group, _ := u.get("Service", "Group")
		if user != prof.user || group != prof.group {
			t.Errorf("%s: User=%q Group=%q, want %s and %s", name, user, group, prof.user, prof.group)
		}
		if got := u.list("Service", "SupplementaryGroups"); !slices.Equal(got, prof.supplementary) {
			t.Errorf("%s: SupplementaryGroups %q, want %q", name, got, prof.supplementary)
		}
		if got := u.list("Service", "ReadWritePaths"); !slices.Equal(got, prof.writes) {
			t.Errorf("%s: ReadWritePaths %q, want the config defaults %q", name, got, prof.writes)
		}
		checkSandbox(t, u)
	}
	if longRunning != len(profs) {
		t.Errorf("%d long-running services, want one per program: %d", longRunning, len(profs))
	}
}

// checkSandbox checks the hardening keys: each exactly once (a second
// SystemCallFilter= or ReadWritePaths= line would widen the first), with
// the value wanted, and a umask that gives others nothing.
func checkSandbox(t *testing.T, u *unit) {
	t.Helper()
	for key, want := range sandbox {
		got := u.values("Service", key)
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s=%q, want exactly one %s=%s", u.name, key, got, key, want)
		}
	}
	for _, key := range []string{"AmbientCapabilities", "ReadWritePaths", "UMask"} {
		if n := len(u.values("Service", key)); key != "AmbientCapabilities" && n != 1 {
			t.Errorf("%s: %d %s= lines, want one", u.name, n, key)
		}
	}
	if got := u.values("Service", "AmbientCapabilities"); len(got) != 0 {
		t.Errorf("%s: AmbientCapabilities=%q: no capability is needed", u.name, got)
	}
	umask, _ := u.get("Service", "UMask")
	mask, err := strconv.ParseUint(umask, 8, 32)
	if err != nil || mask&0o007 != 0o007 || mask > 0o777 {
		t.Errorf("%s: UMask=%q, want an octal umask masking every bit for others", u.name, umask)
	}
	for _, key := range []string{"User", "Group"} {
		if v, _ := u.get("Service", key); v == "" || v == "root" || v == "0" {
			t.Errorf("%s: %s=%q: the daemons never run as root", u.name, key, v)
		}
	}
}

// inetdLine is one service line of inetd.conf(5).
type inetdLine struct {
	service, socketType, protocol, wait, user, program string
	argv                                               []string
}

func loadInetdConf(t *testing.T) []inetdLine {
	t.Helper()
	text, err := os.ReadFile(inetdConfPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []inetdLine
	for n, line := range strings.Split(string(text), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 7 {
			t.Fatalf("inetd.conf:%d: %d fields, want service type protocol wait user program argv...", n+1, len(f))
		}
		lines = append(lines, inetdLine{f[0], f[1], f[2], f[3], f[4], f[5], f[6:]})
	}
	return lines
}

// TestInetdConf checks the inetd.conf example: one line per listener
// service, each starting the right program as the right user with
// --inetd --service <the line's service>.
func TestInetdConf(t *testing.T) {
	profs := profiles(config.Default())
	seen := map[string]bool{}
	for _, l := range loadInetdConf(t) {
		svc, ok := serviceNamed(l.service)
		if !ok {
			t.Errorf("inetd.conf: %s is no listener service", l.service)
			continue
		}
		seen[l.service] = true
		if l.socketType != "stream" || (l.protocol != "tcp" && l.protocol != "tcp6") ||
			(l.wait != "nowait" && !strings.HasPrefix(l.wait, "nowait.")) {
			t.Errorf("inetd.conf %s: %s %s %s, want stream tcp nowait", l.service, l.socketType, l.protocol, l.wait)
		}
		// openbsd-inetd's user[:group]: without a group the user's primary
		// group applies, which is right only for smtpd's own user.
		want := profs[svc.prog].user
		if g := profs[svc.prog].group; g != want {
			want += ":" + g
		}
		if l.user != want {
			t.Errorf("inetd.conf %s: user %q, want %s", l.service, l.user, want)
		}
		if filepath.Base(l.program) != svc.prog || l.argv[0] != svc.prog {
			t.Errorf("inetd.conf %s: program %s argv[0] %s, want %s", l.service, l.program, l.argv[0], svc.prog)
		}
		wantArgs := []string{"--config", config.DefaultPath, "--inetd", "--service", l.service}
		if !slices.Equal(l.argv[1:], wantArgs) {
			t.Errorf("inetd.conf %s: arguments %q, want %q", l.service, l.argv[1:], wantArgs)
		}
	}
	for _, s := range listenerServices {
		if !seen[s.name] {
			t.Errorf("inetd.conf has no line for %s", s.name)
		}
	}
}

// xinetdService is one "service NAME { ... }" block of xinetd.conf(5).
type xinetdService struct {
	name  string
	attrs map[string]string
}

func loadXinetd(t *testing.T, path string) []xinetdService {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []xinetdService
	var cur *xinetdService
	open := false
	for n, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case cur == nil && strings.HasPrefix(line, "service "):
			cur = &xinetdService{name: strings.TrimSpace(strings.TrimPrefix(line, "service ")), attrs: map[string]string{}}
		case cur != nil && !open && line == "{":
			open = true
		case cur != nil && open && line == "}":
			out = append(out, *cur)
			cur, open = nil, false
		case cur != nil && open:
			key, value, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s:%d: not an attribute: %q", path, n+1, line)
			}
			key, value = strings.TrimSpace(key), strings.TrimSpace(value)
			if _, dup := cur.attrs[key]; dup {
				t.Fatalf("%s:%d: %s twice", path, n+1, key)
			}
			cur.attrs[key] = value
		default:
			t.Fatalf("%s:%d: unexpected %q", path, n+1, line)
		}
	}
	if cur != nil {
		t.Fatalf("%s: service %s not closed", path, cur.name)
	}
	return out
}

// TestXinetd checks etc/xinetd.d/mailroom-<prog>: exactly the program's
// services, each run as its user with --inetd --service <the block's name>
// and the daemon's connection limits.
func TestXinetd(t *testing.T) {
	cfg := config.Default()
	profs := profiles(cfg)
	limits := map[string][2]int64{
		"smtpd": {cfg.Smtpd.MaxConnections, cfg.Smtpd.MaxConnectionsPerClient},
		"pop3d": {cfg.Pop3d.MaxConnections, cfg.Pop3d.MaxConnectionsPerClient},
		"imapd": {cfg.Imapd.MaxConnections, cfg.Imapd.MaxConnectionsPerClient},
	}
	for _, prog := range []string{"smtpd", "pop3d", "imapd"} {
		path := filepath.Join(xinetdDir, "mailroom-"+prog)
		var got, want []string
		for _, s := range listenerServices {
			if s.prog == prog {
				want = append(want, s.name)
			}
		}
		for _, s := range loadXinetd(t, path) {
			got = append(got, s.name)
			a := s.attrs
			prof := profs[prog]
			wantGroups := "no"
			if len(prof.supplementary) > 0 {
				wantGroups = "yes"
			}
			checks := map[string]string{
				"socket_type": "stream", "protocol": "tcp", "wait": "no",
				"user": prof.user, "group": prof.group, "groups": wantGroups,
				"server_args": strings.Join([]string{"--config", config.DefaultPath, "--inetd", "--service", s.name}, " "),
				"instances":   strconv.FormatInt(limits[prog][0], 10),
				"per_source":  strconv.FormatInt(limits[prog][1], 10),
			}
			for key, w := range checks {
				if a[key] != w {
					t.Errorf("%s service %s: %s = %q, want %q", path, s.name, key, a[key], w)
				}
			}
			if filepath.Base(a["server"]) != prog {
				t.Errorf("%s service %s: server = %q, want %s", path, s.name, a["server"], prog)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: services %q, want %q", path, got, want)
		}
	}
}

// TestProgramPaths checks that every program path the units and the inetd
// examples name is one of mailroom's programs (a directory in cmd/), all in
// one directory, /usr/sbin or /usr/lib/mailroom, so that one sed line in
// make install can move them together.
func TestProgramPaths(t *testing.T) {
	entries, err := os.ReadDir("../cmd")
	if err != nil {
		t.Fatal(err)
	}
	var progs []string
	for _, e := range entries {
		progs = append(progs, e.Name())
	}
	paths := map[string]string{} // path -> where it was found
	for _, dir := range []string{unitsDir, perConnectionDir} {
		for name, u := range loadUnits(t, dir) {
			if strings.HasSuffix(name, ".service") {
				paths[execArgs(t, u)[0]] = name
			}
		}
	}
	for _, l := range loadInetdConf(t) {
		paths[l.program] = "inetd.conf " + l.service
	}
	xinetdFiles, err := filepath.Glob(filepath.Join(xinetdDir, "*"))
	if err != nil || len(xinetdFiles) == 0 {
		t.Fatalf("no xinetd files (%v)", err)
	}
	for _, f := range xinetdFiles {
		for _, s := range loadXinetd(t, f) {
			paths[s.attrs["server"]] = filepath.Base(f) + " " + s.name
		}
	}
	dirs := map[string]bool{}
	for p, where := range paths {
		dirs[filepath.Dir(p)] = true
		if !filepath.IsAbs(p) || !slices.Contains(progs, filepath.Base(p)) {
			t.Errorf("%s: %s is not one of mailroom's programs %q", where, p, progs)
		}
		if d := filepath.Dir(p); d != "/usr/sbin" && d != "/usr/lib/mailroom" {
			t.Errorf("%s: %s is neither in /usr/sbin nor in /usr/lib/mailroom", where, p)
		}
	}
	if len(dirs) != 1 {
		t.Errorf("programs in %d directories, want one: %v", len(dirs), paths)
	}
}

// TestDocumentation checks that every man page a unit points to exists in
// man/ (lint-units.sh runs verify with --man=no: the pages are not
// installed where it runs).
func TestDocumentation(t *testing.T) {
	for _, dir := range []string{unitsDir, perConnectionDir} {
		for name, u := range loadUnits(t, dir) {
			docs := u.list("Unit", "Documentation")
			if len(docs) == 0 {
				t.Errorf("%s: no Documentation=", name)
			}
			for _, d := range docs {
				page, ok := strings.CutPrefix(d, "man:")
				if !ok {
					continue
				}
				base, section, ok := strings.Cut(strings.TrimSuffix(page, ")"), "(")
				if !ok {
					t.Errorf("%s: Documentation=%s is not man:NAME(SECTION)", name, d)
					continue
				}
				if _, err := os.Stat(filepath.Join("../man", base+"."+section)); err != nil {
					t.Errorf("%s: Documentation=%s: %v", name, d, err)
				}
			}
		}
	}
}

func TestMain(m *testing.M) { testutil.RunMain(m) }

// TestInetdLinesServe runs every line of etc/inetd.conf as inetd would (the
// connection on standard input and output, the line's argv, only --config
// pointed at a test configuration) against the real programs: each greets
// in its protocol, over TLS for submissions, pop3s and imaps, and ends at
// QUIT (LOGOUT).
func TestInetdLinesServe(t *testing.T) {
	bins := testutil.BuildBinaries(t, "mailroom/cmd/smtpd", "mailroom/cmd/pop3d", "mailroom/cmd/imapd")
	mailRoot := testutil.TempMaildirRoot(t)
	uid, gid := testutil.ShareMailRoot(t, mailRoot)
	dir := filepath.Dir(mailRoot)
	spoolDir := filepath.Join(dir, "spool")
	if err := spool.Setup(spoolDir); err != nil {
		t.Fatal(err)
	}
	if err := spool.SetOwner(spoolDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := tlsconf.WriteSelfSigned(cert, key, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"passwd", "aliases"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Started by root (as on CI), smtpd drops to [smtpd] user; pop3d to the
	// owner of mail_root, which ShareMailRoot made nobody.
	conf := fmt.Sprintf("hostname = mx.example.org\ndomains = example.org\nmail_root = %s\n"+
		"spool_dir = %s\npasswd_file = %s\naliases_file = %s\ntls_cert = %s\ntls_key = %s\n[smtpd]\nuser = nobody\n",
		mailRoot, spoolDir, filepath.Join(dir, "passwd"), filepath.Join(dir, "aliases"), cert, key)
	confPath := filepath.Join(dir, "mailroom.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("cannot load the test certificate")
	}
	// Per program: the greeting, the command that ends the session and
	// its reply.
	replies := map[string][3]string{"smtpd": {"220 ", "QUIT", "221 "}, "pop3d": {"+OK ", "QUIT", "+OK"},
		"imapd": {"* OK ", "a LOGOUT", "* BYE "}}
	for _, l := range loadInetdConf(t) {
		t.Run(l.service, func(t *testing.T) {
			prog := filepath.Base(l.program)
			args := slices.Clone(l.argv[1:])
			i := slices.Index(args, "--config")
			if i < 0 || i+1 >= len(args) {
				t.Fatalf("%q has no --config FILE", args)
			}
			args[i+1] = confPath
			client := serveInetd(t, bins[prog], args)
			if l.service == "submissions" || l.service == "pop3s" || l.service == "imaps" { // implicit TLS, RFC 8314
				client = tls.Client(client, &tls.Config{ServerName: "localhost", RootCAs: roots})
			}
			r := bufio.NewReader(client)
			want := replies[prog]
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, want[0]) {
				t.Fatalf("greeting %q (%v), want %q...", line, err, want[0])
			}
			if _, err := io.WriteString(client, want[1]+"\r\n"); err != nil {
				t.Fatal(err)
			}
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, want[2]) {
				t.Fatalf("%s: %q (%v), want %q...", want[1], line, err, want[2])
			}
		})
	}
}

// serveInetd does inetd's part: accept one connection on 127.0.0.1 and run
// the program with it as standard input and output. It returns the client's
// end; the program must exit 0 by the end of the test.
func serveInetd(t *testing.T, program string, args []string) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if err := client.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := server.(*net.TCPConn).File()
	server.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cmd := exec.CommandContext(ctx, program, args...)
	var stderr strings.Builder
	cmd.Stdin, cmd.Stdout, cmd.Stderr = fd, fd, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer cancel()
		if err := cmd.Wait(); err != nil {
			t.Errorf("%s %q: %v\n%s", filepath.Base(program), args, err, stderr.String())
		}
	})
	return client
}
