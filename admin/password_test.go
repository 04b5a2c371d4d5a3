package admin

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadPasswordLine(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"pw\n", "pw", true},
		{"pw", "pw", true},
		{"pw\r\n", "pw", true},
		{" spaced pw \n", " spaced pw ", true},
		{"", "", false},
		{"\n", "", false},
		{"a\nb", "", false},
		{"a\n\n", "", false},
		{"a\x00b\n", "", false},
		{strings.Repeat("x", maxPassword+1), "", false},
	} {
		got, err := readPasswordLine(strings.NewReader(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("readPasswordLine(%q) = %q, %v", tc.in, got, err)
		}
		if err != nil && exitCode(err) != ExitDataErr {
			t.Errorf("readPasswordLine(%q): exit code %d", tc.in, exitCode(err))
		}
	}
}

// openPTY returns the controller and the terminal side of a new
// pseudo-terminal.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

func TestPromptPasswordOnTerminal(t *testing.T) {
	for _, tc := range []struct {
		typed, want string
		ok          bool
	}{
		{"tty pw\ntty pw\n", "tty pw", true},
		{"one\ntwo\n", "", false},
	} {
		ptm, pts := openPTY(t)
		if _, err := ptm.Write([]byte(tc.typed)); err != nil {
			t.Fatal(err)
		}
		var prompts bytes.Buffer
		got, err := readPassword(pts, &prompts, "")
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("typed %q: %q, %v", tc.typed, got, err)
		}
		if !strings.Contains(prompts.String(), "Retype new password: ") {
			t.Errorf("prompts %q", prompts.String())
		}
		st, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if st.Lflag&unix.ECHO == 0 {
			t.Error("echo not restored after the prompt")
		}
	}
}
