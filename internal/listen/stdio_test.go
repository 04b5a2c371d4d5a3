package listen

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stdioPipes returns a Stdio conn over two pipes and the test's ends.
func stdioPipes(t *testing.T) (conn net.Conn, toConn, fromConn *os.File) {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	conn = Stdio(inR, outW)
	t.Cleanup(func() { conn.Close(); inW.Close(); outR.Close() })
	return conn, inW, outR
}

func TestStdioConversation(t *testing.T) {
	t.Setenv("TCPREMOTEIP", "192.0.2.7")
	t.Setenv("TCPREMOTEPORT", "4242")
	t.Setenv("TCPLOCALIP", "::1")
	t.Setenv("TCPLOCALPORT", "110")
	conn, toConn, fromConn := stdioPipes(t)
	if got := conn.RemoteAddr().String(); got != "192.0.2.7:4242" {
		t.Errorf("RemoteAddr = %s", got)
	}
	if got := conn.LocalAddr().String(); got != "[::1]:110" || !IsLoopback(conn.LocalAddr()) {
		t.Errorf("LocalAddr = %s", got)
	}
	if _, err := conn.Write([]byte("+OK hello\r\n")); err != nil {
		t.Fatal(err)
	}
	fromConn.SetReadDeadline(time.Now().Add(waitLimit))
	r := bufio.NewReader(fromConn)
	if line, err := r.ReadString('\n'); err != nil || line != "+OK hello\r\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	toConn.Write([]byte("QUIT\r\n"))
	conn.SetReadDeadline(time.Now().Add(waitLimit))
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "QUIT\r\n" {
		t.Fatalf("conn read %q, %v", line, err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	// Close closed the files Stdio was given, so the client sees the end.
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after Close the client read %q, %v; want EOF", rest, err)
	}
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if _, err := conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
	if err := conn.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestStdioAddressesWithoutEnv(t *testing.T) {
	t.Setenv("TCPREMOTEIP", "")
	t.Setenv("TCPLOCALIP", "")
	conn, _, _ := stdioPipes(t)
	if conn.RemoteAddr().String() != "stdin" || conn.LocalAddr().String() != "stdout" {
		t.Errorf("addresses %v, %v", conn.RemoteAddr(), conn.LocalAddr())
	}
	if IsLoopback(conn.RemoteAddr()) {
		t.Error("a pipe counts as loopback")
	}
}

// TestStdioDeadlines: a session timeout must be able to end a read from a
// silent client and a write to a client that does not read.
func TestStdioDeadlines(t *testing.T) {
	conn, _, _ := stdioPipes(t)
	conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline = %v", err)
	}
	var ne net.Error
	conn.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	big := make([]byte, 1<<20) // more than a pipe holds
	if _, err := conn.Write(big); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Write past its deadline = %v", err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		t.Fatalf("clearing deadlines: %v", err)
	}
}

// TestStdioRegularFile: a file that is neither pipe nor socket is used as
// it is, without deadlines.
func TestStdioRegularFile(t *testing.T) {
	dir := t.TempDir()
	inPath := filepath.Join(dir, "in")
	if err := os.WriteFile(inPath, []byte("NOOP\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(inPath)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	conn := Stdio(in, out)
	all, err := io.ReadAll(conn)
	if err != nil || string(all) != "NOOP\r\n" {
		t.Fatalf("read %q, %v", all, err)
	}
	conn.Write([]byte("+OK\r\n"))
	if err := conn.SetReadDeadline(time.Now()); err == nil {
		t.Error("a deadline on a regular file was accepted")
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil || !strings.HasPrefix(string(got), "+OK") {
		t.Fatalf("out = %q, %v", got, err)
	}
	if _, err := out.Write([]byte("x")); err == nil {
		t.Error("Close left the given file open")
	}
}
