package maildir

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// childEnvRole is where the test binary, run again as a child
// (testChild), finds its role: a test that finds one set acts it out
// instead of running as the parent. What the child works on it finds in
// variables of its own test.
const childEnvRole = "MAILROOM_MAILDIR_TEST_ROLE"

// testChild is the test binary run again to run only test, in role, with
// env added to this process's environment.
func testChild(test, role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnvRole+"="+role), env...)
	return cmd
}

// runChildren runs a child of test (testChild) in each of roles at once,
// with the environment env gives that role, and fails t with the output
// of each child that fails.
func runChildren(t *testing.T, test string, roles []string, env func(role string) []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(roles))
	for _, role := range roles {
		cmd := testChild(test, role, env(role)...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("%s: %v\n%s", role, err, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The multi-process test's children find the Maildirs and their log in
// these variables.
const (
	mpEnvInbox   = "MAILROOM_MAILDIR_TEST_INBOX"
	mpEnvArchive = "MAILROOM_MAILDIR_TEST_ARCHIVE"
	mpEnvLog     = "MAILROOM_MAILDIR_TEST_LOG"
)

const (
	mpDeliverers   = 3
	mpPerDeliverer = 40
	mpTargetEvery  = 5 // messages whose index is a multiple of this get expunged
)

// TestMultiProcessMaildir runs deliverers, a flagger, a mover and an
// expunger as separate processes on two Maildirs at once. At the end every
// message that was not meant to be expunged exists exactly once, every
// expunge target is gone, and no process ever saw a UID name two messages
// or a message carry two UIDs in one mailbox.
func TestMultiProcessMaildir(t *testing.T) {
	if role := os.Getenv(childEnvRole); role != "" {
		mpChild(t, role)
		return
	}
	if testing.Short() {
		t.Skip("multi-process test skipped in -short mode")
	}
	root := t.TempDir()
	inbox := mbtestMaildir(t, "Maildir")
	archive := mbtestMaildir(t, "Maildir", ".Archive")
	logs := filepath.Join(root, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	// Create both uidlists first so every process agrees on UIDVALIDITY.
	mbtestOpen(t, inbox)
	mbtestOpen(t, archive)

	roles := []string{"flagger", "mover", "expunger"}
	for i := 0; i < mpDeliverers; i++ {
		roles = append(roles, "deliver-"+strconv.Itoa(i))
	}
	runChildren(t, "TestMultiProcessMaildir", roles, func(role string) []string {
		return []string{mpEnvInbox + "=" + inbox, mpEnvArchive + "=" + archive,
			mpEnvLog + "=" + filepath.Join(logs, role+".log")}
	})
	if t.Failed() {
		return
	}
	mpCheck(t, inbox, archive, logs)
}

// mpCheck verifies the final state and the logged observations.
func mpCheck(t *testing.T, inbox, archive, logs string) {
	ids := map[string]int{}
	for _, dir := range []string{inbox, archive} {
		m := mbtestOpen(t, dir)
		for _, msg := range m.Messages() {
			data, err := os.ReadFile(msg.Path)
			if err != nil {
				t.Fatal(err)
			}
			ids[mpID(string(data))]++
		}
	}
	for d := 0; d < mpDeliverers; d++ {
		for i := 0; i < mpPerDeliverer; i++ {
			id := fmt.Sprintf("id-%d-%d", d, i)
			want := 1
			if i%mpTargetEvery == 0 {
				want = 0
			}
			if ids[id] != want {
				t.Errorf("%s present %d times, want %d", id, ids[id], want)
			}
		}
	}
	// Observations: in one mailbox, a UID always names the same base and a
	// base always has the same UID, across all processes and all syncs.
	uidToBase := map[string]string{}
	baseToUID := map[string]string{}
	entries, err := os.ReadDir(logs)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, e := range entries {
		f, err := os.Open(filepath.Join(logs, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 3 {
				t.Fatalf("bad log line %q", sc.Text())
			}
			lines++
			box, uid, base := fields[0], fields[1], fields[2]
			if b, ok := uidToBase[box+" "+uid]; ok && b != base {
				t.Errorf("%s uid %s named %s and %s", box, uid, b, base)
			}
			if u, ok := baseToUID[box+" "+base]; ok && u != uid {
				t.Errorf("%s %s had uid %s and %s", box, base, u, uid)
			}
			uidToBase[box+" "+uid] = base
			baseToUID[box+" "+base] = uid
		}
		f.Close()
	}
	if lines == 0 {
		t.Fatal("no observations logged")
	}
}

// mpID extracts "id-D-I" from a message.
func mpID(body string) string {
	_, rest, _ := strings.Cut(body, "Subject: ")
	id, _, _ := strings.Cut(rest, "\r")
	return id
}

// mpChild plays one role and exits.
func mpChild(t *testing.T, role string) {
	inboxPath, archivePath := os.Getenv(mpEnvInbox), os.Getenv(mpEnvArchive)
	logf, err := os.Create(os.Getenv(mpEnvLog))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	log := bufio.NewWriter(logf)
	defer log.Flush()
	if strings.HasPrefix(role, "deliver-") {
		n := strings.TrimPrefix(role, "deliver-")
		for i := 0; i < mpPerDeliverer; i++ {
			if _, err := mbtestDeliver(inboxPath, fmt.Sprintf("Subject: id-%s-%d\r\n\r\nbody\r\n", n, i)); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	inbox := mbtestOpen(t, inboxPath)
	archive := mbtestOpen(t, archivePath)
	boxes := map[string]*Mailbox{"inbox": inbox, "archive": archive}
	sync := func() {
		for name, m := range boxes {
			if _, err := m.Sync(); err != nil {
				t.Fatal(err)
			}
			for _, msg := range m.Messages() {
				fmt.Fprintf(log, "%s %d %s\n", name, msg.UID, msg.Name.Base)
			}
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	switch role {
	case "flagger":
		for iter := 0; iter < 80 && time.Now().Before(deadline); iter++ {
			sync()
			for _, m := range boxes {
				for _, msg := range m.Messages() {
					if rng.IntN(3) != 0 {
						continue
					}
					err := m.SetFlags(msg.UID, Flags(rng.IntN(64)), 0)
					if err != nil && !errors.Is(err, ErrExpunged) {
						t.Fatal(err)
					}
				}
			}
		}
	case "mover":
		for iter := 0; iter < 80 && time.Now().Before(deadline); iter++ {
			sync()
			for _, pair := range [][2]*Mailbox{{inbox, archive}, {archive, inbox}} {
				msgs := pair[0].Messages()
				for k := 0; k < 3 && len(msgs) > 0; k++ {
					msg := msgs[rng.IntN(len(msgs))]
					_, err := pair[0].MoveTo(msg.UID, pair[1])
					if err != nil && !errors.Is(err, ErrExpunged) {
						t.Fatal(err)
					}
				}
			}
		}
	case "expunger":
		targets := mpDeliverers * ((mpPerDeliverer + mpTargetEvery - 1) / mpTargetEvery)
		seen := map[string]bool{}
		for iter := 0; iter < 5000; iter++ {
			if time.Now().After(deadline) {
				t.Fatalf("expunger: saw %d of %d targets", len(seen), targets)
			}
			sync()
			remaining := 0
			for _, m := range boxes {
				for _, msg := range m.Messages() {
					data, err := os.ReadFile(msg.Path)
					if err != nil {
						remaining++ // renamed under us; look again next round
						continue
					}
					id := mpID(string(data))
					var d, i int
					if _, err := fmt.Sscanf(id, "id-%d-%d", &d, &i); err != nil || i%mpTargetEvery != 0 {
						continue
					}
					seen[id] = true
					remaining++
					if err := m.Expunge(msg.UID); err != nil {
						t.Fatal(err)
					}
				}
			}
			if remaining == 0 && len(seen) == targets {
				return
			}
		}
		t.Fatal("expunger: iteration bound reached")
	default:
		t.Fatalf("unknown role %q", role)
	}
}
