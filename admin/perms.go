package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"mailroom/internal/config"
	"mailroom/spool"
)

// What "mailroom check" expects of owners and modes (docs/security.md):
//
//   - the spool (spool_dir and the directories in it) belongs to the owner
//     of mail_root (vmail, the queue daemon's user) with the daemons' group
//     (the primary group of [smtpd] user, mailroom), with exactly the modes
//     spool.Setup gives them;
//   - the passwd file belongs to root or vmail, group mailroom, mode 0640:
//     readable by the daemons through their group (they read it again on
//     SIGHUP, after leaving root), writable by nobody else, never by others;
//   - the TLS key is readable by group mailroom and not by others;
//   - mail_root is owned by neither uid 0 nor gid 0 (deliver started by
//     root becomes its owner and refuses root) and not writable by group or
//     others; mailroom.conf is not writable by others;
//   - [smtpd] user exists.
//
// Every problem is one line: the path, what is wrong, and a shell command
// that fixes it.

// The lookups of users and groups; tests replace them to check ownership
// logic without root and without the real mailroom and vmail users.
var (
	lookupUser    = user.Lookup
	lookupUserID  = user.LookupId
	lookupGroupID = user.LookupGroupId
)

// ident is a uid or gid and the name a fix command gives it; id -1 means
// unknown (then nothing is compared, but the name still goes into fixes).
type ident struct {
	id   int
	name string
}

// expectedIDs are the owners an installation's shared files should have.
type expectedIDs struct {
	owner ident // the owner of mail_root and of the spool (vmail)
	group ident // the daemons' group: [smtpd] user's primary group (mailroom)
}

// Names used in fixes when the real ids are unknown (docs/security.md).
const (
	defaultOwnerName = "vmail"
	defaultGroupName = "mailroom"
)

// resolveIDs finds the expected owner (the owner of mail_root, when it is
// not root) and group (the primary group of [smtpd] user) and reports the
// problems met on the way: a missing or root [smtpd] user.
func resolveIDs(cfg *config.Config) (expectedIDs, []string) {
	ids := expectedIDs{owner: ident{-1, defaultOwnerName}, group: ident{-1, defaultGroupName}}
	var problems []string
	if st, err := os.Stat(cfg.MailRoot); err == nil {
		if uid, _ := ownerOf(st); uid > 0 {
			ids.owner = ident{uid, userName(uid)}
		}
	}
	name := cfg.Smtpd.User
	u, err := lookupUser(name)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("[smtpd] user %s: %v: smtpd cannot drop to it and the spool's group is unknown; fix: adduser --system --group --no-create-home %s",
			name, err, shellQuote(name)))
	case u.Uid == "0" || u.Gid == "0":
		problems = append(problems, fmt.Sprintf("[smtpd] user %s: uid %s, gid %s: the daemons refuse to run as root; fix: adduser --system --group --no-create-home %s and set [smtpd] user = %s in mailroom.conf",
			name, u.Uid, u.Gid, defaultGroupName, defaultGroupName))
	default:
		if gid, err := strconv.Atoi(u.Gid); err == nil {
			ids.group = ident{gid, groupName(gid)}
		}
	}
	return ids, problems
}

// userName is the login name of uid, or the number.
func userName(uid int) string {
	if u, err := lookupUserID(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// groupName is the name of gid, or the number.
func groupName(gid int) string {
	if g, err := lookupGroupID(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// rule is what one path must be.
type rule struct {
	label  string  // what the path is: "spool_dir", "passwd_file", ...
	path   string  //
	owners []ident // acceptable owners, the first one used in fixes; none: any
	group  ident   // the required group; id -1: not compared
	// exact is the whole mode wanted (permissions, setgid, sticky) when
	// non-zero; otherwise forbid and need are bits that must be clear and
	// set, and fixMode is the mode a fix sets.
	exact, forbid, need, fixMode os.FileMode
	// fixChmod, when set, is chmod's argument in a fix instead of
	// fixMode: "o-w" changes only what is wrong.
	fixChmod string
	dir      bool
}

// modeBits are the bits of a mode this check compares.
const modeBits = fs.ModePerm | fs.ModeSetgid | fs.ModeSetuid | fs.ModeSticky

// octal writes a mode as chmod(1) takes it: 0640, 2770, 1733.
func octal(m os.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

// check compares the path with the rule; it returns "" when all is well.
func (r rule) check() string {
	st, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) && r.dir {
		return fmt.Sprintf("%s %s: does not exist; fix: %s", r.label, r.path, r.installCmd())
	}
	if err != nil {
		return fmt.Sprintf("%s: %v", r.label, err)
	}
	if st.IsDir() != r.dir {
		kind := "a directory"
		if !r.dir {
			kind = "a regular file"
		}
		return fmt.Sprintf("%s %s: not %s", r.label, r.path, kind)
	}
	uid, gid := ownerOf(st)
	mode := st.Mode() & modeBits
	var wrong, fixes []string
	ownerOK := len(r.owners) == 0
	for _, o := range r.owners {
		ownerOK = ownerOK || o.id < 0 || o.id == uid
	}
	groupOK := r.group.id < 0 || r.group.id == gid
	if !ownerOK {
		wrong = append(wrong, fmt.Sprintf("owner %s, want %s", userName(uid), ownerNames(r.owners)))
	}
	if !groupOK {
		wrong = append(wrong, fmt.Sprintf("group %s, want %s", groupName(gid), r.group.name))
	}
	if !ownerOK || !groupOK {
		owner := userName(uid)
		if !ownerOK {
			owner = r.owners[0].name
		}
		group := groupName(gid)
		if r.group.id >= 0 {
			group = r.group.name
		}
		fixes = append(fixes, "chown "+shellQuote(owner)+":"+shellQuote(group)+" "+shellQuote(r.path))
	}
	if why := r.modeWrong(mode); why != "" {
		wrong = append(wrong, why)
		chmod := r.fixChmod
		if chmod == "" {
			chmod = octal(r.wantMode())
		}
		fixes = append(fixes, "chmod "+chmod+" "+shellQuote(r.path))
	} else if !ownerOK || !groupOK {
		// chown(2) by root clears the setgid bit on some systems: set
		// the mode again after it.
		if r.exact&(fs.ModeSetgid|fs.ModeSetuid) != 0 {
			fixes = append(fixes, "chmod "+octal(r.exact)+" "+shellQuote(r.path))
		}
	}
	if len(wrong) == 0 {
		return ""
	}
	return fmt.Sprintf("%s %s: %s; fix: %s", r.label, r.path, strings.Join(wrong, ", "), strings.Join(fixes, " && "))
}

// modeWrong says what is wrong with mode, or "".
func (r rule) modeWrong(mode os.FileMode) string {
	switch {
	case r.exact != 0 && mode != r.exact:
		return fmt.Sprintf("mode %s, want %s", octal(mode), octal(r.exact))
	case r.exact == 0 && mode&r.forbid != 0:
		return fmt.Sprintf("mode %s %s", octal(mode), describeBits(mode&r.forbid))
	case r.exact == 0 && mode&r.need != r.need:
		return fmt.Sprintf("mode %s %s", octal(mode), describeMissing(r.need&^mode))
	}
	return ""
}

func (r rule) wantMode() os.FileMode {
	if r.exact != 0 {
		return r.exact
	}
	return r.fixMode
}

// installCmd creates a missing directory with its owner, group and mode.
func (r rule) installCmd() string {
	cmd := "install -d"
	if len(r.owners) > 0 {
		cmd += " -o " + shellQuote(r.owners[0].name)
	}
	if r.group.name != "" {
		cmd += " -g " + shellQuote(r.group.name)
	}
	return cmd + " -m " + octal(r.wantMode()) + " " + shellQuote(r.path)
}

func ownerNames(ids []ident) string {
	names := make([]string, len(ids))
	for i, o := range ids {
		names[i] = o.name
	}
	return strings.Join(names, " or ")
}

// describeBits names the permission bits that should not be set.
func describeBits(m os.FileMode) string {
	var parts []string
	if m&0o007 != 0 {
		parts = append(parts, "gives others access")
	}
	if m&0o070 != 0 {
		parts = append(parts, "lets the group write")
	}
	return strings.Join(parts, " and ")
}

// describeMissing names the permission bits that should be set.
func describeMissing(m os.FileMode) string {
	if m&0o040 != 0 {
		return "does not let the group read it (the daemons read it through their group)"
	}
	return "lacks bits " + octal(m)
}

// shellQuote quotes s for sh(1) when it holds anything but plain path
// characters.
func shellQuote(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+:,@%=", c)) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// layoutDir is one directory of the spool: its name below spool_dir (""
// for spool_dir itself) and its mode.
type layoutDir struct {
	name string
	mode os.FileMode
}

var (
	layoutOnce sync.Once
	layoutDirs []layoutDir
	layoutErr  error
)

// spoolLayout is what spool.Setup makes, read back from a scratch spool it
// sets up in a temporary directory: the spool package stays the one place
// that states the spool's directories and modes, and this check follows
// it instead of restating them.
func spoolLayout() ([]layoutDir, error) {
	layoutOnce.Do(func() { layoutDirs, layoutErr = probeSpoolLayout() })
	return layoutDirs, layoutErr
}

func probeSpoolLayout() (dirs []layoutDir, err error) {
	tmp, err := os.MkdirTemp("", "mailroom-check-")
	if err != nil {
		return nil, fmt.Errorf("spool layout: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = fmt.Errorf("spool layout: %w", rerr)
		}
	}()
	dir := filepath.Join(tmp, "spool")
	if err := spool.Setup(dir); err != nil {
		return nil, err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("spool layout: %w", err)
	}
	dirs = append(dirs, layoutDir{"", st.Mode() & modeBits})
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool layout: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("spool layout: %w", err)
		}
		if info.IsDir() {
			dirs = append(dirs, layoutDir{e.Name(), info.Mode() & modeBits})
		}
	}
	return dirs, nil
}

// spoolRules are the rules for spool_dir and its directories.
func spoolRules(spoolDir string, layout []layoutDir, ids expectedIDs) []rule {
	rules := make([]rule, 0, len(layout))
	for _, d := range layout {
		label, path := "spool_dir", spoolDir
		if d.name != "" {
			label, path = "spool", filepath.Join(spoolDir, d.name)
		}
		rules = append(rules, rule{label: label, path: path, owners: []ident{ids.owner}, group: ids.group, exact: d.mode, dir: true})
	}
	return rules
}

// passwdRule: root or vmail, group mailroom, 0640 (no group write, nothing
// for others, group read).
func passwdRule(path string, ids expectedIDs) rule {
	return rule{label: "passwd_file", path: path, owners: []ident{{0, "root"}, ids.owner}, group: ids.group,
		forbid: 0o027, need: 0o040, fixMode: 0o640}
}

// tlsKeyRule: readable by the daemons' group, by no one else.
func tlsKeyRule(path string, ids expectedIDs) rule {
	return rule{label: "tls_key", path: path, group: ids.group, forbid: 0o027, need: 0o040, fixMode: 0o640}
}

// configRule: mailroom.conf not writable by others.
func configRule(path string) rule {
	return rule{label: "config", path: path, group: ident{-1, ""}, forbid: 0o002, fixChmod: "o-w"}
}

// checkMailRootOwner reports a mail_root owned by uid 0 or gid 0, which
// deliver refuses to write as (docs/security.md).
func checkMailRootOwner(path string, st fs.FileInfo, ids expectedIDs) string {
	uid, gid := ownerOf(st)
	if uid != 0 && gid != 0 {
		return ""
	}
	fix := "chown " + defaultOwnerName + ":" + defaultOwnerName + " " + shellQuote(path)
	if _, err := lookupUser(defaultOwnerName); err != nil {
		fix = "adduser --system --group --no-create-home --home " + shellQuote(path) + " " + defaultOwnerName + " && " + fix
	}
	return fmt.Sprintf("mail_root %s: owner %s, group %s: deliver, started by root, becomes the owner of mail_root and refuses root; fix: %s",
		path, userName(uid), groupName(gid), fix)
}

// editPasswd runs one edit of the passwd file. internal/account keeps an
// existing file's owner and group; a file the edit created is root's, so,
// run as root, it goes to root and the daemons' group, which must read it.
func editPasswd(cfg *config.Config, edit func() error) error {
	_, statErr := os.Stat(cfg.PasswdFile)
	if err := edit(); err != nil {
		return err
	}
	if os.Geteuid() != 0 || !fileMissing(statErr) {
		return nil
	}
	ids, _ := resolveIDs(cfg)
	if ids.group.id <= 0 {
		return nil // no such group yet: "mailroom check" says so
	}
	if err := os.Chown(cfg.PasswdFile, 0, ids.group.id); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return withCode(ExitIOErr, fmt.Errorf("passwd file: give it to group %s: %w", ids.group.name, err))
	}
	return nil
}

// checkPermissions runs every owner and mode rule of the installation.
func checkPermissions(cfg *config.Config, configPath string, ids expectedIDs) []string {
	var problems []string
	add := func(p string) {
		if p != "" {
			problems = append(problems, p)
		}
	}
	if configPath != "" {
		add(configRule(configPath).check())
	}
	if cfg.SpoolDir != "" {
		layout, err := spoolLayout()
		if err != nil {
			add(fmt.Sprintf("spool_dir: cannot learn the spool's layout: %v", err))
		}
		for _, r := range spoolRules(cfg.SpoolDir, layout, ids) {
			p := r.check()
			add(p)
			if r.label == "spool_dir" && strings.Contains(p, "does not exist") {
				// deliver --queue makes the rest; one line says it.
				break
			}
		}
	}
	if cfg.TLSKey != "" {
		add(tlsKeyRule(cfg.TLSKey, ids).check())
	}
	if cfg.PasswdFile != "" {
		if _, err := os.Stat(cfg.PasswdFile); err == nil {
			add(passwdRule(cfg.PasswdFile, ids).check())
		}
	}
	return problems
}
