package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxPassword bounds what is read as a password; bcrypt uses 72 bytes and
// nothing sensible is longer than this.
const maxPassword = 1024

// readPassword reads the new password: from the file named by passwordFile
// when set, else from stdin. A terminal on stdin gets a prompt with echo
// off and a confirmation; anything else must hold exactly one line (the
// final newline optional).
func readPassword(stdin io.Reader, stderr io.Writer, passwordFile string) (string, error) {
	if passwordFile != "" {
		f, err := os.Open(passwordFile)
		if err != nil {
			return "", withCode(ExitIOErr, fmt.Errorf("password file: %w", err))
		}
		defer f.Close()
		return readPasswordLine(f)
	}
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		return promptPassword(f, stderr)
	}
	return readPasswordLine(stdin)
}

// readPasswordLine reads a single line, stripping one trailing "\n" (or
// "\r\n").
func readPasswordLine(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPassword+3))
	if err != nil {
		return "", withCode(ExitIOErr, fmt.Errorf("read password: %w", err))
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	return checkPassword(data)
}

func checkPassword(pw []byte) (string, error) {
	switch {
	case len(pw) == 0:
		return "", withCode(ExitDataErr, errors.New("empty password"))
	case len(pw) > maxPassword:
		return "", withCode(ExitDataErr, fmt.Errorf("password longer than %d bytes", maxPassword))
	case bytes.ContainsAny(pw, "\n\r\x00"):
		return "", withCode(ExitDataErr, errors.New("password must be a single line without NUL"))
	}
	return string(pw), nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// promptPassword asks twice on a terminal with echo turned off.
func promptPassword(tty *os.File, stderr io.Writer) (string, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", withCode(ExitIOErr, fmt.Errorf("terminal: %w", err))
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ECHONL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", withCode(ExitIOErr, fmt.Errorf("terminal: %w", err))
	}
	// Restoring is best effort: the password is read by then.
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)

	var answers [2]string
	for i, prompt := range []string{"New password: ", "Retype new password: "} {
		fmt.Fprint(stderr, prompt)
		line, err := readTTYLine(tty)
		if err != nil {
			return "", err
		}
		if answers[i], err = checkPassword(line); err != nil {
			return "", err
		}
	}
	if answers[0] != answers[1] {
		return "", withCode(ExitDataErr, errors.New("passwords do not match"))
	}
	return answers[0], nil
}

// readTTYLine reads up to a newline one byte at a time, so nothing beyond
// the line is consumed from the terminal.
func readTTYLine(r io.Reader) ([]byte, error) {
	var line []byte
	var b [1]byte
	for len(line) <= maxPassword {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				return line, nil
			}
			line = append(line, b[0])
		}
		if err == io.EOF {
			return line, nil
		}
		if err != nil {
			return nil, withCode(ExitIOErr, fmt.Errorf("read password: %w", err))
		}
	}
	return line, nil
}
