package sendmail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailroom/internal/alias"
	"mailroom/internal/config"
	"mailroom/internal/route"
)

// Exit statuses (sysexits.h).
const (
	ExitOK       = 0
	ExitUsage    = 64 // EX_USAGE
	ExitDataErr  = 65 // EX_DATAERR
	ExitNoUser   = 67 // EX_NOUSER
	ExitTempFail = 75 // EX_TEMPFAIL
	ExitNoPerm   = 77 // EX_NOPERM
	ExitConfig   = 78 // EX_CONFIG
)

// System is what Run needs from the process, so tests can supply it.
type System struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// Getuid returns the real uid (nil: os.Getuid).
	Getuid func() int
	// LookupUser returns the login name and full name (GECOS) of a uid
	// (nil: os/user).
	LookupUser func(uid int) (login, fullName string, err error)
	// LookupEnv reads the environment (nil: empty); only NAME is used,
	// for the full name, as Postfix does.
	LookupEnv func(string) (string, bool)
	Now       func() time.Time // nil: time.Now
	// Mailname is the file naming the mail domain ("": /etc/mailname).
	Mailname string
}

// OSSystem is System for the real process.
func OSSystem() System {
	return System{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		LookupEnv: os.LookupEnv,
	}
}

func (s *System) fill() {
	if s.Getuid == nil {
		s.Getuid = os.Getuid
	}
	if s.LookupUser == nil {
		s.LookupUser = lookupUser
	}
	if s.LookupEnv == nil {
		s.LookupEnv = func(string) (string, bool) { return "", false }
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Mailname == "" {
		s.Mailname = "/etc/mailname"
	}
}

func lookupUser(uid int) (string, string, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return "", "", err
	}
	return u.Username, u.Name, nil
}

// run is one invocation: the options, the configuration, the process.
type run struct {
	opt    Options
	cfg    *config.Config
	sys    System
	prog   string
	origin string
}

// Run is the whole program: argv0 chooses sendmail, mailq or newaliases;
// args are the rest of the command line. It returns the exit status.
func Run(argv0 string, args []string, sys System) int {
	sys.fill()
	prog := progName(argv0)
	opt, err := ParseArgs(argv0, args)
	if err != nil {
		fmt.Fprintf(sys.Stderr, "%s: %v\n", prog, strings.TrimPrefix(err.Error(), "usage: "))
		return ExitUsage
	}
	if opt.Help {
		fmt.Fprint(sys.Stdout, Usage)
		return ExitOK
	}
	for _, w := range opt.Warnings {
		fmt.Fprintf(sys.Stderr, "%s: warning: %s\n", prog, w)
	}
	path := opt.ConfigPath
	if path == "" {
		path = config.DefaultPath
	}
	cfg, err := config.Load(path)
	switch {
	case err != nil && (opt.CheckConfig || opt.PrintConfig):
		fmt.Fprintf(sys.Stderr, "%s: %v\n", prog, err)
		return ExitConfig
	case err != nil:
		// Transient for the caller: the admin fixes the file, cron's
		// next mail goes through (X.3.5: system incorrectly configured).
		fmt.Fprintf(sys.Stderr, "%s: 4.3.5 mail system configuration error: %v\n", prog, err)
		return ExitTempFail
	}
	r := &run{opt: opt, cfg: cfg, sys: sys, prog: prog}
	r.origin = r.findOrigin()
	switch {
	case opt.CheckConfig:
		if err := cfg.Check(); err != nil {
			fmt.Fprintf(sys.Stderr, "%s: %s: %v\n", prog, path, err)
			return ExitConfig
		}
		fmt.Fprintf(sys.Stdout, "%s: ok\n", path)
		return ExitOK
	case opt.PrintConfig:
		if err := config.Print(sys.Stdout, cfg); err != nil {
			fmt.Fprintf(sys.Stderr, "%s: %v\n", prog, err)
			return ExitConfig
		}
		return ExitOK
	}
	switch opt.Mode {
	case ModeSMTP:
		return r.smtp()
	case ModeQueue:
		return r.mailq()
	case ModeAliases:
		return r.newaliases()
	case ModeVerify:
		return r.verify()
	case ModeRunQueue:
		return r.runQueue()
	}
	return r.submit()
}

// progName is how messages name the program.
func progName(argv0 string) string {
	name := argv0[strings.LastIndexByte(argv0, '/')+1:]
	switch name {
	case "mailq", "newaliases":
		return name
	}
	return "sendmail"
}

// fail writes one line to stderr and returns status.
func (r *run) fail(status int, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(r.sys.Stderr, "%s: %s\n", r.prog, strings.ReplaceAll(msg, "\n", " "))
	return status
}

// findOrigin is the domain for bare local names: [sendmail] origin, else
// the first line of /etc/mailname (Debian Policy §11.6), else hostname.
func (r *run) findOrigin() string {
	if r.cfg.Sendmail.Origin != "" {
		return r.cfg.Sendmail.Origin
	}
	if b, err := os.ReadFile(r.sys.Mailname); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		if name := strings.ToLower(strings.TrimSpace(line)); name != "" && !hasControl(name) && !strings.ContainsAny(name, " @") {
			return name
		}
	}
	return r.cfg.Hostname
}

// identity is the submitting user.
type identity struct {
	uid      int
	login    string
	fullName string
	trusted  bool
}

// errNoLogin: a uid without a passwd entry has no address to send as.
var errNoLogin = errors.New("no login name for the user")

func (r *run) identity() (identity, error) {
	uid := r.sys.Getuid()
	login, full, err := r.sys.LookupUser(uid)
	if err != nil || login == "" {
		return identity{}, fmt.Errorf("%w id %d: %v", errNoLogin, uid, err)
	}
	if i := strings.IndexByte(full, ','); i >= 0 {
		full = full[:i] // GECOS: name, room, phones...
	}
	if hasControl(full) {
		full = ""
	}
	id := identity{uid: uid, login: login, fullName: full}
	id.trusted = uid == 0 ||
		slices.Contains(r.cfg.Sendmail.TrustedUsers, login) ||
		slices.Contains(r.cfg.Sendmail.TrustedUsers, strconv.Itoa(uid))
	return id, nil
}

// ownAddress is the user's own address: login@origin.
func (r *run) ownAddress(id identity) string {
	return qualify(id.login, r.origin)
}

// chooseSender applies the trust rule to a requested envelope sender:
// root and trusted_users get what they ask; anyone may ask for the null
// sender, their own address, or an alias of theirs (an address the aliases
// file sends to them alone); anyone else's request is replaced by their
// own address (Exim's rule for untrusted -f; sendmail 8 would add an
// X-Authentication-Warning instead). The warning is "" when nothing changed.
func (r *run) chooseSender(id identity, requested string, set bool) (sender, warning string) {
	own := r.ownAddress(id)
	if !set {
		return own, ""
	}
	if requested == "" {
		return "", ""
	}
	want := qualify(requested, r.origin)
	if id.trusted || strings.EqualFold(want, own) || r.aliasOf(want, own) {
		return want, ""
	}
	return own, fmt.Sprintf("sender <%s> ignored: user %s is not in trusted_users; sending as <%s>", want, id.login, own)
}

// aliasOf reports whether the aliases file makes addr an alias of own
// alone: every final target of addr is own. Only the aliases file is read
// (mode 0644); the passwd file, which users cannot read, is not needed,
// since the answer depends on where the alias points, not on whether own
// has a mailbox. A file that cannot be read allows nothing.
func (r *run) aliasOf(addr, own string) bool {
	aliases, err := alias.Load(r.cfg.AliasesFile)
	if err != nil {
		return false
	}
	res := route.New(r.cfg, nil, aliases).Resolve(addr)
	if len(res.Targets) == 0 {
		return false
	}
	for _, tg := range res.Targets {
		if !strings.EqualFold(tg.Address, own) {
			return false
		}
	}
	return true
}

// fullName for a synthesised From: -F, else $NAME (Postfix), else GECOS.
func (r *run) fullName(id identity) string {
	if r.opt.FullName != "" {
		return r.opt.FullName
	}
	if v, ok := r.sys.LookupEnv("NAME"); ok && !hasControl(v) {
		return v
	}
	return id.fullName
}
