package deliver

import (
	"bufio"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestDeliverFolderFallbackDedup: targets that differ only by a folder that
// turns out to be the INBOX (a missing folder, or "INBOX" spelled out) are
// one mailbox and get one copy. Before the fix the engine was handed the
// same new/ twice: the second link clashed with the first, the recipient
// was deferred after a copy had landed, and every retry of the MTA added
// another copy.
func TestDeliverFolderFallbackDedup(t *testing.T) {
	tests := []struct {
		name    string
		aliases string
		rcpt    string
		args    []string
	}{
		{name: "missing extension folder and INBOX", aliases: "dup@example.test: a, a+missing\n", rcpt: "dup@example.test"},
		{name: "INBOX spelled out and INBOX", aliases: "dup@example.test: a, a+INBOX\n", rcpt: "dup@example.test"},
		{name: "-m INBOX over both", aliases: "dup@example.test: a, a+inbox\n", rcpt: "dup@example.test", args: []string{"-m", "INBOX"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMDAEnv(t)
			e.cfg.Deliver.ExtensionFolder = true
			mustWrite(t, e.cfg.AliasesFile, tt.aliases)
			r := e.runString(simpleMsg, append(tt.args, tt.rcpt)...)
			if r.code != ExitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			onlyMessage(t, e.maildirOf("a"))
		})
	}
}

// TestInspectHeaderBeyondScanLimit: a field cut by the end of the scanned
// window is not read as a shorter one. Before the fix the cut
// "Delivered-To: a@example.test.uk" read as a@example.test and the message
// bounced as a loop.
func TestInspectHeaderBeyondScanLimit(t *testing.T) {
	const field = "Delivered-To: a@example.test"
	// pad(n) is an n-byte header field.
	pad := func(n int) string { return "X-Pad: " + strings.Repeat("p", n-len("X-Pad: \n")) + "\n" }
	tests := []struct {
		name string
		msg  string
	}{
		{name: "line cut in the middle", msg: pad(headerScanLimit-len(field)) + field + ".uk\n\nbody\n"},
		{name: "folded field cut after a line end", msg: pad(headerScanLimit-len(field)-1) + field + "\n .uk\n\nbody\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.msg), headerScanLimit)
			env, err := inspect(br)
			if err != nil {
				t.Fatal(err)
			}
			if len(env.deliveredTo) != 0 {
				t.Errorf("deliveredTo = %q from a field the scan did not see whole", env.deliveredTo)
			}
			e := newMDAEnv(t)
			if r := e.runString(tt.msg, "a@example.test"); r.code != ExitOK {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
		})
	}
	// A field that ends inside the window is still seen.
	msg := pad(headerScanLimit-len(field)-len("\n\n")) + field + "\n\nbody\n"
	env, err := inspect(bufio.NewReaderSize(strings.NewReader(msg), headerScanLimit))
	if err != nil || !reflect.DeepEqual(env.deliveredTo, []string{"a@example.test"}) {
		t.Errorf("whole field: deliveredTo %q, err %v", env.deliveredTo, err)
	}
}

// TestInspectFoldedHeaderCost: a header block of thousands of continuation
// lines costs memory in proportion to its size. Before the fix every
// continuation line copied the field so far: ~480 MB allocated and a
// second of CPU for a 64 KiB header.
func TestInspectFoldedHeaderCost(t *testing.T) {
	for _, name := range []string{"X-A", "Delivered-To"} {
		msg := name + ": a\n" + strings.Repeat(" a\n", headerScanLimit/3) + "\nbody\n"
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := inspect(bufio.NewReaderSize(strings.NewReader(msg), headerScanLimit)); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("%s folded %d times: inspect allocated %d bytes", name, headerScanLimit/3, alloc)
		}
	}
}

// TestDeliverSenderWithControlCharacters: the envelope sender is written
// into the message as Return-Path, so a line break in it would forge
// header fields (or end the header block early) in the stored message.
// Such a sender is refused, 5.1.7 (bad sender address syntax), exit 65,
// and nothing is written.
func TestDeliverSenderWithControlCharacters(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		msg  string
	}{
		{name: "-f with LF", args: []string{"-f", "x@y.test>\nX-Spam-Flag: NO\nX: <", "a@example.test"}, msg: simpleMsg},
		{name: "-f with CR", args: []string{"-f", "x@y.test\rX-Spam-Flag: NO", "a@example.test"}, msg: simpleMsg},
		{name: "$SENDER with LF", env: map[string]string{"SENDER": "x@y.test\n\nbody", "RECIPIENT": "a@example.test"}, msg: simpleMsg},
		{name: "From_ line sender with ESC", args: []string{"a@example.test"}, msg: "From x\x1b@y.test  Mon Nov 23 21:14:47 2026\n" + simpleMsg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newMDAEnv(t)
			r := e.run(strings.NewReader(tt.msg), tt.env, tt.args...)
			if r.code != ExitDataErr || !strings.HasPrefix(r.firstLine(), "5.1.7 ") {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			e.noTrace()
		})
	}
}
