package route

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteText writes res for a person (deliver --explain): the address, each
// step indented by its alias depth, then the final targets. The layout is
// for reading, not parsing; use encoding/json on Result for scripts.
//
//	address alice+lists@example.org
//	  sub-address: alice+lists@example.org  user "alice", extension "lists"
//	  user: alice@example.org  /var/mail/vhosts/example.org/alice
//	targets
//	  mailbox  alice@example.org root="/var/mail/vhosts/example.org/alice" folder="lists"
func (res Result) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "address %s\n", res.Address)
	for _, s := range res.Steps {
		indent := strings.Repeat("  ", s.Depth+1)
		line := indent + s.Rule + ": " + s.Address
		if s.Detail != "" {
			line += "  " + s.Detail
		}
		fmt.Fprintln(bw, line)
	}
	fmt.Fprintln(bw, "targets")
	if len(res.Targets) == 0 {
		fmt.Fprintln(bw, "  (none)")
	}
	for _, t := range res.Targets {
		fmt.Fprintf(bw, "  %-8s %s%s\n", t.Kind, t.Address, targetDetails(t))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("route: write explanation: %w", err)
	}
	return nil
}

func targetDetails(t Target) string {
	var b strings.Builder
	for _, kv := range []struct{ k, v string }{
		{"root", t.Root},
		{"folder", t.Folder},
		{"command", t.Command},
		{"file", t.File},
		{"reason", t.Reason},
	} {
		if kv.v != "" {
			fmt.Fprintf(&b, " %s=%q", kv.k, kv.v)
		}
	}
	return b.String()
}
