package imapd

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"mailroom/imapd/wire"
)

// COMPRESS=DEFLATE (RFC 4978): after "tag OK" both directions carry raw
// DEFLATE (RFC 1951, no zlib header). The server's output is flushed to a
// byte boundary (a sync flush: an empty stored block) at the end of every
// write, so a client never waits on data held in the compressor.
//
// Memory. Go's flate.Writer is about 1.2 MB at BestSpeed (its hash tables
// and window are arrays in the struct), far too much to keep per session.
// A sync-flushed DEFLATE stream is a sequence of complete blocks, none
// marked final, and a block may but need not refer back to earlier ones;
// so each write is compressed by a writer taken from a pool and Reset, and
// the stream stays valid: the blocks of the next write simply start with
// an empty history. Writers are held only while compressing into a buffer,
// never during the network write, so a process needs about as many as it
// compresses at once, not one per session. The inflater is per session (a
// client's stream may refer back 32 KiB into everything it sent): about
// 38 KB (see inflater; compress/flate's Reader cannot read clients, it
// stalls on zlib's partial flush). Inflated input goes through the
// session's bounded bufio.Reader and the wire Reader's limits, so a small
// "deflate bomb" cannot make the session hold more than those buffers;
// input that is not DEFLATE fails the read and ends the session.

// deflateLevel: BestSpeed compresses IMAP responses to a fraction of their
// size at about 4 µs per flushed write; higher levels cost 3–4 times as
// much CPU for a few percent.
const deflateLevel = flate.BestSpeed

// deflateChunk bounds what one pooled writer compresses before it is
// flushed and returned, and so the output buffer a write holds.
const deflateChunk = 32 << 10

// deflaters holds idle *flate.Writer at deflateLevel.
var deflaters sync.Pool

var deflateBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// deflateConn is a session's wire under COMPRESS DEFLATE: reads inflate
// from the connection, writes deflate to it. Deadlines and Close are the
// underlying connection's.
type deflateConn struct {
	net.Conn
	zr *inflater
}

// newDeflateConn wraps c. pending is what the session had already read
// from c past the COMPRESS command: a client that did not wait for the
// tagged OK compressed it, so it is inflated first.
func newDeflateConn(c net.Conn, pending []byte) *deflateConn {
	var src io.Reader = c
	if len(pending) > 0 {
		src = io.MultiReader(bytes.NewReader(pending), c)
	}
	return &deflateConn{Conn: c, zr: newInflater(src)}
}

func (d *deflateConn) Read(p []byte) (int, error) {
	n, err := d.zr.Read(p)
	if err == io.EOF {
		// The client ended its DEFLATE stream (a final block): nothing
		// more can come, as if it had closed the connection.
		return n, io.EOF
	}
	if err != nil {
		return n, fmt.Errorf("compressed input: %w", err)
	}
	return n, nil
}

// Write compresses p and sends it, sync-flushed. It never reports more
// than it sent; on error the stream is broken and the session ends.
func (d *deflateConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n := min(len(p)-done, deflateChunk)
		buf := deflateBufs.Get().(*bytes.Buffer)
		buf.Reset()
		err := deflateInto(buf, p[done:done+n])
		if err == nil {
			_, err = d.Conn.Write(buf.Bytes())
		}
		if buf.Cap() <= 2*deflateChunk {
			deflateBufs.Put(buf)
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// deflateInto appends p to buf as complete, non-final DEFLATE blocks
// ending in a sync marker.
func deflateInto(buf *bytes.Buffer, p []byte) error {
	zw, _ := deflaters.Get().(*flate.Writer)
	if zw == nil {
		var err error
		if zw, err = flate.NewWriter(buf, deflateLevel); err != nil {
			return fmt.Errorf("deflate: %w", err)
		}
	} else {
		zw.Reset(buf)
	}
	defer deflaters.Put(zw)
	if _, err := zw.Write(p); err != nil {
		return fmt.Errorf("deflate: %w", err)
	}
	if err := zw.Flush(); err != nil {
		return fmt.Errorf("deflate: %w", err)
	}
	return nil
}

// compressing reports whether COMPRESS is active on the session.
func (ss *session) compressing() bool {
	_, ok := ss.wire.(*deflateConn)
	return ok
}

// cmdCompress is COMPRESS (RFC 4978 §3), valid after login
// (command-auth, RFC 4978 §5), with or without TLS.
func (ss *session) cmdCompress(c *wire.Command) error {
	args, err := wire.ParseAStrings(c.Args, 1)
	if err != nil {
		return err
	}
	switch {
	case ss.compressing():
		return no("COMPRESSIONACTIVE", "DEFLATE is already active")
	case !strings.EqualFold(args[0], "DEFLATE"):
		return bad("unknown compression mechanism")
	}
	ss.w.Status(c.Tag, "OK", "", "DEFLATE active")
	if err := ss.w.Flush(); err != nil {
		return fmt.Errorf("%w: %w", errClose, err)
	}
	// What the client sent after the command is already compressed;
	// take it out of the old buffer before setWire drops that.
	pending, err := ss.br.Peek(ss.br.Buffered())
	if err != nil {
		return fmt.Errorf("%w: %w", errClose, err)
	}
	ss.setWire(newDeflateConn(ss.wire, bytes.Clone(pending)))
	ss.log.Info("compress", "mechanism", "DEFLATE")
	return errNoTagged
}
