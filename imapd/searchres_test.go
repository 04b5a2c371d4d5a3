package imapd

import (
	"strings"
	"testing"
)

// TestSearchResEmptyDollar: "$" with no SEARCH ... SAVE in the current
// selected state is the empty sequence, which every command takes as a
// valid set matching nothing: OK, no data, no NOTSAVED (RFC 9051
// §6.4.4.1, §6.4.4.3; RFC 5182 §2.1, §2.5). A new SELECT or EXAMINE
// empties it; a SEARCH answered BAD leaves it alone, one answered NO with
// SAVE empties it.
func TestSearchResEmptyDollar(t *testing.T) {
	e := condstoreEnv(t) // three messages in INBOX
	c := e.login()
	selectOK := func(tag, cmd, mode string) step {
		return step{tag + " " + cmd, []string{"<*>", "<*>", "* 3 EXISTS", "<*>", "<*>", "<*>", "<*>", "<*>", tag + " OK [" + mode + "] " + strings.Fields(cmd)[0] + " completed"}}
	}
	replay(t, c, []step{selectOK("s", "SELECT INBOX", "READ-WRITE")})
	noSave := []step{
		{"a FETCH $ (FLAGS)", []string{"a OK FETCH completed (no messages in $)"}},
		{"b UID FETCH $ (FLAGS)", []string{"b OK FETCH completed (no messages in $)"}},
		{`c STORE $ +FLAGS (\Seen)`, []string{"c OK STORE completed (no messages in $)"}},
		{`d UID STORE $ +FLAGS (\Seen)`, []string{"d OK STORE completed (no messages in $)"}},
		{"e COPY $ INBOX", []string{"e OK COPY completed (no messages in $)"}},
		{"f UID MOVE $ INBOX", []string{"f OK MOVE completed (no messages in $)"}},
		{"g UID EXPUNGE $", []string{"g OK EXPUNGE completed (no messages in $)"}},
		{"h SEARCH $", []string{"* SEARCH", "h OK SEARCH completed"}},
		{"i UID SEARCH OR $ UID 2", []string{"* SEARCH 2", "i OK SEARCH completed"}},
		{"j SEARCH RETURN (COUNT) $", []string{`* ESEARCH (TAG "j") COUNT 0`, "j OK SEARCH completed"}},
		// Malformed all the same: BAD, "$" or not.
		{"k FETCH $ (BOGUS)", []string{"k BAD <*>"}},
	}
	replay(t, c, noSave)
	// A saved result lives only in its selected state.
	for _, sel := range []step{selectOK("x", "SELECT INBOX", "READ-WRITE"), selectOK("y", "EXAMINE INBOX", "READ-ONLY")} {
		replay(t, c, []step{
			{"p SEARCH RETURN (SAVE) 1:2", []string{"p OK SEARCH completed"}},
			{"q SEARCH $", []string{"* SEARCH 1 2", "q OK SEARCH completed"}},
			sel,
			{"r SEARCH $", []string{"* SEARCH", "r OK SEARCH completed"}},
			{"a FETCH $ (FLAGS)", []string{"a OK FETCH completed (no messages in $)"}},
		})
	}
	tests := []struct {
		name string
		cmd  step
		want string // SEARCH $ afterwards
	}{
		{"BAD keeps $", step{"t1 SEARCH RETURN (SAVE) YOUNGER 10", []string{"t1 BAD search key YOUNGER is not supported"}}, "* SEARCH 1 2"},
		{"BAD syntax keeps $", step{"t2 SEARCH RETURN (SAVE) NOSUCHKEY", []string{"t2 BAD <*>"}}, "* SEARCH 1 2"},
		{"NO with SAVE empties $", step{"t3 SEARCH RETURN (SAVE) CHARSET KOI8-R BODY x", []string{"t3 NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"}}, "* SEARCH"},
		{"NO without SAVE keeps $", step{"t4 SEARCH CHARSET KOI8-R BODY x", []string{"t4 NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset"}}, "* SEARCH 1 2"},
		{"SEARCH without SAVE keeps $", step{"t5 SEARCH 3", []string{"* SEARCH 3", "t5 OK SEARCH completed"}}, "* SEARCH 1 2"},
	}
	for _, tc := range tests {
		replay(t, c, []step{
			{"p SEARCH RETURN (SAVE) 1:2", []string{"p OK SEARCH completed"}},
			tc.cmd,
			{"q SEARCH $", []string{tc.want, "q OK SEARCH completed"}},
		})
	}
}
