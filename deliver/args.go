package deliver

import (
	"errors"
	"fmt"
	"strings"
)

// Options is the parsed command line of deliver in MDA mode.
type Options struct {
	ConfigPath string // -c FILE, --config FILE; "" means config.DefaultPath

	Sender    string // -f SENDER: the envelope sender ("" is the null sender)
	SenderSet bool   // -f was given (an empty -f "" is the null sender, not "absent")

	OriginalRecipient string   // -a ADDRESS: the recipient as the MTA first saw it (logged)
	Folder            string   // -m FOLDER: Maildir++ folder; a missing one falls back to INBOX
	QueueID           string   // --queue-id ID: the calling MTA's queue id (pipe(8)'s ${queue_id}), logged as msgid
	Recipients        []string // operands, plus every -d USER and -r ADDRESS, in order

	Queue       bool   // --queue: run the queue daemon over the spool
	Explain     string // --explain ADDRESS: print the routing decision and exit
	JSON        bool   // --json: --explain prints JSON
	CheckConfig bool   // --check-config
	PrintConfig bool   // --print-config
	Verbose     bool   // -v: also print the held-back logfmt lines when delivery fails
	Help        bool   // -h, --help
}

// ErrUsage marks a command-line error (exit 64).
var ErrUsage = errors.New("usage")

// Usage is the synopsis printed with a usage error.
const Usage = `usage: deliver [-c FILE] [-f SENDER] [-a ORIGINAL_RECIPIENT] [-m FOLDER] [--queue-id ID] [-v] [-d USER] [RECIPIENT...] < message
       deliver [-c FILE] --queue
       deliver [-c FILE] --explain ADDRESS [--json]
       deliver [-c FILE] --check-config | --print-config
`

// shortWithValue are the single-letter options that take a value. As in
// getopt(3), the value is either the rest of the word ("-fsender", as
// MIME::Lite and PHP write it) or the next word ("-f sender", as Postfix's
// pipe(8) asks for): ecosystem §0.1, §6.1.
const shortWithValue = "cfamdr"

// shortFlags are the single-letter options without a value. -e and -k are
// accepted for dovecot-lda compatibility: -e (report rejections on stderr
// with exit 77 instead of mailing a bounce) is what deliver always does, and
// -k (keep the environment) changes nothing here.
const shortFlags = "vhek"

// longOptions maps each long option to whether it takes a value.
var longOptions = map[string]bool{
	"config":       true,
	"queue":        false,
	"queue-id":     true,
	"explain":      true,
	"json":         false,
	"check-config": false,
	"print-config": false,
	"verbose":      false,
	"help":         false,
}

// ParseArgs parses deliver's arguments (without the program name).
// Options and operands may be mixed; "--" ends the options. It reports
// errors wrapping ErrUsage.
func ParseArgs(args []string) (Options, error) {
	var o Options
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.Recipients = append(o.Recipients, args[i+1:]...)
			return o, o.validate()
		case strings.HasPrefix(a, "--"):
			n, err := o.parseLong(a[2:], args[i+1:])
			if err != nil {
				return Options{}, err
			}
			i += n
		case len(a) > 1 && a[0] == '-':
			n, err := o.parseShort(a[1:], args[i+1:])
			if err != nil {
				return Options{}, err
			}
			i += n
		default:
			o.Recipients = append(o.Recipients, a)
		}
	}
	return o, o.validate()
}

// parseLong handles "--name", "--name=value" and "--name value"; it returns
// how many following words it consumed.
func (o *Options) parseLong(word string, rest []string) (int, error) {
	name, value, glued := strings.Cut(word, "=")
	takesValue, known := longOptions[name]
	if !known {
		return 0, fmt.Errorf("%w: unknown option --%s", ErrUsage, name)
	}
	used := 0
	switch {
	case takesValue && !glued:
		if len(rest) == 0 {
			return 0, fmt.Errorf("%w: option --%s needs a value", ErrUsage, name)
		}
		value, used = rest[0], 1
	case !takesValue && glued:
		return 0, fmt.Errorf("%w: option --%s takes no value", ErrUsage, name)
	}
	switch name {
	case "config":
		o.ConfigPath = value
	case "queue":
		o.Queue = true
	case "queue-id":
		if value == "" {
			return 0, fmt.Errorf("%w: --queue-id needs a non-empty id", ErrUsage)
		}
		o.QueueID = value
	case "explain":
		o.Explain = value
	case "json":
		o.JSON = true
	case "check-config":
		o.CheckConfig = true
	case "print-config":
		o.PrintConfig = true
	case "verbose":
		o.Verbose = true
	case "help":
		o.Help = true
	}
	return used, nil
}

// parseShort handles one word of clustered single-letter options such as
// "-v", "-ve", "-fsender" or "-vf sender"; it returns how many following
// words it consumed.
func (o *Options) parseShort(letters string, rest []string) (int, error) {
	for j := 0; j < len(letters); j++ {
		c := letters[j]
		if strings.IndexByte(shortFlags, c) >= 0 {
			o.setFlag(c)
			continue
		}
		if strings.IndexByte(shortWithValue, c) < 0 {
			return 0, fmt.Errorf("%w: unknown option -%c", ErrUsage, c)
		}
		if j+1 < len(letters) {
			o.setValue(c, letters[j+1:])
			return 0, nil
		}
		if len(rest) == 0 {
			return 0, fmt.Errorf("%w: option -%c needs a value", ErrUsage, c)
		}
		o.setValue(c, rest[0])
		return 1, nil
	}
	return 0, nil
}

func (o *Options) setFlag(c byte) {
	switch c {
	case 'v':
		o.Verbose = true
	case 'h':
		o.Help = true
	}
}

func (o *Options) setValue(c byte, v string) {
	switch c {
	case 'c':
		o.ConfigPath = v
	case 'f':
		o.Sender, o.SenderSet = v, true
	case 'a':
		o.OriginalRecipient = v
	case 'm':
		o.Folder = v
	case 'd', 'r':
		// dovecot-lda's -d names the user to deliver to and -r the final
		// recipient; with user@domain accounts both name a recipient.
		o.Recipients = append(o.Recipients, v)
	}
}

// validate refuses combinations that mean nothing.
func (o *Options) validate() error {
	modes := 0
	for _, set := range []bool{o.Queue, o.Explain != "", o.CheckConfig, o.PrintConfig} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		return fmt.Errorf("%w: --queue, --explain, --check-config and --print-config exclude each other", ErrUsage)
	}
	if o.JSON && o.Explain == "" {
		return fmt.Errorf("%w: --json goes with --explain", ErrUsage)
	}
	if modes == 1 && len(o.Recipients) > 0 {
		return fmt.Errorf("%w: recipients given with --queue, --explain, --check-config or --print-config", ErrUsage)
	}
	if o.Queue && (o.SenderSet || o.Folder != "" || o.OriginalRecipient != "" || o.QueueID != "") {
		return fmt.Errorf("%w: -f, -m, -a and --queue-id are for one message, not --queue", ErrUsage)
	}
	if o.QueueID != "" && !validQueueID(o.QueueID) {
		return fmt.Errorf("%w: --queue-id %q: want 1 to %d letters, digits, '.', '_' or '-'", ErrUsage, o.QueueID, maxQueueID)
	}
	for _, r := range o.Recipients {
		if r == "" {
			return fmt.Errorf("%w: empty recipient", ErrUsage)
		}
	}
	return nil
}

// maxQueueID bounds --queue-id: Postfix's long queue ids are 10 to 20
// characters, Exim's 16 to 23.
const maxQueueID = 64

// validQueueID accepts the ids MTAs write (Postfix: letters and digits;
// Exim: with '-'), and nothing that a log search would have to quote.
func validQueueID(id string) bool {
	if len(id) == 0 || len(id) > maxQueueID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
