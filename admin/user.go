package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"mailroom/internal/account"
	"mailroom/internal/config"
	"mailroom/maildir"
)

// dirMode is the mode of directories "user add" creates above a Maildir:
// Maildirs hold private mail.
const dirMode = 0o700

func userCommand() *cli.Command {
	passwordFlags := []cli.Flag{
		&cli.StringFlag{Name: "password-file", Usage: "read the password from `FILE` instead of stdin", TakesFile: true},
		&cli.StringFlag{Name: "scheme", Value: account.DefaultScheme, Usage: "password scheme: BLF-CRYPT or ARGON2ID"},
	}
	return &cli.Command{
		Name:  "user",
		Usage: "add, change, delete or list users",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "add a user and create its Maildir",
				ArgsUsage: "ADDRESS",
				Flags: append(slices.Clone(passwordFlags),
					&cli.IntFlag{Name: "uid", Value: -1, Usage: "numeric uid owning the Maildir (passwd uid field)"},
					&cli.IntFlag{Name: "gid", Value: -1, Usage: "numeric gid of the Maildir (passwd gid field)"},
					&cli.StringFlag{Name: "home", Usage: "Maildir root `DIR` below mail_root instead of <mail_root>/<domain>/<user>"},
					&cli.StringFlag{Name: "quota", Usage: "storage quota `SIZE`: bytes, or with k, M, G (1024-based) as in mailroom.conf"},
				),
				Action: userAdd,
			},
			{Name: "passwd", Usage: "set a user's password", ArgsUsage: "ADDRESS", Flags: passwordFlags, Action: userPasswd},
			{Name: "del", Usage: "delete a user (its mail is kept)", ArgsUsage: "ADDRESS", Action: userDel},
			{Name: "list", Usage: "print every user, one address per line", Action: userList},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("unknown user command %q (want add, passwd, del or list)", c.Args().First())
			}
			return usageErrorf("user: want add, passwd, del or list")
		},
	}
}

// oneAddress returns the single ADDRESS argument, validated.
func oneAddress(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usageErrorf("%s: want exactly one ADDRESS, got %d arguments", c.Command.FullName(), c.NArg())
	}
	a := c.Args().First()
	if err := account.ValidAddress(a); err != nil {
		return "", withCode(ExitDataErr, err)
	}
	return a, nil
}

// newHash reads the password and hashes it with --scheme.
func newHash(c *cli.Context) (string, error) {
	pw, err := readPassword(c.App.Reader, c.App.ErrWriter, c.String("password-file"))
	if err != nil {
		return "", err
	}
	h, err := account.HashPassword(pw, c.String("scheme"))
	if err != nil {
		return "", withCode(ExitDataErr, err)
	}
	return h, nil
}

func userAdd(c *cli.Context) error {
	addr, err := oneAddress(c)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	addr = strings.ToLower(addr)
	_, domain, _ := strings.Cut(addr, "@")
	if len(cfg.Domains) > 0 && !cfg.IsLocalDomain(domain) {
		return withCode(ExitDataErr, fmt.Errorf("domain %s is not in domains of the configuration", domain))
	}
	u := account.User{Address: addr, UID: c.Int("uid"), GID: c.Int("gid"), Home: c.String("home")}
	if u.UID == 0 || u.GID == 0 || u.UID < -1 || u.GID < -1 {
		return withCode(ExitDataErr, errors.New("--uid and --gid must be positive: mail is never handled as root"))
	}
	if u.Home != "" {
		if err := account.ValidHome(u.Home); err != nil {
			return usageErrorf("--home: %v", err)
		}
		if !filepath.IsAbs(u.Home) {
			return usageErrorf("--home %q is not an absolute path", u.Home)
		}
		u.Home = filepath.Clean(u.Home)
		if err := belowMailRoot(cfg.MailRoot, u.Home); err != nil {
			return usageErrorf("--home: %v; give a directory below mail_root %s, or change mail_root", err, cfg.MailRoot)
		}
	}
	if q := c.String("quota"); q != "" {
		rule, err := storageRule(q)
		if err != nil {
			return withCode(ExitDataErr, err)
		}
		u.Extra = map[string]string{quotaRuleKey: rule}
	}
	// Refuse a duplicate before asking for a password or touching disk;
	// AddUser checks again under the lock.
	if db, err := account.Load(cfg.PasswdFile, cfg.MailRoot); err == nil {
		if _, exists := db.Lookup(addr); exists {
			return fmt.Errorf("%w: %s", account.ErrUserExists, addr)
		}
	} else if !fileMissing(err) {
		return err
	}
	if u.Hash, err = newHash(c); err != nil {
		return err
	}
	root := u.Home
	if root == "" {
		local, _, _ := strings.Cut(addr, "@")
		root = filepath.Join(cfg.MailRoot, domain, local)
	}
	if err := createMaildir(cfg, root, u.UID, u.GID); err != nil {
		return err
	}
	if err := editPasswd(cfg, func() error { return account.AddUser(cfg.PasswdFile, u) }); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "added %s, Maildir %s\n", addr, root)
	return nil
}

// existingUser is the prologue of the commands that act on one user: the
// address argument, the config, and the user's Maildir root.
func existingUser(c *cli.Context) (addr, root string, cfg *config.Config, err error) {
	if addr, err = oneAddress(c); err != nil {
		return "", "", nil, err
	}
	if cfg, err = loadConfig(c); err != nil {
		return "", "", nil, err
	}
	db, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if err != nil {
		return "", "", nil, err
	}
	root, ok := db.Mailbox(addr)
	if !ok {
		return "", "", nil, fmt.Errorf("%w: %s", account.ErrNoSuchUser, addr)
	}
	return addr, root, cfg, nil
}

func userPasswd(c *cli.Context) error {
	addr, _, cfg, err := existingUser(c)
	if err != nil {
		return err
	}
	h, err := newHash(c)
	if err != nil {
		return err
	}
	if err := editPasswd(cfg, func() error { return account.SetPassword(cfg.PasswdFile, addr, h) }); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "password of %s changed\n", addr)
	return nil
}

func userDel(c *cli.Context) error {
	addr, root, cfg, err := existingUser(c)
	if err != nil {
		return err
	}
	if err := editPasswd(cfg, func() error { return account.DeleteUser(cfg.PasswdFile, addr) }); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "deleted %s; its mail in %s was not deleted\n", addr, root)
	return nil
}

func userList(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageErrorf("user list takes no arguments")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	db, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if fileMissing(err) {
		return nil // no file yet: no users
	}
	if err != nil {
		return err
	}
	for _, u := range db.Users() {
		if _, err := fmt.Fprintln(c.App.Writer, u.Address); err != nil {
			return withCode(ExitIOErr, err)
		}
	}
	return nil
}

// createMaildir creates root as a Maildir++ with the default folders, and
// the directories above it up to the mail root. An existing Maildir is
// kept (re-adding a deleted user gives the mail back; a failed add can be
// retried). When run as root it hands
// what it created to uid/gid, or, if those are unset, to the owner of the
// mail root (normally the vmail user), so that deliver and imapd, which
// never run as root, can use it.
func createMaildir(cfg *config.Config, root string, uid, gid int) error {
	created, err := mkdirParents(filepath.Dir(root))
	if err != nil {
		return withCode(ExitIOErr, err)
	}
	if err := maildir.Create(root); err != nil {
		return withCode(ExitIOErr, fmt.Errorf("create Maildir: %w", err))
	}
	if err := maildir.CreateDefaultFolders(root); err != nil {
		return withCode(ExitIOErr, fmt.Errorf("create default folders: %w", err))
	}
	if os.Geteuid() != 0 {
		return nil
	}
	if uid < 0 || gid < 0 {
		st, err := os.Stat(cfg.MailRoot)
		if err != nil {
			return withCode(ExitIOErr, err)
		}
		ouid, ogid := ownerOf(st)
		uid, gid = pick(uid, ouid), pick(gid, ogid)
	}
	for _, dir := range append(created, root) {
		if err := chownTree(dir, uid, gid); err != nil {
			return withCode(ExitIOErr, err)
		}
	}
	return nil
}

func pick(set, fallback int) int {
	if set >= 0 {
		return set
	}
	return fallback
}

// mkdirParents is os.MkdirAll that reports the directories it created, top
// first.
func mkdirParents(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	slices.Reverse(missing)
	for _, d := range missing {
		if err := os.Mkdir(d, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return missing, nil
}

func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
