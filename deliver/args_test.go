package deliver

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Options
	}{
		{"none", nil, Options{}},
		{"recipient", []string{"a@x"}, Options{Recipients: []string{"a@x"}}},
		{"separate sender", []string{"-f", "s@y", "a@x"}, Options{Sender: "s@y", SenderSet: true, Recipients: []string{"a@x"}}},
		{"glued sender", []string{"-fs@y", "a@x"}, Options{Sender: "s@y", SenderSet: true, Recipients: []string{"a@x"}}},
		{"null sender", []string{"-f", "", "a@x"}, Options{SenderSet: true, Recipients: []string{"a@x"}}},
		{"dovecot style", []string{"-e", "-f", "s@y", "-a", "o@x", "-d", "a@x", "-m", "Lists"},
			Options{Sender: "s@y", SenderSet: true, OriginalRecipient: "o@x", Folder: "Lists", Recipients: []string{"a@x"}}},
		{"-d and operands in order", []string{"b@x", "-d", "a@x", "-r", "c@x"}, Options{Recipients: []string{"b@x", "a@x", "c@x"}}},
		{"cluster", []string{"-vf", "s@y", "a@x"}, Options{Verbose: true, Sender: "s@y", SenderSet: true, Recipients: []string{"a@x"}}},
		{"cluster glued", []string{"-vfs@y", "a@x"}, Options{Verbose: true, Sender: "s@y", SenderSet: true, Recipients: []string{"a@x"}}},
		{"config short", []string{"-c", "/etc/m.conf", "a@x"}, Options{ConfigPath: "/etc/m.conf", Recipients: []string{"a@x"}}},
		{"config long", []string{"--config", "/etc/m.conf", "a@x"}, Options{ConfigPath: "/etc/m.conf", Recipients: []string{"a@x"}}},
		{"config long glued", []string{"--config=/etc/m.conf", "a@x"}, Options{ConfigPath: "/etc/m.conf", Recipients: []string{"a@x"}}},
		{"explain", []string{"--explain", "a@x"}, Options{Explain: "a@x"}},
		{"explain json", []string{"--explain=a@x", "--json"}, Options{Explain: "a@x", JSON: true}},
		{"check-config", []string{"--check-config"}, Options{CheckConfig: true}},
		{"queue", []string{"-c", "f", "--queue"}, Options{ConfigPath: "f", Queue: true}},
		{"print-config", []string{"-c", "f", "--print-config"}, Options{ConfigPath: "f", PrintConfig: true}},
		{"double dash", []string{"--", "-odd@x"}, Options{Recipients: []string{"-odd@x"}}},
		{"lone dash is an operand", []string{"-"}, Options{Recipients: []string{"-"}}},
		{"help", []string{"-h"}, Options{Help: true}},
		{"options after operands", []string{"a@x", "-f", "s@y"}, Options{Sender: "s@y", SenderSet: true, Recipients: []string{"a@x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.args)
			if err != nil {
				t.Fatalf("ParseArgs(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseArgs(%q) =\n %+v\nwant\n %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := [][]string{
		{"-x", "a@x"},
		{"-f"},
		{"a@x", "-d"},
		{"--config"},
		{"--nope"},
		{"--json=1", "--explain", "a"},
		{"--check-config=yes"},
		{"--json"},
		{"--explain", "a@x", "--check-config"},
		{"--explain", "a@x", "b@x"},
		{"--print-config", "b@x"},
		{"-d", ""},
		{"-o", "k=v"},
		{"--queue", "a@x"},
		{"--queue", "--explain", "a@x"},
		{"--queue", "-f", "s@y"},
		{"--queue=1"},
	}
	for _, args := range tests {
		if _, err := ParseArgs(args); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseArgs(%q) error = %v, want ErrUsage", args, err)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("-f\x00s@y\x00a@x")
	f.Add("-fs@y\x00-d\x00a@x\x00-m\x00Lists")
	f.Add("--explain=a@x\x00--json")
	f.Add("--\x00-x")
	f.Add("-vek\x00--config\x00/c")
	f.Fuzz(func(t *testing.T, joined string) {
		args := splitNUL(joined)
		o, err := ParseArgs(args)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("ParseArgs(%q): error %v does not wrap ErrUsage", args, err)
			}
			return
		}
		if len(o.Recipients) > len(args) {
			t.Fatalf("ParseArgs(%q): %d recipients from %d words", args, len(o.Recipients), len(args))
		}
		if o.JSON && o.Explain == "" {
			t.Fatalf("ParseArgs(%q): --json accepted without --explain", args)
		}
	})
}

func splitNUL(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for {
		i := indexByte(s, 0)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
