package maildir

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSyncViewPaths checks that the shared path string gives every message
// the Path filepath.Join would, whatever form the Maildir's path has, and
// that sizes come from the name without allocating per message.
func TestSyncViewPaths(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "Maildir")
	if err := Create(root); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{
		"1732300000.M1P2.host,S=120,W=124:2,S": "cur",
		"1732300001.M1P2.host,S=7":             "new",
		"1732300002.M1P2.host,W=x,S=9:2,":      "cur",
	}
	for name, d := range names {
		if err := os.WriteFile(filepath.Join(root, d, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(root)
	for _, path := range []string{root, root + "/", root + "/./", filepath.Join(dir, "x", "..", "Maildir"), ".", "./"} {
		m, err := OpenMailbox(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		msgs := m.Messages()
		if len(msgs) != len(names) {
			t.Fatalf("%s: %d messages, want %d", path, len(msgs), len(names))
		}
		for _, msg := range msgs {
			name := msg.Name.String()
			if want := filepath.Join(path, names[name], name); msg.Path != want || msg.Dir != names[name] {
				t.Errorf("%s: Path %q Dir %q, want %q %q", path, msg.Path, msg.Dir, want, names[name])
			}
			wantSize, _ := msg.Name.Size()
			wantVSize, ok := msg.Name.VSize()
			if !ok {
				wantVSize = -1
			}
			if msg.Size != wantSize || msg.VSize != wantVSize {
				t.Errorf("%s: sizes %d/%d, want %d/%d", name, msg.Size, msg.VSize, wantSize, wantVSize)
			}
		}
	}
}

// TestSyncBaseField agrees with Name.Size/VSize on odd fields.
func TestSyncBaseField(t *testing.T) {
	for _, base := range []string{
		"a,S=1", "a,S=+5", "a,S=-0", "a,S=-1", "a,S=", "a,S=1x", "a,W=2,S=3", "a,SS=4,S=5",
		"a,S=99999999999999999999", "a,S=999999999999999999", "a", "a,", ",S=6", "a,S=1,S=2", "a,x=1,S=0012",
	} {
		n := Name{Base: base}
		gs, oks := syncBaseField(base, 'S')
		ws, wok := n.Size()
		if gs != ws || oks != wok {
			t.Errorf("%q: S = %d %v, Name.Size %d %v", base, gs, oks, ws, wok)
		}
		gv, okv := syncBaseField(base, 'W')
		wv, wokv := n.VSize()
		if gv != wv || okv != wokv {
			t.Errorf("%q: W = %d %v, Name.VSize %d %v", base, gv, okv, wv, wokv)
		}
	}
}

func FuzzSyncBaseField(f *testing.F) {
	f.Add("1732300000.M1P2.host,S=120,W=124")
	f.Add("a,S=-0,W=+7")
	f.Fuzz(func(t *testing.T, base string) {
		n := Name{Base: base}
		gs, oks := syncBaseField(base, 'S')
		ws, wok := n.Size()
		gv, okv := syncBaseField(base, 'W')
		wv, wokv := n.VSize()
		if gs != ws || oks != wok || gv != wv || okv != wokv {
			t.Fatalf("%q: %d %v / %d %v, Name says %d %v / %d %v", base, gs, oks, gv, okv, ws, wok, wv, wokv)
		}
	})
}
