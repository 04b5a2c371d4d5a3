package account

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// User is one line of the passwd-file.
type User struct {
	Address string            // user@domain as written in the file
	Hash    string            // password field, "{SCHEME}hash"; empty never verifies
	UID     int               // -1 if the field is empty
	GID     int               // -1 if the field is empty
	Home    string            // absolute Maildir root; "" means <mail_root>/<domain>/<localpart>
	Extra   map[string]string // extra fields, keys as written (userdb_quota_rule, ...)
}

// DB is a loaded passwd-file. It is read-only and safe for concurrent use.
type DB struct {
	path     string
	mailRoot string
	users    []User
	byName   map[string]int // normalize(address) -> index in users

	dummyOnce sync.Once
	dummy     string // hash verified for unknown users, see Verify
}

// Load reads the passwd-file at path. mailRoot is where Maildirs of users
// without a home field live. Errors name path:line; a missing file is an
// error wrapping fs.ErrNotExist.
func Load(path, mailRoot string) (*DB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("passwd file: %w", err)
	}
	users, err := parseFile(path, data)
	if err != nil {
		return nil, err
	}
	db := &DB{path: path, mailRoot: mailRoot, users: users, byName: make(map[string]int, len(users))}
	for i, u := range users {
		db.byName[normalize(u.Address)] = i
	}
	return db, nil
}

// parseFile parses a whole passwd-file; errors name path:line.
func parseFile(path string, data []byte) ([]User, error) {
	var users []User
	seen := map[string]int{} // normalize(address) -> line number
	for i, line := range splitLines(data) {
		u, ok, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		if !ok {
			continue
		}
		key := normalize(u.Address)
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s:%d: user %s already defined on line %d", path, i+1, u.Address, first)
		}
		seen[key] = i + 1
		users = append(users, u)
	}
	return users, nil
}

// splitLines splits data at '\n'; a final line without '\n' still counts.
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	s := string(bytes.TrimSuffix(data, []byte("\n")))
	return strings.Split(s, "\n")
}

// Field positions of a passwd-file line.
const (
	fieldUser = iota
	fieldPass
	fieldUID
	fieldGID
	fieldGecos
	fieldHome
	fieldShell
	fieldExtra
	numFields
)

// splitFields splits a line into at most numFields fields; the last field,
// extra_fields, keeps any further ':' (quota rules contain them).
func splitFields(line string) []string {
	return strings.SplitN(line, ":", numFields)
}

// parseLine parses one passwd-file line. ok is false for blank lines and
// comments. Its errors never quote the user, uid, gid or home field: when
// a ':' is missing or doubled, one of them holds the password hash.
func parseLine(line string) (u User, ok bool, err error) {
	if strings.TrimSpace(line) == "" || line[0] == '#' {
		return User{}, false, nil
	}
	if strings.ContainsAny(line, "\r\x00") {
		return User{}, false, errors.New("line contains CR or NUL")
	}
	f := splitFields(line)
	if len(f) < 2 {
		return User{}, false, errors.New("no password field (want user@domain:{SCHEME}hash:...)")
	}
	u = User{Address: f[fieldUser], Hash: f[fieldPass], UID: -1, GID: -1}
	if err := addressProblem(u.Address); err != nil {
		return User{}, false, fmt.Errorf("user field: %w", err)
	}
	if len(f) > fieldUID {
		if u.UID, err = parseID("uid", f[fieldUID]); err != nil {
			return User{}, false, err
		}
	}
	if len(f) > fieldGID {
		if u.GID, err = parseID("gid", f[fieldGID]); err != nil {
			return User{}, false, err
		}
	}
	if len(f) > fieldHome && f[fieldHome] != "" {
		u.Home = f[fieldHome]
		if !filepath.IsAbs(u.Home) {
			return User{}, false, errors.New("home field is not an absolute path")
		}
	}
	if len(f) > fieldExtra {
		u.Extra = parseExtra(f[fieldExtra])
	}
	if _, _, err := u.quota(); err != nil {
		return User{}, false, err
	}
	return u, true, nil
}

// parseID parses a uid or gid field. Dovecot refuses 0: mail is never
// handled as root.
func parseID(what, s string) (int, error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		// Not quoted: a doubled ':' puts the hash here.
		return 0, fmt.Errorf("%s field is not a number below 2^31", what)
	}
	if n == 0 {
		return 0, fmt.Errorf("%s 0 (root) is not allowed", what)
	}
	return int(n), nil
}

// parseExtra parses "k=v k2=v2 flag" into a map; a later key wins, as a
// later setting does in Dovecot.
func parseExtra(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(s) {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			continue // "=x" names nothing
		}
		m[k] = v
	}
	return m
}

// formatLine renders u as a passwd-file line, omitting trailing empty fields.
func formatLine(u User) string {
	f := make([]string, numFields)
	f[fieldUser] = u.Address
	f[fieldPass] = u.Hash
	if u.UID >= 0 {
		f[fieldUID] = strconv.Itoa(u.UID)
	}
	if u.GID >= 0 {
		f[fieldGID] = strconv.Itoa(u.GID)
	}
	f[fieldHome] = u.Home
	keys := make([]string, 0, len(u.Extra))
	for k := range u.Extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			f[fieldExtra] += " "
		}
		f[fieldExtra] += k
		if v := u.Extra[k]; v != "" {
			f[fieldExtra] += "=" + v
		}
	}
	n := numFields
	for n > 2 && f[n-1] == "" {
		n--
	}
	return strings.Join(f[:n], ":")
}

// Lookup returns the user called address, compared case-insensitively.
// The returned User is a copy.
func (db *DB) Lookup(address string) (*User, bool) {
	i, ok := db.byName[normalize(address)]
	if !ok {
		return nil, false
	}
	u := cloneUser(db.users[i])
	return &u, true
}

// Mailbox returns the Maildir root of address: its home field when set,
// else <mailRoot>/<domain>/<localpart>, lower-cased so that every spelling
// of the address names the same directory.
func (db *DB) Mailbox(address string) (root string, ok bool) {
	i, ok := db.byName[normalize(address)]
	if !ok {
		return "", false
	}
	u := db.users[i]
	if u.Home != "" {
		return u.Home, true
	}
	local, domain := splitAddress(normalize(u.Address))
	return filepath.Join(db.mailRoot, domain, local), true
}

// Users returns every user in file order (copies).
func (db *DB) Users() []User {
	out := make([]User, len(db.users))
	for i, u := range db.users {
		out[i] = cloneUser(u)
	}
	return out
}

func cloneUser(u User) User {
	if u.Extra != nil {
		m := make(map[string]string, len(u.Extra))
		for k, v := range u.Extra {
			m[k] = v
		}
		u.Extra = m
	}
	return u
}
