package sendmail

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"mailroom/spool"
)

// Mode is what one run does (sendmail's -b letter, or argv[0]).
type Mode int

const (
	ModeSubmit   Mode = iota // -bm (the default): read a message, drop it
	ModeSMTP                 // -bs: SMTP dialogue on stdin/stdout
	ModeQueue                // -bp, mailq: list the queue
	ModeAliases              // -bi, -I, newaliases: check the aliases file
	ModeVerify               // -bv: print the routing decision
	ModeRunQueue             // -q[...]: the daemon runs the queue; only checks
)

// Options is a parsed sendmail command line.
type Options struct {
	Mode       Mode
	ConfigPath string // -C FILE, --config FILE; "" = config.DefaultPath

	Sender    string // -f/-r: envelope sender, unqualified; "" with SenderSet = null sender
	SenderSet bool
	FullName  string // -F: full name for a synthesised From:

	Extract    bool // -t: recipients from the header
	IgnoreDots bool // -i, -oi: a lone "." does not end the message

	Notify spool.Notify   // -N
	Ret    spool.Ret      // -R
	EnvID  string         // -V
	Body   spool.BodyType // -B; "" = not given

	Verbose     int    // -v, repeatable
	QueueArg    string // what followed -q ("30m", "Rexample.org"); ignored
	JSON        bool   // --json (-bp, -bv)
	CheckConfig bool   // --check-config
	PrintConfig bool   // --print-config
	Help        bool   // --help

	// Recipients are the operands, each split as an address list (commas,
	// "Name <addr>" forms), not yet qualified.
	Recipients []string
	// Warnings are lenient choices worth a line on stderr (an unknown -B).
	Warnings []string
}

// ErrUsage marks every command-line error (exit 64).
var ErrUsage = errors.New("usage")

// Usage is printed with --help.
const Usage = `usage: sendmail [-t] [-i] [-f sender] [-F name] [-N dsn] [-R ret] [-V envid] [-B type] [-C file] [--] [recipient ...] < message
       sendmail -bs | -bp [--json] | -bi | -bv [--json] address ... | -q
       mailq [--json]
       newaliases
`

// Letters without a value. G, U, m, n, c, x and the -o letters other than i
// mean nothing here and are accepted so that callers written for other
// MTAs keep working (Postfix accepts the same set).
const shortFlags = "GIUcimntvx"

// Letters with a value: glued ("-fADDR") or the next word ("-f ADDR"), as
// getopt(3). b and o take their sub-letter as the value's first character.
// q is handled apart: its value is only ever glued.
const shortWithValue = "ABCFLNORVXbefhopr"

var longOptions = map[string]bool{ // name -> takes a value
	"config":       true,
	"check-config": false,
	"print-config": false,
	"json":         false,
	"help":         false,
}

// ParseArgs parses a command line. prog is argv[0]: its basename mailq
// starts in -bp mode, newaliases in -bi mode. Option parsing stops at the
// first operand (POSIX, as Postfix on Linux: "sendmail root -t" sends to
// root and to "-t"), or after "--".
func ParseArgs(prog string, args []string) (Options, error) {
	var o Options
	switch filepath.Base(prog) {
	case "mailq":
		o.Mode = ModeQueue
	case "newaliases":
		o.Mode = ModeAliases
	}
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			operands = args[i+1:]
		case strings.HasPrefix(a, "--"):
			n, err := o.parseLong(a[2:], args[i+1:])
			if err != nil {
				return Options{}, err
			}
			i += n
			continue
		case len(a) > 1 && a[0] == '-':
			n, err := o.parseShort(a[1:], args[i+1:])
			if err != nil {
				return Options{}, err
			}
			i += n
			continue
		default:
			operands = args[i:]
		}
		break
	}
	for _, op := range operands {
		// Header injection (ecosystem §1.3): the address parser reads a
		// line end as folding white space, which is right in a header
		// and never in an argument.
		if hasControl(op) {
			return Options{}, fmt.Errorf("%w: control character in recipient %q", ErrUsage, op)
		}
		addrs, err := parseAddressList(op)
		if err != nil {
			return Options{}, fmt.Errorf("%w: recipient %q: %v", ErrUsage, op, err)
		}
		o.Recipients = append(o.Recipients, addrs...)
		if len(addrs) == 0 {
			return Options{}, fmt.Errorf("%w: recipient %q holds no address", ErrUsage, op)
		}
	}
	return o, o.validate()
}

func (o *Options) parseLong(word string, rest []string) (int, error) {
	name, value, glued := strings.Cut(word, "=")
	takesValue, known := longOptions[name]
	if !known {
		return 0, fmt.Errorf("%w: unknown option --%s", ErrUsage, printable(name))
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
	case "check-config":
		o.CheckConfig = true
	case "print-config":
		o.PrintConfig = true
	case "json":
		o.JSON = true
	case "help":
		o.Help = true
	}
	return used, nil
}

// parseShort handles one word of option letters ("-ti", "-fADDR",
// "-oem", "-q30m") and returns how many following words it consumed.
func (o *Options) parseShort(letters string, rest []string) (int, error) {
	for j := 0; j < len(letters); j++ {
		c := letters[j]
		switch {
		case c == 'q':
			// A bare -q must not eat the next word (Postfix special-cases
			// it too); -q30m, -qRsite, -qIid keep their value glued.
			o.Mode, o.QueueArg = ModeRunQueue, letters[j+1:]
			return 0, nil
		case strings.IndexByte(shortFlags, c) >= 0:
			o.setFlag(c)
		case strings.IndexByte(shortWithValue, c) >= 0:
			value, used := letters[j+1:], 0
			if value == "" {
				if len(rest) == 0 {
					return 0, fmt.Errorf("%w: option -%c needs a value", ErrUsage, c)
				}
				value, used = rest[0], 1
			}
			return used, o.setValue(c, value)
		default:
			return 0, fmt.Errorf("%w: unknown option -%s", ErrUsage, printable(string(c)))
		}
	}
	return 0, nil
}

func (o *Options) setFlag(c byte) {
	switch c {
	case 't':
		o.Extract = true
	case 'i':
		o.IgnoreDots = true
	case 'v':
		o.Verbose++
	case 'I':
		o.Mode = ModeAliases
	}
	// G (gateway submission), U (initial submission), m (me too),
	// n (no aliasing), c and x: accepted, meaningless here.
}

func (o *Options) setValue(c byte, v string) error {
	switch c {
	case 'f', 'r':
		return o.setSender(v)
	case 'F':
		if hasControl(v) {
			return fmt.Errorf("%w: control character in -F", ErrUsage)
		}
		o.FullName = v
	case 'C':
		o.ConfigPath = v
	case 'b':
		return o.setMode(v)
	case 'o':
		return o.setOption(v)
	case 'N':
		n, err := parseNotify(v)
		if err != nil {
			return err
		}
		o.Notify = n
	case 'R':
		switch strings.ToLower(v) {
		case "full":
			o.Ret = spool.RetFull
		case "hdrs":
			o.Ret = spool.RetHdrs
		default:
			return fmt.Errorf("%w: -R %q: want full or hdrs", ErrUsage, v)
		}
	case 'V':
		if err := checkEnvID(v); err != nil {
			return err
		}
		o.EnvID = v
	case 'B':
		o.setBody(v)
	}
	// A (submit.cf or sendmail.cf), L (syslog tag), O (option=value),
	// X (traffic log), e, h (hop count), p (protocol): accepted, ignored.
	return nil
}

// setSender takes -f/-r: "", "<>" is the null sender; "<addr>" and
// "Name <addr>" give addr.
func (o *Options) setSender(v string) error {
	o.SenderSet = true
	if hasControl(v) {
		return fmt.Errorf("%w: control character in sender %q", ErrUsage, v)
	}
	if t := strings.TrimSpace(v); t == "" || t == "<>" {
		o.Sender = ""
		return nil
	}
	addrs, err := parseAddressList(v)
	if err != nil {
		return fmt.Errorf("%w: sender %q: %v", ErrUsage, v, err)
	}
	if len(addrs) != 1 {
		return fmt.Errorf("%w: sender %q is not one address", ErrUsage, v)
	}
	o.Sender = addrs[0]
	return nil
}

// setMode takes -b's letter.
func (o *Options) setMode(v string) error {
	if len(v) != 1 {
		return fmt.Errorf("%w: unknown option -b%s", ErrUsage, printable(v))
	}
	switch v[0] {
	case 'm':
		o.Mode = ModeSubmit
	case 's':
		o.Mode = ModeSMTP
	case 'p':
		o.Mode = ModeQueue
	case 'i':
		o.Mode = ModeAliases
	case 'v':
		o.Mode = ModeVerify
	case 'd', 'D', 'l':
		return fmt.Errorf("%w: -b%s: sendmail runs no daemon here; the SMTP server is smtpd(8)", ErrUsage, v)
	default:
		return fmt.Errorf("%w: unknown option -b%s", ErrUsage, printable(v))
	}
	return nil
}

// setOption takes -o's letter and value ("-oi", "-oem", "-odb",
// "-oA/etc/aliases"). Only -oi means something here; the rest
// (error mode, delivery mode: we always queue) are ignored, like Postfix.
func (o *Options) setOption(v string) error {
	if v == "" || hasControl(v) {
		return fmt.Errorf("%w: -o needs an option letter", ErrUsage)
	}
	if v[0] == 'i' {
		o.IgnoreDots = true
	}
	return nil
}

func (o *Options) setBody(v string) {
	switch strings.ToUpper(v) {
	case "7BIT":
		o.Body = spool.Body7Bit
	case "8BITMIME":
		o.Body = spool.Body8BitMIME
	case "BINARYMIME":
		o.Body = spool.BodyBinaryMIME
	default:
		// Postfix refuses; every other MTA ignores it. Lenient, and said.
		o.Warnings = append(o.Warnings, fmt.Sprintf("-B %s ignored: want 7BIT or 8BITMIME", printable(v)))
	}
}

// parseNotify reads -N: "never", or a comma list of success, failure,
// delay (RFC 3461 §4.1).
func parseNotify(v string) (spool.Notify, error) {
	var n spool.Notify
	for _, w := range strings.Split(strings.ToLower(v), ",") {
		switch strings.TrimSpace(w) {
		case "never":
			n |= spool.NotifyNever
		case "success":
			n |= spool.NotifySuccess
		case "failure":
			n |= spool.NotifyFailure
		case "delay":
			n |= spool.NotifyDelay
		default:
			return 0, fmt.Errorf("%w: -N %q: want never, or success, failure, delay", ErrUsage, printable(v))
		}
	}
	if n&spool.NotifyNever != 0 && n != spool.NotifyNever {
		return 0, fmt.Errorf("%w: -N never excludes the other keywords", ErrUsage)
	}
	return n, nil
}

// checkEnvID: RFC 3461 §4.4, at most 100 characters of printable ASCII.
func checkEnvID(v string) error {
	if v == "" || len(v) > 100 {
		return fmt.Errorf("%w: -V envid must have 1 to 100 characters", ErrUsage)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return fmt.Errorf("%w: -V envid must be printable ASCII without blanks", ErrUsage)
		}
	}
	return nil
}

// validate refuses combinations that mean nothing.
func (o *Options) validate() error {
	if o.CheckConfig && o.PrintConfig {
		return fmt.Errorf("%w: --check-config and --print-config exclude each other", ErrUsage)
	}
	if o.CheckConfig || o.PrintConfig || o.Help {
		if len(o.Recipients) > 0 {
			return fmt.Errorf("%w: addresses given with --check-config, --print-config or --help", ErrUsage)
		}
		return nil
	}
	if o.Extract && o.Mode != ModeSubmit {
		return fmt.Errorf("%w: -t goes only with message submission", ErrUsage)
	}
	if o.JSON && o.Mode != ModeQueue && o.Mode != ModeVerify {
		return fmt.Errorf("%w: --json goes with -bp (mailq) or -bv", ErrUsage)
	}
	switch o.Mode {
	case ModeSubmit:
		if len(o.Recipients) == 0 && !o.Extract {
			return fmt.Errorf("%w: no recipients given (use -t to read them from the message header)", ErrUsage)
		}
	case ModeVerify:
		if len(o.Recipients) == 0 {
			return fmt.Errorf("%w: -bv needs at least one address", ErrUsage)
		}
	default:
		if len(o.Recipients) > 0 {
			return fmt.Errorf("%w: %s takes no addresses", ErrUsage, o.Mode)
		}
	}
	return nil
}

// String names a mode as its option.
func (m Mode) String() string {
	switch m {
	case ModeSubmit:
		return "-bm"
	case ModeSMTP:
		return "-bs"
	case ModeQueue:
		return "-bp"
	case ModeAliases:
		return "-bi"
	case ModeVerify:
		return "-bv"
	case ModeRunQueue:
		return "-q"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// printable quotes control characters so an error line stays one line.
func printable(s string) string {
	if hasControl(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}
