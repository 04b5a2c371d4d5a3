package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"mailroom/internal/account"
	"mailroom/internal/alias"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check configuration, users, aliases, Maildirs, owners and modes; one line per problem, with its fix",
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageErrorf("check takes no arguments")
			}
			problems := runCheck(c)
			for _, p := range problems {
				fmt.Fprintln(c.App.Writer, p)
			}
			if len(problems) > 0 {
				return errProblems
			}
			fmt.Fprintln(c.App.Writer, "no problems found")
			return nil
		},
	}
}

// runCheck returns one message per problem found.
func runCheck(c *cli.Context) []string {
	cfg, err := loadConfig(c)
	if err != nil {
		return []string{fmt.Sprintf("config: %v", err)}
	}
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	if len(cfg.Domains) == 0 {
		// Every address is then remote, and deliver refuses remote
		// recipients (exit 77): the default configuration delivers nothing.
		add("domains is empty: no mail is delivered locally")
	}

	ids, idProblems := resolveIDs(cfg)
	problems = append(problems, idProblems...)

	rootUID, rootOK := -1, false
	if st, err := os.Stat(cfg.MailRoot); fileMissing(err) {
		// vmail's alone: the Maildirs are no one else's (docs/security.md).
		add("mail_root %s: does not exist; fix: install -d -o %s -g %s -m 0700 %s",
			cfg.MailRoot, defaultOwnerName, defaultOwnerName, shellQuote(cfg.MailRoot))
	} else if err != nil {
		add("mail_root: %v", err)
	} else if !st.IsDir() {
		add("mail_root %s: not a directory", cfg.MailRoot)
	} else {
		rootUID, _ = ownerOf(st)
		// A root-owned mail_root is reported once below; Maildirs are
		// then not held against root as their expected owner.
		rootOK = rootUID != 0
		if msg := checkMailRootOwner(cfg.MailRoot, st, ids); msg != "" {
			add("%s", msg)
		}
		if msg := writableByOthers(st); msg != "" {
			add("mail_root %s: %s; fix: chmod go-w %s", cfg.MailRoot, msg, shellQuote(cfg.MailRoot))
		}
	}

	if cfg.AliasesFile != "" {
		if _, err := alias.Load(cfg.AliasesFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			add("aliases: %v", err)
		}
	}

	problems = append(problems, checkPermissions(cfg, configFile(c), ids)...)

	if _, err := os.Stat(cfg.PasswdFile); err != nil {
		add("passwd_file: %v", err)
		return problems
	}
	db, err := account.Load(cfg.PasswdFile, cfg.MailRoot)
	if err != nil {
		add("passwd_file: %v", err)
		return problems
	}
	for _, u := range db.Users() {
		root, _ := db.Mailbox(u.Address)
		if err := belowMailRoot(cfg.MailRoot, root); err != nil {
			add("user %s: Maildir %v", u.Address, err)
		}
		if _, domain, _ := strings.Cut(strings.ToLower(u.Address), "@"); len(cfg.Domains) > 0 && !cfg.IsLocalDomain(domain) {
			add("user %s: domain %s is not in domains: its mail is remote, never delivered here", u.Address, domain)
		}
		wantUID := u.UID
		if wantUID < 0 && rootOK {
			wantUID = rootUID
		}
		for _, p := range checkMaildir(root, wantUID) {
			add("user %s: %s", u.Address, p)
		}
	}
	return problems
}

// checkMaildir checks a Maildir++ root and its folders: tmp, new and cur
// present, nothing writable by group or others, owner wantUID (unless -1).
func checkMaildir(root string, wantUID int) []string {
	st, err := os.Stat(root)
	if err != nil {
		return []string{fmt.Sprintf("Maildir: %v", err)}
	}
	if !st.IsDir() {
		return []string{fmt.Sprintf("Maildir %s: not a directory", root)}
	}
	var problems []string
	problems = append(problems, checkDir(root, st, wantUID)...)
	dirs := []string{root}
	entries, err := os.ReadDir(root)
	if err != nil {
		return append(problems, fmt.Sprintf("Maildir %s: %v", root, err))
	}
	for _, e := range entries {
		// Maildir++ folders are the ".Name" subdirectories.
		if e.IsDir() && strings.HasPrefix(e.Name(), ".") && e.Name() != "." && e.Name() != ".." {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	for _, d := range dirs {
		if d != root {
			fst, err := os.Stat(d)
			if err != nil {
				problems = append(problems, fmt.Sprintf("folder %s: %v", d, err))
				continue
			}
			problems = append(problems, checkDir(d, fst, wantUID)...)
		}
		for _, sub := range []string{"tmp", "new", "cur"} {
			p := filepath.Join(d, sub)
			sst, err := os.Stat(p)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			case !sst.IsDir():
				problems = append(problems, fmt.Sprintf("%s: not a directory", p))
			default:
				problems = append(problems, checkDir(p, sst, wantUID)...)
			}
		}
	}
	return problems
}

func checkDir(path string, st fs.FileInfo, wantUID int) []string {
	var problems []string
	if msg := writableByOthers(st); msg != "" {
		problems = append(problems, fmt.Sprintf("%s: %s; fix: chmod go-w %s", path, msg, shellQuote(path)))
	}
	if uid, _ := ownerOf(st); wantUID >= 0 && uid != wantUID {
		problems = append(problems, fmt.Sprintf("%s: owned by uid %d, want %d; fix: chown -R %s %s",
			path, uid, wantUID, shellQuote(userName(wantUID)), shellQuote(path)))
	}
	return problems
}

// configFile is the configuration file check looks at: --config, or the
// default when it exists ("" when the built-in defaults are in use).
func configFile(c *cli.Context) string {
	path := c.String("config")
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}

func writableByOthers(st fs.FileInfo) string {
	if m := st.Mode().Perm(); m&0o022 != 0 {
		return fmt.Sprintf("writable by group or others (mode %#o)", m)
	}
	return ""
}

// ownerOf returns the uid and gid of a stat result (-1 if unknown).
func ownerOf(st fs.FileInfo) (uid, gid int) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid), int(sys.Gid)
	}
	return -1, -1
}
