package imapd

import (
	"path/filepath"
	"strings"
	"unicode/utf8"

	"mailroom/imapd/wire"
	"mailroom/maildir"
)

// The hierarchy delimiter clients see (Maildir++ uses "." on disk too;
// the engine's names use "/" between levels).
const delimiter = "."

// folderArg is the folder named by a command's one argument (DELETE,
// SUBSCRIBE, GETQUOTAROOT ...), through folderName.
func (ss *session) folderArg(c *wire.Command) (string, error) {
	if len(c.Args) != 1 {
		return "", bad("%s needs a mailbox name", c.Name)
	}
	name, err := wire.ParseMailbox(c.Args[0])
	if err != nil {
		return "", err
	}
	return ss.folderName(name)
}

// folderName maps a mailbox name as the client sent it to the engine's
// folder name ("INBOX", or levels joined by "/"). It is the one gate
// between client input and paths: a name with an empty level, "/",
// NUL or another control character, a level "." or "..", wildcards, or
// bad modified UTF-7 (or bad UTF-8 once UTF8=ACCEPT is on) is refused,
// and the engine's FolderPath must land directly under the root.
func (ss *session) folderName(name string) (string, error) {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", nil
	}
	if name == "" || len(name) > 1000 {
		return "", errBadName
	}
	decoded := name
	if ss.utf8 {
		if !utf8.ValidString(name) {
			return "", errBadName
		}
	} else {
		for i := 0; i < len(name); i++ {
			if name[i] >= 0x80 {
				return "", errBadName
			}
		}
		d, err := maildir.DecodeMUTF7(name)
		if err != nil {
			return "", errBadName
		}
		decoded = d
	}
	levels := strings.Split(decoded, delimiter)
	for i, l := range levels {
		if l == "" || strings.ContainsAny(l, "/\\%*") {
			return "", errBadName
		}
		for _, r := range l {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
				return "", errBadName
			}
		}
		if i == 0 && strings.EqualFold(l, "INBOX") {
			levels[i] = "INBOX"
		}
	}
	folder := strings.Join(levels, "/")
	if err := checkFolderPath(ss.root, folder); err != nil {
		return "", err
	}
	return folder, nil
}

// checkFolderPath makes sure the engine maps folder to a directory
// directly under root (never the root's parent, never deeper).
func checkFolderPath(root, folder string) error {
	p, err := maildir.FolderPath(root, folder)
	if err != nil {
		return errBadName
	}
	if folder == "INBOX" {
		return nil
	}
	if filepath.Dir(p) != filepath.Clean(root) || !strings.HasPrefix(filepath.Base(p), ".") || filepath.Base(p) == ".." {
		return errBadName
	}
	return nil
}

// errBadName answers a name that can never be a mailbox.
var errBadName = no("CANNOT", "invalid mailbox name")

// mailboxName maps an engine folder name back to what the client sees.
func (ss *session) mailboxName(folder string) string {
	if strings.EqualFold(folder, "INBOX") {
		return "INBOX"
	}
	levels := strings.Split(folder, "/")
	if !ss.utf8 {
		for i, l := range levels {
			levels[i] = maildir.EncodeMUTF7(l)
		}
	}
	return strings.Join(levels, delimiter)
}

// folderPath returns the Maildir directory of an engine folder name.
func (ss *session) folderPath(folder string) (string, error) {
	if err := checkFolderPath(ss.root, folder); err != nil {
		return "", err
	}
	p, err := maildir.FolderPath(ss.root, folder)
	if err != nil {
		return "", errBadName
	}
	return p, nil
}
