package wire

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadLine(t *testing.T) {
	s := newSession("a AUTHENTICATE PLAIN\r\ndGVzdAB0ZXN0AHRlc3Q=\r\n"+strings.Repeat("x", 300)+"\r\nDONE\r\n", Options{Limits: Limits{MaxLine: 100}})
	if _, err := s.r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if line, err := s.r.ReadLine(); err != nil || line != "dGVzdAB0ZXN0AHRlc3Q=" {
		t.Fatalf("ReadLine = %q %v", line, err)
	}
	if _, err := s.r.ReadLine(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v", err)
	}
	if line, err := s.r.ReadLine(); err != nil || line != "DONE" {
		t.Fatalf("after long line: %q %v", line, err)
	}
	if _, err := s.r.ReadLine(); !errors.Is(err, io.EOF) {
		t.Fatalf("at end: %v", err)
	}
}

func TestBinaryAppendAndNUL(t *testing.T) {
	s := newSession("a APPEND INBOX ~{3+}\r\na\x00b {3+}\r\nc\x00d\r\n", Options{})
	cmd, err := s.r.ReadCommand()
	if err != nil || cmd.Message == nil || !cmd.Message.Binary() {
		t.Fatalf("%+v %v", cmd, err)
	}
	io.Copy(io.Discard, cmd.Message)
	if cmd.Message.SawNUL() {
		t.Error("NUL flagged in a literal8")
	}
	if err := s.r.NextMessage(cmd); err != nil || cmd.Message == nil || cmd.Message.Binary() {
		t.Fatalf("second: %+v %v", cmd, err)
	}
	msg := cmd.Message
	io.Copy(io.Discard, msg)
	if !msg.SawNUL() {
		t.Error("NUL in a plain literal not flagged")
	}
	if err := s.r.NextMessage(cmd); err != nil || cmd.Message != nil {
		t.Fatalf("end: %+v %v", cmd, err)
	}
	if err := s.r.NextMessage(cmd); err == nil {
		t.Error("NextMessage without a pending message succeeded")
	}
}

func TestCheckRefusesNonSync(t *testing.T) {
	check := func(l LiteralInfo) error {
		if l.Message && l.Size > 5 {
			return &Error{Status: "NO", Code: "OVERQUOTA", Text: "quota"}
		}
		return nil
	}
	s := newSession("a APPEND INBOX {10+}\r\nb LOGOUT\r\n\r\nc NOOP\r\n", Options{Check: check})
	_, err := s.r.ReadCommand()
	if e, ok := AsError(err); !ok || e.Class != ClassRefused || e.Code != "OVERQUOTA" || e.Fatal {
		t.Fatalf("err = %v", err)
	}
	if cmd, err := s.r.ReadCommand(); err != nil || cmd.Tag != "c" {
		t.Fatalf("next = %+v %v (the refused data must be skipped)", cmd, err)
	}
}

func TestModeSwitches(t *testing.T) {
	s := newSession("a X \"\xc3\xa9\"\r\nb X \"\xc3\xa9\"\r\nc X {1+}\r\nx\r\n", Options{})
	if _, err := s.r.ReadCommand(); err == nil {
		t.Error("UTF-8 quoted accepted before SetUTF8")
	}
	s.r.SetUTF8(true)
	if _, err := s.r.ReadCommand(); err != nil {
		t.Error(err)
	}
	s.r.SetNonSync(NoNonSync)
	if _, err := s.r.ReadCommand(); !errors.Is(err, ErrNonSyncLiteral) {
		t.Errorf("non-sync after NoNonSync: %v", err)
	}
}

func TestMisc(t *testing.T) {
	set, err := ParseUIDSet(argsOf(t, "EXPUNGE 3000:3002"))
	if err != nil || set.String() != "3000:3002" {
		t.Errorf("ParseUIDSet: %v %v", set, err)
	}
	if _, err := ParseUIDSet(nil); err == nil {
		t.Error("ParseUIDSet(nil) succeeded")
	}
	fc, err := ParseFetch(argsOf(t, `FETCH 1 BODY[HEADER.FIELDS ("X Y" "NIL" Z)]`))
	if err != nil || fc.Attrs[0].ResponseName() != `BODY[HEADER.FIELDS ("X Y" "NIL" Z)]` {
		t.Errorf("ResponseName: %v %v", fc.Attrs, err)
	}
	e := &Error{Class: ClassTooBig, Text: "x", Fatal: true, Err: ErrLineTooLong}
	if got := e.Error(); got != "toobig: x (fatal): line too long" {
		t.Errorf("Error() = %q", got)
	}
	toks := argsOf(t, `X "q" {1}`+"\r\nl a 4294967296")
	if !toks[0].IsString() || !toks[1].IsString() || toks[2].IsString() {
		t.Error("IsString")
	}
	if _, ok := toks[3].Number(); ok {
		t.Error("Number accepted 2^32")
	}
	if n, ok := toks[3].Number64(); !ok || n != 1<<32 {
		t.Error("Number64")
	}
}
