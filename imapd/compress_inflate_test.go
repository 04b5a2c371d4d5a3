package imapd

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The inflater decodes what compress/flate writes, at every level and
// with flushes anywhere.
func TestInflaterAgreesWithFlate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	text := []byte(strings.Repeat("a1 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT)])\r\n", 300))
	noise := make([]byte, 100000)
	for i := range noise {
		noise[i] = byte(rng.IntN(256))
	}
	for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.DefaultCompression, flate.BestCompression} {
		for name, data := range map[string][]byte{"text": text, "noise": noise, "mixed": append(bytes.Clone(text), noise[:5000]...), "empty": nil} {
			var z bytes.Buffer
			zw, err := flate.NewWriter(&z, level)
			if err != nil {
				t.Fatal(err)
			}
			for rest := data; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(9000))
				zw.Write(rest[:k])
				if rng.IntN(2) == 0 {
					zw.Flush()
				}
				rest = rest[k:]
			}
			zw.Close()
			got, err := io.ReadAll(newInflater(&z))
			if err != nil {
				t.Fatalf("level %d %s: %v", level, name, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("level %d %s: %d octets decoded, want %d", level, name, len(got), len(data))
			}
		}
	}
}

// bitWriter writes DEFLATE bits, first bit lowest, for hand-made blocks.
type bitWriter struct {
	out  []byte
	acc  uint32
	nacc uint
}

func (w *bitWriter) bits(v uint32, n uint) {
	w.acc |= v << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

// code writes a Huffman code of n bits, most significant first.
func (w *bitWriter) code(c uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.bits(c>>uint(i)&1, 1)
	}
}

// fixedBlock writes data as literals of a fixed-code block (RFC 1951
// §3.2.6); empty data is the empty block zlib's Z_PARTIAL_FLUSH sends.
func (w *bitWriter) fixedBlock(data []byte, final bool) {
	f := uint32(0)
	if final {
		f = 1
	}
	w.bits(f, 1)
	w.bits(1, 2)
	for _, b := range data {
		if b < 144 {
			w.code(0x30+uint32(b), 8)
		} else {
			w.code(0x190+uint32(b)-144, 9)
		}
	}
	w.code(0, 7) // end of block
}

// A command sent with a partial flush (complete blocks, then an empty
// fixed block that is not byte-aligned, then nothing) is decoded at once:
// the inflater must not wait for input it does not need.
func TestInflaterPartialFlush(t *testing.T) {
	var w bitWriter
	w.fixedBlock([]byte("a NOOP\r\n"), false)
	w.fixedBlock(nil, false) // partial flush
	first := bytes.Clone(w.out)
	w.fixedBlock([]byte("b LOGOUT\r\n"), false)
	w.fixedBlock(nil, false)
	second := bytes.Clone(w.out[len(first):])

	pr, pw := io.Pipe()
	defer pr.Close()
	in := newInflater(pr)
	go func() {
		pw.Write(first)
		pw.Write(second)
		// The pipe stays open: more input never comes.
	}()
	for _, want := range []string{"a NOOP\r\n", "b LOGOUT\r\n"} {
		got := make([]byte, 0, len(want))
		buf := make([]byte, 64)
		done := make(chan error, 1)
		go func() {
			for len(got) < len(want) {
				n, err := in.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(ioTimeout):
			t.Fatalf("no %q after a partial flush: the inflater waits for input", want)
		}
		if string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	pw.Close()
}

// zlib's own Z_PARTIAL_FLUSH output (what mbsync sends), made by python3.
func TestInflaterZlibPartialFlush(t *testing.T) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("python3 not installed")
	}
	script := `import sys, zlib
c = zlib.compressobj(6, zlib.DEFLATED, -15)
out = b""
for cmd in [b"a LOGIN x y\r\n", b"b SELECT INBOX\r\n", b"c UID FETCH 1:* (FLAGS)\r\n" * 40]:
    out += c.compress(cmd) + c.flush(zlib.Z_PARTIAL_FLUSH)
sys.stdout.buffer.write(out)`
	out, err := exec.Command(py, "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	in := newInflater(bytes.NewReader(out))
	got, err := io.ReadAll(in)
	if !errors.Is(err, io.ErrUnexpectedEOF) && err != nil {
		t.Fatal(err)
	}
	want := "a LOGIN x y\r\nb SELECT INBOX\r\n" + strings.Repeat("c UID FETCH 1:* (FLAGS)\r\n", 40)
	if string(got) != want {
		t.Fatalf("got %q", got)
	}
}

// Corrupt input is an error, never a panic.
func TestInflaterCorrupt(t *testing.T) {
	for name, in := range map[string][]byte{
		"reserved type":      {0x07},
		"stored length":      {0x00, 0x05, 0x00, 0x00, 0x00},
		"distance too far":   distanceTooFar(),
		"too many codes":     {0xfd, 0xff, 0xff, 0xff},
		"truncated in block": {0x4b, 0x04},
	} {
		_, err := io.ReadAll(newInflater(bytes.NewReader(in)))
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// distanceTooFar is a fixed block whose first symbol copies from before
// the stream.
func distanceTooFar() []byte {
	var w bitWriter
	w.bits(1, 1)
	w.bits(1, 2)
	w.code(0x01, 7) // length symbol 257: 3
	w.code(0, 5)    // distance 1, with nothing before it
	w.code(0, 7)
	w.bits(0, 7)
	return w.out
}

func FuzzInflater(f *testing.F) {
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.BestCompression)
	zw.Write([]byte("a NOOP\r\nb SELECT INBOX\r\nb SELECT INBOX\r\n"))
	zw.Close()
	f.Add(z.Bytes())
	f.Add(distanceTooFar())
	f.Add([]byte{0x07})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := newInflater(bytes.NewReader(data))
		buf := make([]byte, 1000)
		// Every Read either gives output or ends; the output is bounded
		// by DEFLATE's ratio (258 octets per bit pair at most).
		var total int
		for i := 0; i < 100000; i++ {
			n, err := in.Read(buf)
			total += n
			if err != nil {
				return
			}
			if n == 0 {
				t.Fatal("Read returned nothing and no error")
			}
			if total > 2100*len(data)+1000 {
				t.Fatalf("%d octets out of %d in", total, len(data))
			}
		}
	})
}

// BenchmarkInflater: a message body compressed as a client would send it
// in an APPEND.
func BenchmarkInflater(b *testing.B) {
	var text bytes.Buffer
	rng := rand.New(rand.NewPCG(5, 6))
	words := strings.Fields("the quick brown fox jumps over lazy dog mail server imap message deflate window literal")
	for text.Len() < 1<<20 {
		text.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			text.WriteString("\r\n")
		} else {
			text.WriteByte(' ')
		}
	}
	var z bytes.Buffer
	zw, _ := flate.NewWriter(&z, flate.DefaultCompression)
	zw.Write(text.Bytes())
	zw.Close()
	buf := make([]byte, 16<<10)
	b.SetBytes(int64(text.Len()))
	b.ReportAllocs()
	for b.Loop() {
		in := newInflater(bytes.NewReader(z.Bytes()))
		for {
			if _, err := in.Read(buf); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}
