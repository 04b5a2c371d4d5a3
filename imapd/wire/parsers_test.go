package wire

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// argsOf reads "t <line>" and returns the arguments; the line may hold
// literals.
func argsOf(t *testing.T, line string) []Token {
	t.Helper()
	s := newSession("t "+line+"\r\n", Options{UTF8: true})
	cmd, err := s.r.ReadCommand()
	if err != nil {
		t.Fatalf("reading %q: %v", line, err)
	}
	return cmd.Args
}

func wantSyntax(t *testing.T, what string, err error) {
	t.Helper()
	e, ok := AsError(err)
	if !ok || (e.Class != ClassSyntax && e.Class != ClassTooBig) {
		t.Errorf("%s: err = %v, want a syntax error", what, err)
	}
}

func TestParseSeqSet(t *testing.T) {
	tests := []struct {
		in, out string
		ok      bool
	}{
		{"1", "1", true},
		{"1:4", "1:4", true},
		{"4:1", "4:1", true},
		{"2,4:7,9,12:*", "2,4:7,9,12:*", true},
		{"*:4,5:7", "*:4,5:7", true},
		{"*", "*", true},
		{"$", "$", true},
		{"4294967295", "4294967295", true},
		{"4294967296", "", false},
		{"0", "", false},
		{"01", "", false},
		{"1:0", "", false},
		{"", "", false},
		{"1,", "", false},
		{",1", "", false},
		{"1::2", "", false},
		{"1:2:3", "", false},
		{"$,1", "", false},
		{"1:$", "", false},
		{"a", "", false},
	}
	for _, tt := range tests {
		set, err := ParseSeqSet(tt.in)
		if !tt.ok {
			wantSyntax(t, tt.in, err)
			continue
		}
		if err != nil || set.String() != tt.out {
			t.Errorf("%q: %v %v, want %q", tt.in, set, err, tt.out)
		}
	}
	set, _ := ParseSeqSet("2,4:7,9,12:*")
	for n, want := range map[uint32]bool{1: false, 2: true, 5: true, 8: false, 12: true, 15: true, 16: false} {
		if got := set.Contains(n, 15); got != want {
			t.Errorf("Contains(%d, 15) = %v", n, got)
		}
	}
	if !set.Dynamic() {
		t.Error("Dynamic false with *")
	}
}

func TestParseFetch(t *testing.T) {
	tests := []struct {
		line  string
		attrs []string // ResponseName of each, "PEEK:" prefix for peeks
	}{
		{"1 ALL", []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"}},
		{"1 fast", []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE"}},
		{"1 FULL", []string{"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"}},
		{"1:* (UID FLAGS)", []string{"UID", "FLAGS"}},
		{"2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])", []string{"FLAGS", "BODY[HEADER.FIELDS (DATE FROM)]"}},
		{"1 body[header]", []string{"BODY[HEADER]"}},
		{"1 BODY.PEEK[]<0.2048>", []string{"PEEK:BODY[]<0>"}},
		{"1 (BODY[1.2.MIME] BODY[3.TEXT] BODY[4.HEADER.FIELDS.NOT (X-Y)] BODY[2])", []string{"BODY[1.2.MIME]", "BODY[3.TEXT]", "BODY[4.HEADER.FIELDS.NOT (X-Y)]", "BODY[2]"}},
		{"1 (BINARY.PEEK[1]<10.20> BINARY.SIZE[2] BINARY[])", []string{"PEEK:BINARY[1]<10>", "BINARY.SIZE[2]", "BINARY[]"}},
		{"1 (RFC822 RFC822.HEADER RFC822.TEXT ENVELOPE BODYSTRUCTURE INTERNALDATE MODSEQ SAVEDATE)", []string{"RFC822", "RFC822.HEADER", "RFC822.TEXT", "ENVELOPE", "BODYSTRUCTURE", "INTERNALDATE", "MODSEQ", "SAVEDATE"}},
		{"1 (FLAGS) (CHANGEDSINCE 12345 VANISHED)", []string{"FLAGS"}},
	}
	for _, tt := range tests {
		fc, err := ParseFetch(argsOf(t, "FETCH "+tt.line)[0:])
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		var got []string
		for _, a := range fc.Attrs {
			n := a.ResponseName()
			if a.Peek {
				n = "PEEK:" + n
			}
			got = append(got, n)
		}
		if !reflect.DeepEqual(got, tt.attrs) {
			t.Errorf("%q: %q, want %q", tt.line, got, tt.attrs)
		}
	}
	fc, _ := ParseFetch(argsOf(t, "FETCH 1 (FLAGS) (CHANGEDSINCE 12345 VANISHED)"))
	if !fc.HasChangedSince || fc.ChangedSince != 12345 || !fc.Vanished {
		t.Errorf("modifiers = %+v", fc)
	}
	fc, _ = ParseFetch(argsOf(t, "FETCH 1 BODY[1.2.HEADER.FIELDS (A b)]<5.6>"))
	sec := fc.Attrs[0].Section
	if !reflect.DeepEqual(sec.Part, []uint32{1, 2}) || sec.Specifier != "HEADER.FIELDS" || !reflect.DeepEqual(sec.Fields, []string{"A", "b"}) || fc.Attrs[0].Partial.Count != 6 {
		t.Errorf("section = %+v %+v", sec, fc.Attrs[0].Partial)
	}

	bad := []string{
		"1", "1 ALL x y", "1 (ALL)", "x FLAGS", "1 FOO", "1 ()", "1 BODY.PEEK", "1 BODY[MIME]",
		"1 BODY[HEADER.FIELDS]", "1 BODY[HEADER.FIELDS ()]", "1 BODY[1.]", "1 BODY[1..2]",
		"1 BODY[0]", "1 BODY[TEXT X]", "1 BODY[FOO]", "1 BINARY[HEADER]", "1 BINARY.SIZE[1]<0.1>",
		"1 BODY[1.HEADER.FIELDS (\"\")]", "1 (FLAGS (UID))", "1 FLAGS (FOO)", "1 FLAGS (CHANGEDSINCE 0)",
		"1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "1 FLAGS ()", "1 \"FLAGS\"",
	}
	for _, line := range bad {
		_, err := ParseFetch(argsOf(t, "FETCH "+line))
		wantSyntax(t, line, err)
	}
}

func TestParseStoreAndFlags(t *testing.T) {
	tests := []struct {
		line   string
		op     StoreOp
		silent bool
		flags  []string
		unch   int64 // -1: none
	}{
		{`2:4 +FLAGS (\Deleted)`, StoreAdd, false, []string{`\Deleted`}, -1},
		{`12 +flags \deleted`, StoreAdd, false, []string{`\Deleted`}, -1},
		{`1 -FLAGS.SILENT (\seen $Forwarded Junk)`, StoreRemove, true, []string{`\Seen`, "$Forwarded", "Junk"}, -1},
		{`1 FLAGS ()`, StoreReplace, false, []string{}, -1},
		{`1 FLAGS \ANSWERED \FLAGGED \DRAFT`, StoreReplace, false, []string{`\Answered`, `\Flagged`, `\Draft`}, -1},
		{`1:* (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\Deleted)`, StoreAdd, true, []string{`\Deleted`}, 320162338},
		{`1 (UNCHANGEDSINCE 0) FLAGS (\Seen)`, StoreReplace, false, []string{`\Seen`}, 0},
	}
	for _, tt := range tests {
		sc, err := ParseStore(argsOf(t, "STORE "+tt.line))
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		unch := int64(-1)
		if sc.HasUnchangedSince {
			unch = int64(sc.UnchangedSince)
		}
		if sc.Op != tt.op || sc.Silent != tt.silent || !reflect.DeepEqual(sc.Flags, tt.flags) || unch != tt.unch {
			t.Errorf("%q: %+v", tt.line, sc)
		}
	}
	bad := []string{`1 FLAGS`, `1 +FLAG (\Seen)`, `1 *FLAGS (\Seen)`, `1 FLAGS (\Se]en)`, `1 FLAGS ("x")`,
		`1 FLAGS \`, `1 (FOO 1) FLAGS x`, `1 (UNCHANGEDSINCE x) FLAGS y`, `x FLAGS y`, `1 FLAGS ((a))`, `1 FLAGS.LOUD (a)`}
	for _, line := range bad {
		_, err := ParseStore(argsOf(t, "STORE "+line))
		wantSyntax(t, line, err)
	}
}

// keyString renders a search key tree for comparison.
func keyString(k SearchKey) string {
	var b strings.Builder
	b.WriteString(k.Op)
	switch {
	case k.Op == "SEQSET" || k.Op == "UID":
		b.WriteString(" " + k.Seq.String())
	case k.Field != "":
		fmt.Fprintf(&b, " %s=%q", k.Field, k.Value)
	case k.Value != "":
		fmt.Fprintf(&b, " %q", k.Value)
	case !k.Date.IsZero():
		b.WriteString(" " + k.Date.Format("2006-01-02"))
	case k.Num != 0 || k.Op == "LARGER" || k.Op == "MODSEQ":
		fmt.Fprintf(&b, " %d", k.Num)
	}
	if k.EntryName != "" {
		fmt.Fprintf(&b, " [%s %s]", k.EntryName, k.EntryType)
	}
	if len(k.Keys) > 0 {
		b.WriteString(" (")
		for i, s := range k.Keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(keyString(s))
		}
		b.WriteString(")")
	}
	return b.String()
}

func TestParseSearch(t *testing.T) {
	tests := []struct{ line, want string }{
		{`FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"`, `AND (FLAGGED, SINCE 1994-02-01, NOT (FROM "Smith"))`},
		{`TEXT "string not in mailbox"`, `AND (TEXT "string not in mailbox")`},
		{`OR (SEEN FLAGGED) NOT 1:3,*`, `AND (OR (AND (SEEN, FLAGGED), NOT (SEQSET 1:3,*)))`},
		{`UID 2:4 LARGER 1000 SMALLER 0`, `AND (UID 2:4, LARGER 1000, SMALLER)`},
		{`HEADER Message-ID "<x@y>" KEYWORD $Forwarded UNKEYWORD Junk`, `AND (HEADER Message-ID="<x@y>", KEYWORD "$Forwarded", UNKEYWORD "Junk")`},
		{`BEFORE "31-Dec-2023" ON 1-jan-2024 SENTBEFORE 2-Feb-2020 SENTON 3-Mar-2021 SENTSINCE 4-Apr-2022`, `AND (BEFORE 2023-12-31, ON 2024-01-01, SENTBEFORE 2020-02-02, SENTON 2021-03-03, SENTSINCE 2022-04-04)`},
		{`MODSEQ "/flags/\\draft" all 620162338`, `AND (MODSEQ 620162338 [/flags/\draft all])`},
		{`MODSEQ 720162338`, `AND (MODSEQ 720162338)`},
		{`$`, `AND (SEQSET $)`},
		{`UID $`, `AND (UID $)`},
		{`OR OR ANSWERED DELETED DRAFT`, `AND (OR (OR (ANSWERED, DELETED), DRAFT))`},
		{`all unseen undeleted unanswered unflagged undraft new old recent`, `AND (ALL, UNSEEN, UNDELETED, UNANSWERED, UNFLAGGED, UNDRAFT, NEW, OLD, RECENT)`},
		{`BCC a CC b BODY c SUBJECT d TO e FROM {1}` + "\r\nf", `AND (BCC "a", CC "b", BODY "c", SUBJECT "d", TO "e", FROM "f")`},
		{`OLDER 3600 YOUNGER 60`, `AND (OLDER 3600, YOUNGER 60)`},
	}
	for _, tt := range tests {
		sc, err := ParseSearch(argsOf(t, "SEARCH "+tt.line))
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if got := keyString(sc.Key); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.line, got, tt.want)
		}
	}
	sc, err := ParseSearch(argsOf(t, `SEARCH RETURN (MIN COUNT save) CHARSET UTF-8 TEXT {8+}`+"\r\nмаша"))
	if err != nil || !sc.HasReturn || !reflect.DeepEqual(sc.Return, []string{"MIN", "COUNT", "SAVE"}) || sc.Charset != "UTF-8" || sc.Key.Keys[0].Value != "маша" {
		t.Errorf("RETURN/CHARSET: %+v %v", sc, err)
	}
	sc, err = ParseSearch(argsOf(t, `SEARCH RETURN () ALL`))
	if err != nil || !sc.HasReturn || len(sc.Return) != 0 {
		t.Errorf("RETURN (): %+v %v", sc, err)
	}

	if _, err := ParseSearch(nil); err == nil {
		t.Error("empty SEARCH accepted")
	}
	bad := []string{`FOO`, `FROM`, `OR SEEN`, `NOT`, `SINCE 32-Jan-2020`, `SINCE 1-Foo-2020`, `SINCE 1-Jan-20`,
		`SINCE 29-Feb-2023`, `LARGER x`, `LARGER -1`, `UID x`, `UID`, `KEYWORD \Seen`, `HEADER x`, `()`,
		`RETURN (FOO) ALL`, `RETURN (MIN)`, `CHARSET`, `0`, `1:0`, `MODSEQ x`, `MODSEQ "/x/y" all 1`,
		`MODSEQ "/flags/x" bogus 1`, `OLDER 0`, `SEEN NIL`, `ALL (SEEN ())`,
		strings.Repeat("NOT ", 200) + "ALL"}
	for _, line := range bad {
		_, err := ParseSearch(argsOf(t, "SEARCH "+line))
		wantSyntax(t, line, err)
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		line     string
		extended bool
		want     ListCommand
	}{
		{`"" ""`, true, ListCommand{Patterns: []string{""}}},
		{`#news.comp.mail.misc ""`, true, ListCommand{Reference: "#news.comp.mail.misc", Patterns: []string{""}}},
		{`~/Mail/ %`, true, ListCommand{Reference: "~/Mail/", Patterns: []string{"%"}}},
		{`"" *`, true, ListCommand{Patterns: []string{"*"}}},
		{`"" INBOX.*`, false, ListCommand{Patterns: []string{"INBOX.*"}}},
		{`inbox foo]bar`, true, ListCommand{Reference: "INBOX", Patterns: []string{"foo]bar"}}},
		{`(SUBSCRIBED) "" "*"`, true, ListCommand{Select: []string{"SUBSCRIBED"}, Patterns: []string{"*"}, Extended: true}},
		{`(subscribed recursivematch) "" %`, true, ListCommand{Select: []string{"SUBSCRIBED", "RECURSIVEMATCH"}, Patterns: []string{"%"}, Extended: true}},
		{`() "" (INBOX Drafts)`, true, ListCommand{Select: []string{}, Patterns: []string{"INBOX", "Drafts"}, Extended: true}},
		{`"" % RETURN (CHILDREN SPECIAL-USE)`, true, ListCommand{Patterns: []string{"%"}, Return: []string{"CHILDREN", "SPECIAL-USE"}, Extended: true}},
		{`"" % RETURN (STATUS (MESSAGES UNSEEN) SUBSCRIBED)`, true, ListCommand{Patterns: []string{"%"}, Return: []string{"SUBSCRIBED"}, StatusItems: []string{"MESSAGES", "UNSEEN"}, Extended: true}},
		{`"" % RETURN ()`, true, ListCommand{Patterns: []string{"%"}, Return: []string{}, Extended: true}},
	}
	for _, tt := range tests {
		lc, err := ParseList(argsOf(t, "LIST "+tt.line), tt.extended)
		if err != nil || !reflect.DeepEqual(lc, tt.want) {
			t.Errorf("%q: %+v %v\nwant %+v", tt.line, lc, err, tt.want)
		}
	}
	bad := []struct {
		line     string
		extended bool
	}{
		{`""`, true}, {`(FOO) "" %`, true}, {`(RECURSIVEMATCH) "" %`, true}, {`(REMOTE RECURSIVEMATCH) "" %`, true},
		{`"" % RETURN (FOO)`, true}, {`"" % RETURN`, true}, {`"" % x`, true}, {`"" (a b)`, false},
		{`(SUBSCRIBED) "" %`, false}, {`"" ()`, true}, {`"" % RETURN (STATUS (FOO))`, true}, {`"" % RETURN (STATUS)`, true},
		{`() ""`, true},
	}
	for _, tt := range bad {
		_, err := ParseList(argsOf(t, "LIST "+tt.line), tt.extended)
		wantSyntax(t, tt.line, err)
	}
}

func TestParseStatusSelectEnableIDCopy(t *testing.T) {
	mbox, items, err := ParseStatus(argsOf(t, `STATUS blurdybloop (UIDNEXT MESSAGES size highestmodseq)`))
	if err != nil || mbox != "blurdybloop" || !reflect.DeepEqual(items, []string{"UIDNEXT", "MESSAGES", "SIZE", "HIGHESTMODSEQ"}) {
		t.Errorf("STATUS: %q %q %v", mbox, items, err)
	}
	for _, line := range []string{`x ()`, `x (FOO)`, `x`, `x MESSAGES`, `(x) (MESSAGES)`} {
		_, _, err := ParseStatus(argsOf(t, "STATUS "+line))
		wantSyntax(t, line, err)
	}

	sel, err := ParseSelect(argsOf(t, `SELECT inBox (CONDSTORE)`))
	if err != nil || sel.Mailbox != "INBOX" || !sel.CondStore || sel.QResync != nil {
		t.Errorf("SELECT CONDSTORE: %+v %v", sel, err)
	}
	// RFC 7162 §3.2.5.2 example.
	sel, err = ParseSelect(argsOf(t, `SELECT INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:20 41:60)))`))
	if err != nil || sel.QResync == nil || sel.QResync.UIDValidity != 67890007 || sel.QResync.ModSeq != 90060115194045000 ||
		sel.QResync.KnownUIDs.String() != "41:211,214:541" || sel.QResync.SeqMatch == nil || sel.QResync.SeqMatch.UIDs.String() != "41:60" {
		t.Errorf("SELECT QRESYNC: %+v %v", sel.QResync, err)
	}
	sel, err = ParseSelect(argsOf(t, `EXAMINE INBOX (QRESYNC (1 2))`))
	if err != nil || sel.QResync.HasKnownUIDs || sel.QResync.SeqMatch != nil {
		t.Errorf("SELECT QRESYNC minimal: %+v %v", sel.QResync, err)
	}
	for _, line := range []string{`INBOX ()`, `INBOX (FOO)`, `INBOX (QRESYNC)`, `INBOX (QRESYNC (0 1))`, `INBOX (QRESYNC (1 0))`,
		`INBOX (QRESYNC (1 2 1:*))`, `INBOX (QRESYNC (1 2 1:5 (1:2)))`, `INBOX (CONDSTORE CONDSTORE)`, `INBOX x`, `(a)`, `a b c`} {
		_, err := ParseSelect(argsOf(t, "SELECT "+line))
		wantSyntax(t, line, err)
	}

	caps, err := ParseEnable(argsOf(t, `ENABLE condstore utf8=accept`))
	if err != nil || !reflect.DeepEqual(caps, []string{"CONDSTORE", "UTF8=ACCEPT"}) {
		t.Errorf("ENABLE: %q %v", caps, err)
	}
	_, err = ParseEnable(nil)
	wantSyntax(t, "ENABLE", err)

	id, err := ParseID(argsOf(t, `ID ("name" "sodr" "version" "19.34" "vendor" NIL)`))
	want := []IDField{{Key: "name", Value: "sodr"}, {Key: "version", Value: "19.34"}, {Key: "vendor", Nil: true}}
	if err != nil || !reflect.DeepEqual(id, want) {
		t.Errorf("ID: %+v %v", id, err)
	}
	if id, err := ParseID(argsOf(t, `ID NIL`)); err != nil || id != nil {
		t.Errorf("ID NIL: %+v %v", id, err)
	}
	for _, line := range []string{`("a")`, `(a "b")`, `("a" b)`, `x`, `("` + strings.Repeat("k", 31) + `" "v")`,
		"(" + strings.TrimSpace(strings.Repeat(`"k" "v" `, 31)) + ")"} {
		_, err := ParseID(argsOf(t, "ID "+line))
		wantSyntax(t, line, err)
	}

	set, mb, err := ParseCopy(argsOf(t, `COPY 2:4 MEETING`))
	if err != nil || set.String() != "2:4" || mb != "MEETING" {
		t.Errorf("COPY: %v %q %v", set, mb, err)
	}
	for _, line := range []string{`2:4`, `x y`, `1 (a)`} {
		_, _, err := ParseCopy(argsOf(t, "COPY "+line))
		wantSyntax(t, line, err)
	}

	if got, err := ParseAStrings(argsOf(t, `LOGIN SMITH "SESAME"`), 2); err != nil || !reflect.DeepEqual(got, []string{"SMITH", "SESAME"}) {
		t.Errorf("LOGIN: %q %v", got, err)
	}
	if _, err := ParseAStrings(argsOf(t, `LOGIN (a) b`), 2); err == nil {
		t.Error("LOGIN with a list accepted")
	}
}

func TestParseAppendAndDates(t *testing.T) {
	s := newSession("A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {3}\r\nabc\r\n", Options{})
	cmd, err := s.r.ReadCommand()
	if err != nil {
		t.Fatal(err)
	}
	mbox, opts, err := ParseAppend(cmd.Args)
	want := time.Date(1996, 7, 17, 2, 44, 25, 0, time.FixedZone("", -7*3600))
	if err != nil || mbox != "saved-messages" || !reflect.DeepEqual(opts.Flags, []string{`\Seen`}) || !opts.HasDate || !opts.Date.Equal(want) {
		t.Errorf("APPEND: %q %+v %v", mbox, opts, err)
	}
	if FormatDateTime(opts.Date) != "17-Jul-1996 02:44:25 -0700" {
		t.Errorf("FormatDateTime = %q", FormatDateTime(opts.Date))
	}
	if got := FormatDateTime(time.Date(2024, 3, 5, 1, 2, 3, 0, time.UTC)); got != " 5-Mar-2024 01:02:03 +0000" {
		t.Errorf("FormatDateTime = %q", got)
	}
	for _, in := range []string{" 5-Mar-2024 01:02:03 +0000", "05-mar-2024 01:02:03 +0000", "5-Mar-2024 23:59:60 -1200"} {
		if _, err := ParseDateTime(in); err != nil {
			t.Errorf("%q: %v", in, err)
		}
	}
	for _, in := range []string{"", "5-Mar-2024", "5-Mar-2024 1:02:03 +0000", "5-Mar-2024 24:00:00 +0000", "5-Mar-2024 01:02:03 0000",
		"5-Mar-2024 01:02:03 +00000", "31-Apr-2024 01:02:03 +0000", "5-Mar-2024  01:02:03 +0000", "5-Mar-2024 01:02:03 +0060"} {
		_, err := ParseDateTime(in)
		wantSyntax(t, in, err)
	}
	for _, line := range []string{`x "17-Jul-1996 02:44:25 -0700" (\Seen)`, `x 17-Jul-1996`, `x (\Seen) (\Seen)`, `(x)`} {
		_, _, err := ParseAppend(argsOf(t, "APPEND "+line))
		wantSyntax(t, line, err)
	}
}

func TestCanonicalFlag(t *testing.T) {
	for in, want := range map[string]string{`\seen`: `\Seen`, `\ANSWERED`: `\Answered`, `\fLaGgEd`: `\Flagged`,
		`\deleted`: `\Deleted`, `\draft`: `\Draft`, `\recent`: `\Recent`, `$label1`: `$label1`, `\Custom`: `\Custom`} {
		if got := CanonicalFlag(in); got != want {
			t.Errorf("CanonicalFlag(%q) = %q", in, got)
		}
	}
}

func TestErrorIs(t *testing.T) {
	err := error(tooBig(ErrLiteralTooBig, "x"))
	if !errors.Is(err, ErrLiteralTooBig) {
		t.Error("errors.Is through *Error failed")
	}
}
