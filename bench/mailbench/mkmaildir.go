package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mailroom/maildir/textindex"
)

// runMkMaildir writes a deterministic Maildir fixture: the same -n and -seed
// give byte-identical files and names on every machine, so two servers (or
// two runs months apart) read the same mailbox.
//
// Sizes are log-normal (median about 5.8 KB, mean about 9.5 KB, p99 about
// 60 KB) with a tail above 100 KB, the shape of a real inbox. 70% of the
// messages are text/plain, 20% multipart/alternative, 10% multipart/mixed
// with a base64 attachment; half carry a DKIM-Signature. Files are stored
// with LF line ends, named like Dovecot names them
// (<time>.M<usec>P<pid>.<host>,S=<file size>,W=<CRLF size>:2,<flags>) in cur/,
// 70% seen; the mtime is the Date: header.
//
// With -index, every message is also indexed as deliver indexes it at
// delivery ([deliver] text_index): its words are appended to the
// Maildir's pending text index file, so the Maildir looks like one whose
// mail came through deliver. -index-only does that for the messages of an
// existing Maildir (-dir), in name order, without writing any.
func runMkMaildir(args []string) error {
	fs := flag.NewFlagSet("mkmaildir", flag.ExitOnError)
	n := fs.Int("n", 10000, "messages")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same Maildir)")
	dir := fs.String("dir", "", "Maildir to create (must not exist)")
	index := fs.Bool("index", false, "index every message as deliver does at delivery")
	indexOnly := fs.Bool("index-only", false, "index the messages already in -dir as deliver does, write none")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("mkmaildir: need -dir MAILDIR")
	}
	if *indexOnly {
		return indexExisting(*dir)
	}
	if _, err := os.Stat(*dir); err == nil {
		return fmt.Errorf("mkmaildir: %s exists", *dir)
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(*dir, sub), 0o700); err != nil {
			return fmt.Errorf("mkmaildir: %w", err)
		}
	}
	g := &msgGen{rng: rand.New(rand.NewPCG(*seed, 0x6d61696c726f6f6d))}
	// Dates from 2021-01-01 on, in order, about 5 hours apart on average,
	// so that Maildir name order is also arrival order.
	t := time.Date(2021, 1, 1, 8, 0, 0, 0, time.UTC)
	var total, maxSize int64
	for i := 0; i < *n; i++ {
		t = t.Add(time.Duration(g.rng.Int64N(int64(10 * time.Hour))))
		body := g.message(i, t)
		size, err := writeFixture(*dir, i, t, body, g.flags(), *index)
		if err != nil {
			return err
		}
		total += size
		maxSize = max(maxSize, size)
	}
	fmt.Printf("mode=mkmaildir n=%d bytes=%d mean_bytes=%d max_bytes=%d dir=%s\n",
		*n, total, total/int64(max(*n, 1)), maxSize, *dir)
	return nil
}

// writeFixture stores one message in cur/ under a Dovecot-style name and,
// with index, indexes it as deliver does.
func writeFixture(dir string, i int, t time.Time, msg []byte, flags string, index bool) (int64, error) {
	crlf := int64(len(msg) + bytes.Count(msg, []byte("\n")))
	name := fmt.Sprintf("%d.M%dP%d.bench,S=%d,W=%d:2,%s",
		t.Unix(), 100000+i*7%900000, 4000+i%3000, len(msg), crlf, flags)
	path := filepath.Join(dir, "cur", name)
	if err := os.WriteFile(path, msg, 0o600); err != nil {
		return 0, fmt.Errorf("mkmaildir: %w", err)
	}
	if err := os.Chtimes(path, t, t); err != nil {
		return 0, fmt.Errorf("mkmaildir: %w", err)
	}
	if index {
		if err := textindex.IndexDelivered(path); err != nil {
			return 0, fmt.Errorf("mkmaildir: index: %w", err)
		}
	}
	return int64(len(msg)), nil
}

// indexExisting indexes every message of new/ and cur/ of the Maildir at
// dir as deliver does at delivery. A message the pending file has no room
// for (textindex.MaxPending) stops it: imapd indexes the rest itself.
func indexExisting(dir string) error {
	start := time.Now()
	indexed, pendingBytes := 0, int64(0)
	for _, sub := range []string{"new", "cur"} {
		names, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return fmt.Errorf("mkmaildir: %w", err)
		}
		for _, de := range names {
			path := filepath.Join(dir, sub, de.Name())
			err := textindex.IndexDelivered(path)
			if errors.Is(err, textindex.ErrPendingFull) {
				fmt.Fprintf(os.Stderr, "mkmaildir: pending text index full after %d messages\n", indexed)
				break
			}
			if err != nil {
				return fmt.Errorf("mkmaildir: index %s: %w", path, err)
			}
			indexed++
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, textindex.PendingName)); err == nil {
		pendingBytes = fi.Size()
	}
	el := time.Since(start)
	fmt.Printf("mode=mkmaildir-index n=%d pending_bytes=%d seconds=%.2f us_per_msg=%.1f dir=%s\n",
		indexed, pendingBytes, el.Seconds(), float64(el.Microseconds())/float64(max(indexed, 1)), dir)
	return nil
}

type msgGen struct {
	rng *rand.Rand
}

var (
	fixtureWords = strings.Fields(`the a meeting invoice report project update please review attached
		thanks regards schedule tomorrow budget quarter team release notes server backup migration
		contract draft summary question answer customer order shipping delivery status weekly
		monthly agenda minutes proposal feedback deadline issue ticket support account payment`)
	fixtureNames = strings.Fields(`alice bob carol dave erin frank grace heidi ivan judy mallory
		niaj olivia peggy rupert sybil trent victor walter`)
	fixtureDomains = strings.Fields(`example.org example.net example.com mail.test lists.test`)
	fixtureZones   = []int{0, 1, 2, -5, -8, 9, 5}
)

// size draws a message size: log-normal, median 5.8 KB, sigma 1.0, at
// least 1 KB, at most 2 MB.
func (g *msgGen) size() int {
	s := 5800 * math.Exp(g.rng.NormFloat64())
	return int(min(max(s, 1000), 2<<20))
}

func (g *msgGen) flags() string {
	switch r := g.rng.IntN(100); {
	case r < 5:
		return "FS"
	case r < 15:
		return "RS"
	case r < 70:
		return "S"
	default:
		return ""
	}
}

func (g *msgGen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *msgGen) addr() string {
	return g.pick(fixtureNames) + "@" + g.pick(fixtureDomains)
}

// message builds message i, dated t, of about g.size() bytes.
func (g *msgGen) message(i int, t time.Time) []byte {
	want := g.size()
	zone := time.FixedZone("", fixtureZones[g.rng.IntN(len(fixtureZones))]*3600)
	from := g.addr()
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <%s>\n", from)
	fmt.Fprintf(&b, "Received: from mx.%s by bench with ESMTPS id %08x\n\tfor <pop@bench.test>; %s\n",
		g.pick(fixtureDomains), g.rng.Uint32(), t.In(zone).Format(time.RFC1123Z))
	if g.rng.IntN(2) == 0 {
		fmt.Fprintf(&b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=sel;\n\th=from:to:subject:date:message-id;\n\tbh=%s;\n\tb=%s\n",
			g.pick(fixtureDomains), g.b64(32), g.b64(180))
	}
	fmt.Fprintf(&b, "From: %s <%s>\nTo: pop@bench.test\n", strings.ToUpper(from[:1])+from[1:strings.IndexByte(from, '@')], from)
	fmt.Fprintf(&b, "Subject: %s %s %s #%d\n", g.pick(fixtureWords), g.pick(fixtureWords), g.pick(fixtureWords), i)
	fmt.Fprintf(&b, "Date: %s\nMessage-ID: <%d.%08x@%s>\n", t.In(zone).Format(time.RFC1123Z), i, g.rng.Uint32(), g.pick(fixtureDomains))
	if i > 0 && g.rng.IntN(3) == 0 {
		fmt.Fprintf(&b, "In-Reply-To: <%d.0@bench>\nReferences: <%d.0@bench>\n", i-1, i-1)
	}
	b.WriteString("MIME-Version: 1.0\n")
	switch r := g.rng.IntN(10); {
	case r < 7:
		b.WriteString("Content-Type: text/plain; charset=utf-8\n\n")
		g.text(&b, want)
	case r < 9:
		b.WriteString("Content-Type: multipart/alternative; boundary=\"alt\"\n\n--alt\nContent-Type: text/plain; charset=utf-8\n\n")
		g.text(&b, b.Len()+(want-b.Len())/2)
		b.WriteString("\n--alt\nContent-Type: text/html; charset=utf-8\n\n<html><body><p>\n")
		g.text(&b, want-20)
		b.WriteString("</p></body></html>\n--alt--\n")
	default:
		b.WriteString("Content-Type: multipart/mixed; boundary=\"mix\"\n\n--mix\nContent-Type: text/plain; charset=utf-8\n\n")
		g.text(&b, b.Len()+600)
		b.WriteString("\n--mix\nContent-Type: application/pdf; name=\"report.pdf\"\nContent-Transfer-Encoding: base64\n\n")
		for b.Len() < want-10 {
			b.WriteString(g.b64(57))
			b.WriteByte('\n')
		}
		b.WriteString("--mix--\n")
	}
	return b.Bytes()
}

// text appends lines of words, at most 72 columns, until b holds about
// upto bytes. A line may start with a dot, so servers must dot-stuff.
func (g *msgGen) text(b *bytes.Buffer, upto int) {
	col := 0
	for b.Len() < upto {
		w := g.pick(fixtureWords)
		if col == 0 && g.rng.IntN(200) == 0 {
			w = "." + w
		}
		if col+len(w)+1 > 72 {
			b.WriteByte('\n')
			col = 0
		}
		if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteByte('\n')
}

func (g *msgGen) b64(n int) string {
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte(g.rng.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)
}
