package imapd

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailroom/imapd/wire"
)

// deflateClient is the client side of a COMPRESS=DEFLATE session, done
// with compress/flate independently of the server's pooled writers.
type deflateClient struct {
	*client
	zw *flate.Writer
}

// startDeflate sends COMPRESS DEFLATE on c and switches c to DEFLATE both
// ways after the tagged OK.
func startDeflate(t *testing.T, c *client) *deflateClient {
	t.Helper()
	c.send("z COMPRESS DEFLATE\r\n")
	must(t, c.line(), "z OK")
	return switchDeflate(t, c)
}

func switchDeflate(t *testing.T, c *client) *deflateClient {
	t.Helper()
	zw, err := flate.NewWriter(c.conn, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	// What the plain reader already buffered was compressed.
	rest, err := c.r.Peek(c.r.Buffered())
	if err != nil {
		t.Fatal(err)
	}
	src := io.MultiReader(bytes.NewReader(bytes.Clone(rest)), c.conn)
	c.r = bufio.NewReader(flate.NewReader(src))
	return &deflateClient{client: c, zw: zw}
}

func (d *deflateClient) send(s string) {
	d.t.Helper()
	_ = d.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(d.zw, s); err != nil {
		d.t.Fatal(err)
	}
	if err := d.zw.Flush(); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deflateClient) cmd(tag, line string) []string {
	d.t.Helper()
	d.send(tag + " " + line + "\r\n")
	return d.until(tag)
}

func TestCompressDeflate(t *testing.T) {
	e := newTestEnv(t, nil)
	big := "Subject: big\r\n\r\n" + strings.Repeat("All work and no play makes Jack a dull boy.\r\n", 5000)
	deliver(t, e.root(), "", fixture1)
	deliver(t, e.root(), "", big)
	c := e.dial()
	c.line()
	// Not before login (RFC 4978 §5: command-auth).
	must(t, last(c.cmd("a", "COMPRESS DEFLATE")), "a BAD")
	must(t, last(c.cmd("L", "LOGIN "+testUser+" "+testPass)), "L OK [CAPABILITY ")
	must(t, last(c.cmd("b", "COMPRESS LZW")), "b BAD unknown compression mechanism")
	d := startDeflate(t, c)
	r := d.cmd("c", "CAPABILITY")
	if strings.Contains(r[0], "COMPRESS=DEFLATE") || !strings.Contains(r[0], "QUOTA") {
		t.Fatalf("capabilities under compression: %q", r[0])
	}
	must(t, last(d.cmd("d", "COMPRESS DEFLATE")), "d NO [COMPRESSIONACTIVE]")
	must(t, last(d.cmd("e", "SELECT INBOX")), "e OK [READ-WRITE]")
	r = d.cmd("f", "FETCH 2 BODY.PEEK[]")
	if len(r) != 2 || !strings.Contains(r[0], "{"+strconv.Itoa(len(big))+"}\r\n"+big) {
		t.Fatalf("FETCH of %d octets through DEFLATE: got %d lines, %d octets", len(big), len(r), len(r[0]))
	}
	// An APPEND literal through DEFLATE (LITERAL+ and synchronizing).
	d.send("g APPEND INBOX {5+}\r\nhello\r\n")
	must(t, last(d.until("g")), "g OK [APPENDUID ")
	d.send("h APPEND INBOX {5}\r\n")
	must(t, d.line(), "+ ")
	d.send("world\r\n")
	must(t, last(d.until("h")), "h OK [APPENDUID ")
	// IDLE: the server's update must arrive without the client sending
	// anything, so the server flushes its compressor after each burst.
	d.send("i IDLE\r\n")
	must(t, d.line(), "+ ")
	deliver(t, e.root(), "", fixture2)
	must(t, d.line(), "* 5 EXISTS")
	d.send("DONE\r\n")
	must(t, last(d.until("i")), "i OK")
	d.send("j LOGOUT\r\n")
	must(t, last(d.until("j")), "j OK")
	c.expectEOF()
}

// COMPRESS over TLS (RFC 4978 lets it follow STARTTLS or imaps), and a
// client that pipelines its first compressed command right behind COMPRESS.
func TestCompressOverTLSPipelined(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.dialTLS()
	c.line()
	must(t, last(c.cmd("L", "LOGIN "+testUser+" "+testPass)), "L OK")
	var z bytes.Buffer
	zw, err := flate.NewWriter(&z, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(zw, "a NOOP\r\n")
	zw.Flush()
	c.send("z COMPRESS DEFLATE\r\n" + z.String())
	must(t, c.line(), "z OK")
	// The client's stream goes on from a second writer: after a sync
	// flush, later blocks need not refer back to earlier ones.
	d := switchDeflate(t, c)
	must(t, last(d.until("a")), "a OK NOOP completed")
	must(t, last(d.cmd("b", "NOOP")), "b OK")
	if _, ok := c.conn.(*tls.Conn); !ok {
		t.Fatal("not TLS")
	}
}

// Input that is not DEFLATE ends the session; it never crashes the
// server nor makes it hold more than its buffers.
func TestCompressGarbageInput(t *testing.T) {
	e := newTestEnv(t, nil)
	var good bytes.Buffer
	zw, err := flate.NewWriter(&good, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(zw, "a NOOP\r\n")
	zw.Flush()
	for _, garbage := range [][]byte{
		[]byte("a NOOP\r\n"),                                // plain text where DEFLATE is due
		{0xff, 0xff, 0xff, 0xff, 0xff},                      // reserved block type 3
		{0x00, 0x05, 0x00, 0x00, 0x00},                      // stored block with a bad length check
		append(bytes.Clone(good.Bytes()), 0xff, 0xff, 0xff), // good, then a reserved block
	} {
		c := e.login()
		c.send("z COMPRESS DEFLATE\r\n")
		must(t, c.line(), "z OK")
		c.send(string(garbage))
		expectClosed(t, c)
	}
	// The server still serves.
	c := e.login()
	must(t, last(c.cmd("b", "NOOP")), "b OK")
	// Shutdown waits for every session, so their logs are complete: the
	// three that are surely not DEFLATE ended in an inflate error.
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(e.logs.String(), "compressed input"); n != 4 {
		t.Fatalf("%d sessions logged bad compressed input, want 4:\n%s", n, e.logs.String())
	}
}

// expectClosed reads (and drops) what the server sends until it closes
// the connection; a timeout is a failure.
func expectClosed(t *testing.T, c *client) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 4096)
	for i := 0; i < 10000; i++ {
		_, err := c.conn.Read(buf)
		var ne net.Error
		switch {
		case err == nil:
			continue
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatal("the server did not close the connection")
		}
		return
	}
	t.Fatal("the server keeps sending")
}

// A "deflate bomb": 4 MiB of one byte is a few KB compressed. The line
// is refused as too long and the session goes on.
func TestCompressBomb(t *testing.T) {
	e := newTestEnv(t, nil)
	c := e.login()
	d := startDeflate(t, c)
	_ = d.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	chunk := bytes.Repeat([]byte("A"), 1<<20)
	// The server reads while the client writes; write from a goroutine
	// so neither side's buffers can deadlock the test.
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 4; i++ {
			if _, err := d.zw.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		_, err := io.WriteString(d.zw, "\r\nb NOOP\r\n")
		if err == nil {
			err = d.zw.Flush()
		}
		done <- err
	}()
	r := d.until("b")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	must(t, last(r), "b OK")
	if len(r) < 2 || !strings.Contains(r[0], "BAD") {
		t.Fatalf("responses %q, want a BAD for the long line first", r)
	}
}

// The write path: every Write is complete DEFLATE blocks a reader can
// decode at once, the pooled writers are reused, and a Write larger than
// a chunk is split.
func TestDeflateConnWrite(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	d := newDeflateConn(srv, nil)
	zr := flate.NewReader(cli)
	for _, n := range []int{1, 100, deflateChunk, 3*deflateChunk + 7} {
		p := bytes.Repeat([]byte("0123456789abcdef\r\n"), n/18+1)[:n]
		errc := make(chan error, 1)
		go func() {
			_, err := d.Write(p)
			errc <- err
		}()
		got := make([]byte, n)
		if _, err := io.ReadFull(zr, got); err != nil {
			t.Fatalf("%d octets: %v", n, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("%d octets: data differs", n)
		}
	}
}

// FuzzDeflateInput feeds arbitrary bytes to a session's inflating reader
// and the wire Reader behind it: reading must end in an error (never a
// panic), within a bounded number of commands.
func FuzzDeflateInput(f *testing.F) {
	var good bytes.Buffer
	zw, _ := flate.NewWriter(&good, flate.BestSpeed)
	io.WriteString(zw, "a NOOP\r\nb APPEND INBOX {3+}\r\nabc\r\n")
	zw.Flush()
	f.Add(good.Bytes())
	f.Add([]byte{0xff, 0xfe})
	f.Add([]byte{0x00, 0x00, 0x00, 0xff, 0xff})
	f.Add(bytes.Repeat([]byte{0x4b, 0x04}, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &deflateConn{zr: newInflater(bytes.NewReader(data))}
		r := wire.NewReader(bufio.NewReaderSize(readerFunc(d.Read), 4096), wire.Options{
			Limits:   wire.Limits{MaxLine: 1024, MaxCommand: 4096, MaxLiteral: 1024, MaxMessage: 4096, MaxDiscard: 1 << 16},
			Continue: func(wire.LiteralInfo) error { return nil },
		})
		for i := 0; i < 10000; i++ {
			cmd, err := r.ReadCommand()
			if err != nil {
				if _, ok := wire.AsError(err); ok {
					continue
				}
				return
			}
			if cmd.Message != nil {
				if _, err := io.Copy(io.Discard, cmd.Message); err != nil {
					return
				}
			}
		}
		t.Fatal("no end of input after 10000 commands")
	})
}

// The memory COMPRESS adds to a session is its inflater, not a
// compressor: sessions idle after COMPRESS hold no flate.Writer.
func TestCompressMemoryPerSession(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.MaxConnectionsPerUser = 100 })
	const n = 40
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = e.login()
	}
	before := heapAndStacks()
	for _, c := range clients {
		d := startDeflate(t, c)
		must(t, last(d.cmd("n", "NOOP")), "n OK")
	}
	after := heapAndStacks()
	per := (int64(after) - int64(before)) / n
	t.Logf("COMPRESS adds %d bytes per idle session (inflater, buffers; the pooled writers shared)", per)
	if per > 150<<10 {
		t.Fatalf("COMPRESS adds %d bytes per session, want at most 150 KiB", per)
	}
}

func heapAndStacks() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// discardConn is a net.Conn whose writes go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkDeflateWrite: one 32 KiB response burst (what the session's
// bufio.Writer hands over at most) compressed and sync-flushed.
func BenchmarkDeflateWrite(b *testing.B) {
	var burst bytes.Buffer
	for i := 0; burst.Len() < deflateChunk; i++ {
		fmt.Fprintf(&burst, "* %d FETCH (UID %d FLAGS (\\Seen) ENVELOPE (\"Mon, 2 Jan 2006 15:04:05 -0700\" \"subject %d\" ((\"Alice\" NIL \"alice\" \"example.org\")) NIL NIL NIL NIL NIL \"<%d@example.org>\"))\r\n", i+1, i+100, i*7, i)
	}
	p := burst.Bytes()[:deflateChunk]
	d := newDeflateConn(discardConn{}, nil)
	var out bytes.Buffer
	if err := deflateInto(&out, p); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Write(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len())/float64(len(p)), "out/in")
}
