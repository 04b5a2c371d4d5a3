package test

// The security test keeps docs/security.md's two checked tables ("Who runs
// as whom", "Files") the one source of truth for privileges, checked both
// ways: every row against what the code and the shipped files do, and
// everything those do against a row.
//
//   - Who runs as whom: each service unit (etc/systemd, per-connection
//     templates) against its program's row: User=, Group=, ReadWritePaths=,
//     UMask=, no SupplementaryGroups=; each unit named in a row exists; the
//     mailroom.conf defaults ([smtpd] user, spool_dir, mail_root,
//     passwd_file, the config path) are the values in the tables.
//   - Files: rows marked tmpfiles.d against etc/tmpfiles.d/mailroom.conf;
//     spool.Setup against the directories and modes the spool package
//     creates; make install against every `install -m` of
//     `make -n install PREFIX=/usr`; mailroom check against the built
//     mailroom binary run over an installation laid out as the rows say.
//
// TestSecurityTablesCatch applies mutations to a copy of the tree (a unit's
// Group=, a tmpfiles mode, a Makefile install mode, a doc row) and expects
// each to be reported, so that the comparison cannot pass vacuously.

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailroom/internal/config"
	"mailroom/internal/testutil"
	"mailroom/spool"
)

const (
	securityDoc       = "docs/security.md"
	runsAsHeading     = "### Who runs as whom"
	filesHeading      = "### Files"
	tmpfilesConf      = "etc/tmpfiles.d/mailroom.conf"
	securityWait      = 60 * time.Second
	sourceTmpfiles    = "tmpfiles.d"
	sourceSpoolSetup  = "spool.Setup"
	sourceMakeInstall = "make install"
	sourceCheck       = "mailroom check"
)

// runsAsRow is one row of "Who runs as whom".
type runsAsRow struct {
	program, user, group, umask string
	units, writes               []string
}

// fileRow is one row of "Files".
type fileRow struct {
	path, key, owner, group, mode string
	sources                       []string
}

func (r fileRow) has(source string) bool { return slices.Contains(r.sources, source) }

// docTable returns the cells of the first table after the line heading,
// backquotes removed, header and separator rows skipped.
func docTable(text, heading string) ([][]string, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	found, inTable := false, false
	var rows [][]string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case !found:
			found = line == heading
			continue
		case strings.HasPrefix(line, "|"):
			inTable = true
		case inTable:
			return rows[min(2, len(rows)):], nil
		default:
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, "`", "")))
		}
		rows = append(rows, cells)
	}
	if !found || len(rows) < 3 {
		return nil, fmt.Errorf("%s: no table under %q", securityDoc, heading)
	}
	return rows[2:], nil
}

// list splits a cell of several values ("a, b" or "a b").
func list(cell string) []string {
	return strings.Fields(strings.ReplaceAll(cell, ",", " "))
}

func parseSecurityDoc(root string) ([]runsAsRow, []fileRow, error) {
	text, err := os.ReadFile(filepath.Join(root, securityDoc))
	if err != nil {
		return nil, nil, err
	}
	cells, err := docTable(string(text), runsAsHeading)
	if err != nil {
		return nil, nil, err
	}
	var runs []runsAsRow
	for _, c := range cells {
		if len(c) != 6 {
			return nil, nil, fmt.Errorf("%s: %q: want 6 cells", runsAsHeading, c)
		}
		runs = append(runs, runsAsRow{program: c[0], units: list(c[1]), user: c[2], group: c[3], writes: list(c[4]), umask: c[5]})
	}
	cells, err = docTable(string(text), filesHeading)
	if err != nil {
		return nil, nil, err
	}
	var files []fileRow
	for _, c := range cells {
		if len(c) != 6 {
			return nil, nil, fmt.Errorf("%s: %q: want 6 cells", filesHeading, c)
		}
		var sources []string
		for _, s := range strings.Split(c[5], ",") {
			sources = append(sources, strings.TrimSpace(s))
		}
		files = append(files, fileRow{path: c[0], key: c[1], owner: c[2], group: c[3], mode: c[4], sources: sources})
	}
	return runs, files, nil
}

// runsAsProblems compares "Who runs as whom" with the service units under
// root and with the configuration defaults.
func runsAsProblems(root string, runs []runsAsRow, files []fileRow) []string {
	var problems []string
	add := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	units := map[string]*unit{}
	for _, dir := range []string{"etc/systemd", "etc/systemd/per-connection"} {
		paths, err := filepath.Glob(filepath.Join(root, dir, "*.service"))
		if err != nil || len(paths) == 0 {
			add("%s: no service units (%v)", dir, err)
		}
		for _, p := range paths {
			text, err := os.ReadFile(p)
			if err != nil {
				add("%v", err)
				continue
			}
			u, err := parseUnit(filepath.Base(p), string(text))
			if err != nil {
				add("%v", err)
				continue
			}
			units[u.name] = u
		}
	}
	byProgram := map[string]runsAsRow{}
	for _, r := range runs {
		byProgram[r.program] = r
		for _, name := range r.units {
			if units[name] == nil {
				add("%s row %s: unit %s does not exist", runsAsHeading, r.program, name)
			}
		}
	}
	for name, u := range units {
		execStart, _ := u.get("Service", "ExecStart")
		f := strings.Fields(execStart)
		if len(f) == 0 {
			add("%s: no ExecStart=", name)
			continue
		}
		prog := filepath.Base(f[0])
		r, ok := byProgram[prog]
		if !ok {
			add("%s runs %s, which has no row in %s", name, prog, runsAsHeading)
			continue
		}
		if !slices.Contains(r.units, name) {
			add("%s runs %s but is not in its row's units %q", name, prog, r.units)
		}
		for _, kv := range []struct{ key, want string }{{"User", r.user}, {"Group", r.group}, {"UMask", r.umask}} {
			if got, _ := u.get("Service", kv.key); got != kv.want {
				add("%s: %s=%q, %s says %q", name, kv.key, got, securityDoc, kv.want)
			}
		}
		if got := u.list("Service", "ReadWritePaths"); !slices.Equal(got, r.writes) {
			add("%s: ReadWritePaths=%q, %s says %q", name, got, securityDoc, r.writes)
		}
		if got := u.list("Service", "SupplementaryGroups"); len(got) != 0 {
			add("%s: SupplementaryGroups=%q: %s gives no program a second group", name, got, securityDoc)
		}
	}

	// The names and paths the tables use are the configuration's defaults.
	cfg := config.Default()
	keyed := map[string]fileRow{}
	paths := map[string]fileRow{}
	for _, f := range files {
		if f.key != "" {
			keyed[f.key] = f
		}
		paths[f.path] = f
	}
	for key, want := range map[string]string{"spool_dir": cfg.SpoolDir, "mail_root": cfg.MailRoot, "passwd_file": cfg.PasswdFile} {
		if got := keyed[key].path; got != want {
			add("%s: %s is %q, the default is %q", filesHeading, key, got, want)
		}
	}
	if _, ok := paths[config.DefaultPath]; !ok {
		add("%s: no row for the configuration file %s", filesHeading, config.DefaultPath)
	}
	vmail, daemons := keyed["mail_root"].owner, cfg.Smtpd.User
	if r := byProgram["smtpd"]; r.user != daemons || r.group != daemons {
		add("%s: smtpd runs as %s:%s, want the [smtpd] user default %s and its group", runsAsHeading, r.user, r.group, daemons)
	}
	for _, r := range runs {
		if r.group != daemons {
			add("%s: %s has group %s, want the daemons' group %s", runsAsHeading, r.program, r.group, daemons)
		}
		if r.program != "smtpd" && r.user != vmail {
			add("%s: %s runs as %s, want the owner of mail_root, %s", runsAsHeading, r.program, r.user, vmail)
		}
		for _, w := range r.writes {
			if w != cfg.SpoolDir && w != cfg.MailRoot {
				add("%s: %s may write %s, which is neither spool_dir nor mail_root", runsAsHeading, r.program, w)
			}
		}
	}
	return problems
}

// tmpfilesProblems compares the rows marked tmpfiles.d with the entries
// of etc/tmpfiles.d/mailroom.conf, both ways.
func tmpfilesProblems(root string, files []fileRow) []string {
	var problems []string
	text, err := os.ReadFile(filepath.Join(root, tmpfilesConf))
	if err != nil {
		return []string{err.Error()}
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(text), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 5 {
			problems = append(problems, fmt.Sprintf("%s: short line %q", tmpfilesConf, line))
			continue
		}
		path, mode, owner, group := f[1], f[2], f[3], f[4]
		seen[path] = true
		i := slices.IndexFunc(files, func(r fileRow) bool { return r.path == path && r.has(sourceTmpfiles) })
		if i < 0 {
			problems = append(problems, fmt.Sprintf("%s makes %s, which has no %s row in %s", tmpfilesConf, path, sourceTmpfiles, filesHeading))
			continue
		}
		r := files[i]
		if mode != r.mode || owner != r.owner || group != r.group {
			problems = append(problems, fmt.Sprintf("%s: %s %s %s:%s, %s says %s %s:%s", tmpfilesConf, path, mode, owner, group, securityDoc, r.mode, r.owner, r.group))
		}
	}
	for _, r := range files {
		if r.has(sourceTmpfiles) && !seen[r.path] {
			problems = append(problems, fmt.Sprintf("%s: %s is marked %s but %s has no entry for it", filesHeading, r.path, sourceTmpfiles, tmpfilesConf))
		}
	}
	return problems
}

// octalMode writes a mode as the tables do: 0711, 2770, 1733.
func octalMode(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	return fmt.Sprintf("%04o", n)
}

// parseMode reads a table's mode into an fs.FileMode.
func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("mode %q: not octal", s)
	}
	m := fs.FileMode(n & 0o777)
	if n&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m, nil
}

// spoolSetupProblems compares the rows marked spool.Setup with what
// spool.Setup makes, both ways.
func spoolSetupProblems(t *testing.T, files []fileRow) []string {
	t.Helper()
	spoolDir := config.Default().SpoolDir
	dir := filepath.Join(t.TempDir(), "spool")
	if err := spool.Setup(dir); err != nil {
		t.Fatal(err)
	}
	made := map[string]string{}
	st, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	made[spoolDir] = octalMode(st.Mode())
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.IsDir() {
			made[filepath.Join(spoolDir, e.Name())] = octalMode(info.Mode())
		}
	}
	var problems []string
	owner := ""
	for _, r := range files {
		if r.key == "mail_root" {
			owner = r.owner
		}
	}
	for _, r := range files {
		if !r.has(sourceSpoolSetup) {
			continue
		}
		mode, ok := made[r.path]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: %s is marked %s, which does not make it", filesHeading, r.path, sourceSpoolSetup))
		case mode != r.mode:
			problems = append(problems, fmt.Sprintf("spool.Setup makes %s mode %s, %s says %s", r.path, mode, securityDoc, r.mode))
		}
		// spool.SetOwner gives the spool to the queue daemon's user (the
		// owner of mail_root) and the daemons' group.
		if r.owner != owner || r.group != config.Default().Smtpd.User {
			problems = append(problems, fmt.Sprintf("%s: %s %s:%s, want the owner of mail_root (%s) and the daemons' group", filesHeading, r.path, r.owner, r.group, owner))
		}
		delete(made, r.path)
	}
	for p, mode := range made {
		problems = append(problems, fmt.Sprintf("spool.Setup makes %s (mode %s), which has no %s row in %s", p, mode, sourceSpoolSetup, filesHeading))
	}
	return problems
}

// installedFile is one file make install writes.
type installedFile struct {
	path, mode, line string
	owned            bool // install was given -o or -g
}

// makeInstallFiles runs make -n install under root and returns every file
// an `install -m` line writes, paths as installed with PREFIX=/usr.
func makeInstallFiles(root string) ([]installedFile, error) {
	const stage = "/STAGE"
	ctx, cancel := context.WithTimeout(context.Background(), securityWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-s", "-n", "-C", root, "install", "PREFIX=/usr", "DESTDIR="+stage)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("make -n install: %w", err)
	}
	var files []installedFile
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(line), `\`))
		line = strings.TrimSpace(strings.TrimSuffix(line, ";"))
		line = strings.TrimSuffix(line, " &&")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "install" || slices.Contains(f, "-d") {
			continue
		}
		mode, owned := "", false
		var args []string
		for i := 1; i < len(f); i++ {
			switch f[i] {
			case "-m":
				i++
				if i < len(f) {
					mode = f[i]
				}
			case "-o", "-g":
				owned = true
				i++
			default:
				args = append(args, f[i])
			}
		}
		if len(args) < 2 {
			return nil, fmt.Errorf("make -n install: cannot read %q", line)
		}
		dest := strings.TrimPrefix(args[len(args)-1], stage)
		for _, src := range args[:len(args)-1] {
			matches, err := filepath.Glob(filepath.Join(root, src))
			if err == nil && len(matches) == 0 && builtProgram(root, src) {
				// make install builds bin/ first; a fresh clone has none yet.
				matches = []string{filepath.Join(root, src)}
			}
			if err != nil || len(matches) == 0 {
				return nil, fmt.Errorf("make -n install: %s matches nothing (%v)", src, err)
			}
			for _, m := range matches {
				if fi, err := os.Stat(m); err == nil && fi.IsDir() {
					continue
				}
				p := dest
				if strings.HasSuffix(dest, "/") {
					p = dest + filepath.Base(m)
				}
				files = append(files, installedFile{path: p, mode: mode, line: line, owned: owned})
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("make -n install: no install -m lines")
	}
	return files, nil
}

// builtProgram reports whether src is bin/<name> for a program that
// make build makes from cmd/<name>.
func builtProgram(root, src string) bool {
	dir, name := filepath.Split(src)
	if dir != "bin/" {
		return false
	}
	fi, err := os.Stat(filepath.Join(root, "cmd", name))
	return err == nil && fi.IsDir()
}

// rowFor is the make install row for an installed path: an exact path, or
// else the longest "dir/*" pattern the path lies below.
func rowFor(files []fileRow, path string) (fileRow, bool) {
	best, bestLen := fileRow{}, -1
	for _, r := range files {
		if !r.has(sourceMakeInstall) {
			continue
		}
		if r.path == path {
			return r, true
		}
		if prefix, ok := strings.CutSuffix(r.path, "*"); ok && strings.HasPrefix(path, prefix) && len(prefix) > bestLen {
			best, bestLen = r, len(prefix)
		}
	}
	return best, bestLen >= 0
}

// makeInstallProblems compares the rows marked make install with what
// make install writes, both ways.
func makeInstallProblems(root string, files []fileRow) []string {
	installed, err := makeInstallFiles(root)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	used := map[string]bool{}
	for _, f := range installed {
		r, ok := rowFor(files, f.path)
		if !ok {
			problems = append(problems, fmt.Sprintf("make install writes %s, which has no %s row in %s", f.path, sourceMakeInstall, filesHeading))
			continue
		}
		used[r.path] = true
		if f.mode != r.mode {
			problems = append(problems, fmt.Sprintf("make install writes %s mode %s (%s), %s says %s", f.path, f.mode, f.line, securityDoc, r.mode))
		}
		// Without -o/-g the files belong to whoever installs: root.
		if f.owned || r.owner != "root" || r.group != "root" {
			problems = append(problems, fmt.Sprintf("make install writes %s as the installing user (root), %s says %s:%s", f.path, securityDoc, r.owner, r.group))
		}
	}
	for _, r := range files {
		if r.has(sourceMakeInstall) && !used[r.path] {
			problems = append(problems, fmt.Sprintf("%s: %s is marked %s, which installs nothing there", filesHeading, r.path, sourceMakeInstall))
		}
	}
	return problems
}

func TestSecurityTables(t *testing.T) {
	runs, files, err := parseSecurityDoc("..")
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) < 4 || len(files) < 10 {
		t.Fatalf("%s: %d rows of %q and %d of %q: the tables were not read", securityDoc, len(runs), runsAsHeading, len(files), filesHeading)
	}
	for _, r := range files {
		known := 0
		for _, s := range r.sources {
			if slices.Contains([]string{sourceTmpfiles, sourceSpoolSetup, sourceMakeInstall, sourceCheck}, s) {
				known++
			}
		}
		if known == 0 || known != len(r.sources) {
			t.Errorf("%s row %s: sources %q: want only %s, %s, %s, %s (each row checked by at least one)",
				filesHeading, r.path, r.sources, sourceTmpfiles, sourceSpoolSetup, sourceMakeInstall, sourceCheck)
		}
		if _, err := parseMode(r.mode); err != nil {
			t.Errorf("%s row %s: %v", filesHeading, r.path, err)
		}
	}
	problems := runsAsProblems("..", runs, files)
	problems = append(problems, tmpfilesProblems("..", files)...)
	problems = append(problems, spoolSetupProblems(t, files)...)
	problems = append(problems, makeInstallProblems("..", files)...)
	for _, p := range problems {
		t.Error(p)
	}
}

// copyTree copies what the file comparisons read (docs, etc, man,
// Makefile, and cmd/'s directory names) into a temporary root.
func copyTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), securityWait)
	defer cancel()
	for _, p := range []string{"docs", "etc", "man", "Makefile"} {
		if out, err := exec.CommandContext(ctx, "cp", "-r", filepath.Join("..", p), root).CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v\n%s", p, err, out)
		}
	}
	cmds, err := os.ReadDir("../cmd")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if err := os.MkdirAll(filepath.Join(root, "cmd", c.Name()), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// mutate replaces old by new, once, in root/file.
func mutate(t *testing.T, root, file, old, new string) {
	t.Helper()
	p := filepath.Join(root, file)
	text, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(text), old) < 1 {
		t.Fatalf("%s: %q not found: the mutation is stale", file, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(text), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecurityTablesCatch: a change on either side alone is reported.
func TestSecurityTablesCatch(t *testing.T) {
	tests := []struct {
		name, file, old, new string
	}{
		{"unit group", "etc/systemd/mailroom-pop3d.service", "Group=mailroom", "Group=vmail"},
		{"unit writes more", "etc/systemd/mailroom-smtpd.service", "ReadWritePaths=/var/spool/mailroom", "ReadWritePaths=/var/spool/mailroom /var/mail/vhosts"},
		{"per-connection user", "etc/systemd/per-connection/mailroom-imap-accept@.service", "User=vmail", "User=mailroom"},
		{"unit umask", "etc/systemd/mailroom-deliver.service", "UMask=0027", "UMask=0022"},
		{"supplementary group", "etc/systemd/mailroom-imapd.service", "Group=mailroom", "Group=mailroom\nSupplementaryGroups=vmail"},
		{"tmpfiles mode", tmpfilesConf, "0711 vmail mailroom", "0755 vmail mailroom"},
		{"tmpfiles owner", tmpfilesConf, "0711 vmail mailroom", "0711 root mailroom"},
		{"Makefile program mode", "Makefile", "install -m 0755 $(addprefix bin/", "install -m 4755 $(addprefix bin/"},
		{"Makefile man mode", "Makefile", "install -m 0644 $(MAN8)", "install -m 0664 $(MAN8)"},
		{"Makefile owner", "Makefile", "install -m 0644 etc/tmpfiles.d/mailroom.conf", "install -o mail -m 0644 etc/tmpfiles.d/mailroom.conf"},
		{"doc unit user", securityDoc, "| `imapd` | `mailroom-imapd.service`, `mailroom-imap-accept@.service`, `mailroom-imaps-accept@.service` | `vmail`", "| `imapd` | `mailroom-imapd.service`, `mailroom-imap-accept@.service`, `mailroom-imaps-accept@.service` | `imap`"},
		{"doc unit dropped", securityDoc, ", `mailroom-pop3s-accept@.service`", ""},
		{"doc maildrop mode", securityDoc, "`/var/spool/mailroom/maildrop` | | `vmail` | `mailroom` | `1733`", "`/var/spool/mailroom/maildrop` | | `vmail` | `mailroom` | `0733`"},
		{"doc spool dir dropped", securityDoc, "| `/var/spool/mailroom/trash` | | `vmail` | `mailroom` | `2770` | `spool.Setup`, `mailroom check` |\n", ""},
		{"doc tmpfiles mode", securityDoc, "| `/var/spool/mailroom` | `spool_dir` | `vmail` | `mailroom` | `0711`", "| `/var/spool/mailroom` | `spool_dir` | `vmail` | `mailroom` | `0751`"},
		{"doc install mode", securityDoc, "| `/usr/share/man/*` | | `root` | `root` | `0644`", "| `/usr/share/man/*` | | `root` | `root` | `0444`"},
		{"doc install row dropped", securityDoc, "| `/lib/systemd/system/*` | | `root` | `root` | `0644` | `make install` |\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := copyTree(t)
			mutate(t, root, tc.file, tc.old, tc.new)
			runs, files, err := parseSecurityDoc(root)
			if err != nil {
				t.Fatal(err)
			}
			problems := runsAsProblems(root, runs, files)
			problems = append(problems, tmpfilesProblems(root, files)...)
			problems = append(problems, spoolSetupProblems(t, files)...)
			problems = append(problems, makeInstallProblems(root, files)...)
			if len(problems) == 0 {
				t.Errorf("%s: %q -> %q went unnoticed", tc.file, tc.old, tc.new)
			}
		})
	}
}

// checkFixture maps the table's names to ids the test can give files: as
// root, vmail and mailroom are nobody and its group (so [smtpd] user is
// nobody); otherwise everything is the test's own user and group.
type checkFixture struct {
	dir, conf, daemonUser string
	uids, gids            map[string]int
	paths                 map[string]string // table path -> fixture path
}

func newCheckFixture(t *testing.T, files []fileRow) checkFixture {
	t.Helper()
	fx := checkFixture{dir: t.TempDir(), paths: map[string]string{}}
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running as root needs the user nobody: %v", err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		fx.daemonUser = "nobody"
		fx.uids = map[string]int{"root": 0, "vmail": uid, "mailroom": uid}
		fx.gids = map[string]int{"root": 0, "vmail": gid, "mailroom": gid}
	} else {
		me, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		uid, gid := os.Geteuid(), os.Getegid()
		fx.daemonUser = me.Username
		fx.uids = map[string]int{"root": uid, "vmail": uid, "mailroom": uid}
		fx.gids = map[string]int{"root": gid, "vmail": gid, "mailroom": gid}
	}
	cfg := config.Default()
	under := map[string]string{"spool_dir": "spool", "mail_root": "mail", "passwd_file": "passwd", "tls_key": "key.pem"}
	var spoolPath string
	for _, r := range files {
		switch {
		case r.key != "":
			fx.paths[r.path] = filepath.Join(fx.dir, under[r.key])
			if r.key == "spool_dir" {
				spoolPath = r.path
			}
		case r.path == config.DefaultPath:
			fx.paths[r.path] = filepath.Join(fx.dir, "mailroom.conf")
		}
	}
	for _, r := range files {
		if rel, ok := strings.CutPrefix(r.path, spoolPath+"/"); ok && spoolPath != "" {
			fx.paths[r.path] = filepath.Join(fx.dir, "spool", rel)
		}
	}
	cert := filepath.Join(fx.dir, "cert.pem")
	writeFile(t, cert, "not read by check\n")
	fx.conf = fx.paths[config.DefaultPath]
	writeFile(t, fx.conf, fmt.Sprintf("domains = example.org\nmail_root = %s\nspool_dir = %s\npasswd_file = %s\naliases_file = %s\ntls_cert = %s\ntls_key = %s\n[smtpd]\nuser = %s\n",
		fx.paths[cfg.MailRoot], fx.paths[cfg.SpoolDir], fx.paths[cfg.PasswdFile], filepath.Join(fx.dir, "aliases"), cert, fx.keyed(files, "tls_key"), fx.daemonUser))
	// Directories first, parents before children (the table's order).
	for _, r := range files {
		p, ok := fx.paths[r.path]
		if !ok || !r.has(sourceCheck) {
			continue
		}
		dir := r.key == "spool_dir" || r.key == "mail_root" || strings.HasPrefix(r.path, spoolPath+"/")
		if dir {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		} else if p != fx.conf {
			writeFile(t, p, "")
		}
		fx.set(t, r, p)
	}
	return fx
}

func (fx checkFixture) keyed(files []fileRow, key string) string {
	for _, r := range files {
		if r.key == key {
			return fx.paths[r.path]
		}
	}
	return ""
}

func writeFile(t *testing.T, p, text string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// set gives p the row's owner, group and mode.
func (fx checkFixture) set(t *testing.T, r fileRow, p string) {
	t.Helper()
	uid, ok1 := fx.uids[r.owner]
	gid, ok2 := fx.gids[r.group]
	if !ok1 || !ok2 {
		t.Fatalf("%s: owner %s, group %s: not a name the test knows", r.path, r.owner, r.group)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	mode, err := parseMode(r.mode)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func (fx checkFixture) check(t *testing.T, bin string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), securityWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--config", fx.conf, "check").CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mailroom check: %v", err)
	}
	return code, string(out)
}

// fixFor runs the fix of the one line naming p.
func (fx checkFixture) fixFor(t *testing.T, out, p string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, " "+p+":") {
			continue
		}
		_, fix, ok := strings.Cut(line, "; fix: ")
		if !ok {
			t.Fatalf("no fix in %q", line)
		}
		ctx, cancel := context.WithTimeout(t.Context(), securityWait)
		defer cancel()
		if b, err := exec.CommandContext(ctx, "/bin/sh", "-c", fix).CombinedOutput(); err != nil {
			t.Fatalf("fix %q: %v\n%s", fix, err, b)
		}
		return
	}
	t.Fatalf("mailroom check names no %s:\n%s", p, out)
}

// TestSecurityCheckAgrees: mailroom check accepts an installation laid out
// as the rows marked "mailroom check" say, reports each one changed, and
// its fix gives the row's mode (and, as root, owner and group) back.
func TestSecurityCheckAgrees(t *testing.T) {
	_, files, err := parseSecurityDoc("..")
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.BuildBinaries(t, "mailroom/cmd/mailroom")["mailroom"]
	fx := newCheckFixture(t, files)
	if code, out := fx.check(t, bin); code != 0 || out != "no problems found\n" {
		t.Fatalf("mailroom check of an installation as %s says: exit %d\n%s", securityDoc, code, out)
	}
	checked := 0
	for _, r := range files {
		p, ok := fx.paths[r.path]
		if !r.has(sourceCheck) {
			continue
		}
		if !ok {
			t.Errorf("%s: no fixture path for %s", filesHeading, r.path)
			continue
		}
		checked++
		t.Run(r.path, func(t *testing.T) {
			want, _ := parseMode(r.mode)
			// A bit for others added (write, else read, else search):
			// reported, and the fix restores the mode.
			bit := fs.FileMode(0)
			for _, b := range []fs.FileMode{0o002, 0o004, 0o001} {
				if want&b == 0 && bit == 0 {
					bit = b
				}
			}
			if bit == 0 {
				t.Fatalf("mode %s gives others everything", r.mode)
			}
			if err := os.Chmod(p, want|bit); err != nil {
				t.Fatal(err)
			}
			code, out := fx.check(t, bin)
			if code != 1 {
				t.Fatalf("mode %s: exit %d, want 1:\n%s", octalMode(want|bit), code, out)
			}
			fx.fixFor(t, out, p)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := octalMode(st.Mode()); got != r.mode {
				t.Errorf("after the fix: mode %s, %s says %s", got, securityDoc, r.mode)
			}
			if os.Geteuid() != 0 || r.group != "mailroom" {
				return
			}
			// Run as root: the group changed to root is reported, and
			// the fix restores owner and group (and mode).
			if err := os.Lchown(p, -1, 0); err != nil {
				t.Fatal(err)
			}
			code, out = fx.check(t, bin)
			if code != 1 {
				t.Fatalf("group root: exit %d, want 1:\n%s", code, out)
			}
			fx.fixFor(t, out, p)
			if st, err = os.Stat(p); err != nil {
				t.Fatal(err)
			}
			uid, gid := fileOwner(st)
			if uid != fx.uids[r.owner] || gid != fx.gids[r.group] || octalMode(st.Mode()) != r.mode {
				t.Errorf("after the fix: %d:%d %s, %s says %s:%s %s", uid, gid, octalMode(st.Mode()), securityDoc, r.owner, r.group, r.mode)
			}
		})
	}
	if checked == 0 {
		t.Fatalf("no row of %s is marked %s", filesHeading, sourceCheck)
	}
	if code, out := fx.check(t, bin); code != 0 {
		t.Errorf("after every fix: exit %d\n%s", code, out)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: owners and groups are the test's own, so only modes were compared (run as root to compare owners)")
	}
}

// fileOwner is the uid and gid of a stat result.
func fileOwner(st fs.FileInfo) (uid, gid int) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return -1, -1
	}
	return int(sys.Uid), int(sys.Gid)
}
