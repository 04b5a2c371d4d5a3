package maildir

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// msEnvBox is where the modseq process tests' children (testChild) find
// their Maildir.
const msEnvBox = "MAILROOM_MODSEQ_TEST_BOX"

// TestModSeqProcess: a change made by another process (a real one)
// reaches this process's Mailbox with the other process's modseqs.
func TestModSeqProcess(t *testing.T) {
	if role := os.Getenv(childEnvRole); role != "" {
		mstestProcChild(t, role, os.Getenv(msEnvBox))
		return
	}
	root := mstestBox(t, 5)
	m := mbtestOpen(t, root)
	h0 := m.HighestModSeq()
	out, err := testChild("TestModSeqProcess", "store-expunge", msEnvBox+"="+root).CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	want := map[uint32]uint64{}
	var highest uint64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "MS" {
			continue
		}
		uid, _ := strconv.ParseUint(f[1], 10, 32)
		ms, _ := strconv.ParseUint(f[2], 10, 64)
		if uid == 0 {
			highest = ms
		} else {
			want[uint32(uid)] = ms
		}
	}
	if highest == 0 || len(want) != 4 {
		t.Fatalf("child said %q", out)
	}
	ch := mbtestSync(t, m)
	if !slices.Equal(ch.FlagsChanged, []uint32{1, 2, 3, 4}) || !slices.Equal(ch.Expunged, []uint32{5}) {
		t.Errorf("changes %+v", ch)
	}
	if m.HighestModSeq() != highest {
		t.Errorf("highest %d, child's %d", m.HighestModSeq(), highest)
	}
	for uid, ms := range want {
		if got := mstestModSeq(t, m, uid); got != ms {
			t.Errorf("uid %d modseq %d, child's %d", uid, got, ms)
		}
	}
	if uids, complete := m.VanishedSince(h0); !complete || !slices.Equal(uids, []uint32{5}) {
		t.Errorf("VanishedSince = %v, %v", uids, complete)
	}
}

// TestModSeqProcessRace: processes flag, expunge and deliver at once;
// afterwards the log was never started over, each UID's records are in
// rising modseq order, and every process's HIGHESTMODSEQ only grew.
func TestModSeqProcessRace(t *testing.T) {
	if role := os.Getenv(childEnvRole); role != "" {
		mstestProcChild(t, role, os.Getenv(msEnvBox))
		return
	}
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	root := mstestBox(t, 30)
	m := mbtestOpen(t, root)
	data0, err := os.ReadFile(filepath.Join(root, ModSeqName))
	if err != nil {
		t.Fatal(err)
	}
	h0, _ := parseModseqHeader(data0)
	roles := []string{"flagger-1", "flagger-2", "expunger", "deliverer"}
	runChildren(t, "TestModSeqProcessRace", roles, func(string) []string {
		return []string{msEnvBox + "=" + root}
	})
	mbtestSync(t, m)
	data, err := os.ReadFile(filepath.Join(root, ModSeqName))
	if err != nil {
		t.Fatal(err)
	}
	h, ok := parseModseqHeader(data)
	if !ok || h.base != h0.base {
		t.Fatalf("log started over: base %d → %d", h0.base, h.base)
	}
	last := map[uint32]uint64{}
	var highest uint64
	valid, damaged := modseqScan(data[modseqHeaderSize:], func(r modseqRecord) {
		if r.kind == modseqRecent {
			return
		}
		if r.modseq < last[r.uid] {
			t.Errorf("uid %d: modseq %d after %d", r.uid, r.modseq, last[r.uid])
		}
		last[r.uid] = r.modseq
		highest = max(highest, r.modseq)
	})
	if damaged || modseqHeaderSize+valid != len(data) {
		t.Errorf("log damaged at %d of %d", valid, len(data))
	}
	if m.HighestModSeq() != max(highest, h.high) {
		t.Errorf("highest %d, log's %d", m.HighestModSeq(), highest)
	}
	fresh := mbtestOpen(t, root)
	for _, msg := range m.Messages() {
		if got := mstestModSeq(t, fresh, msg.UID); got != msg.ModSeq || got != last[msg.UID] {
			t.Errorf("uid %d: modseq %d here, %d fresh, %d in log", msg.UID, msg.ModSeq, got, last[msg.UID])
		}
	}
}

// mstestProcChild plays one role of the process tests and exits.
func mstestProcChild(t *testing.T, role, root string) {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if role == "deliverer" {
		for i := 0; i < 20; i++ {
			mbtestMustDeliver(t, root, fmt.Sprintf("Subject: late %d\r\n\r\n", i))
		}
		return
	}
	m := mbtestOpen(t, root)
	switch role {
	case "store-expunge":
		var ch []FlagChange
		for uid := uint32(1); uid <= 4; uid++ {
			ch = append(ch, FlagChange{UID: uid, Flags: FlagSeen})
		}
		if err := m.SetFlagsMany(ch); err != nil {
			t.Fatal(err)
		}
		if err := m.Expunge(5); err != nil {
			t.Fatal(err)
		}
		for _, msg := range m.Messages() {
			fmt.Fprintf(out, "MS %d %d\n", msg.UID, msg.ModSeq)
		}
		fmt.Fprintf(out, "MS 0 %d\n", m.HighestModSeq())
		return
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 7))
	deadline := time.Now().Add(30 * time.Second)
	var last uint64
	for iter := 0; iter < 60 && time.Now().Before(deadline); iter++ {
		if _, err := m.Sync(); err != nil {
			t.Fatal(err)
		}
		msgs := m.Messages()
		if len(msgs) == 0 {
			break
		}
		msg := msgs[rng.IntN(len(msgs))]
		var err error
		switch {
		case role == "expunger" && iter%4 == 0:
			err = m.Expunge(msg.UID)
		case role == "expunger":
			_, err = m.ClaimRecent()
		default:
			err = m.SetFlagsMany([]FlagChange{{UID: msg.UID, Flags: Flags(rng.IntN(64))}, {UID: msgs[0].UID, Flags: Flags(iter % 2)}})
		}
		if err != nil {
			t.Fatal(err)
		}
		h := m.HighestModSeq()
		if h < last {
			t.Fatalf("highest went back: %d after %d", h, last)
		}
		last = h
		for _, x := range m.Messages() {
			if x.ModSeq > h {
				t.Fatalf("uid %d modseq %d above highest %d", x.UID, x.ModSeq, h)
			}
		}
	}
	fmt.Fprintln(out, bytes.ToUpper([]byte(role)))
}
