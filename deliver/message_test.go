package deliver

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestInspect(t *testing.T) {
	tests := []struct {
		name     string
		msg      string
		want     envelope
		wantRest string // what is left to read after inspect
	}{
		{
			name:     "plain",
			msg:      "Subject: x\n\nbody\n",
			want:     envelope{eol: "\n"},
			wantRest: "Subject: x\n\nbody\n",
		},
		{
			name:     "crlf",
			msg:      "Subject: x\r\n\r\nbody\r\n",
			want:     envelope{eol: "\r\n"},
			wantRest: "Subject: x\r\n\r\nbody\r\n",
		},
		{
			name:     "from line dropped",
			msg:      "From alice@a.test  Mon Nov 23 21:14:47 2026\nSubject: x\n\nb\n",
			want:     envelope{fromLine: true, fromLineSender: "alice@a.test", eol: "\n"},
			wantRest: "Subject: x\n\nb\n",
		},
		{
			name:     "from line of the null sender",
			msg:      "From MAILER-DAEMON  Mon Nov 23 21:14:47 2026\nSubject: x\n\nb\n",
			want:     envelope{fromLine: true, eol: "\n"},
			wantRest: "Subject: x\n\nb\n",
		},
		{
			name: "postfix trace block",
			msg: "From a@b  Mon Nov 23 21:14:47 2026\nReturn-Path: <a@b>\nX-Original-To: u+t@x\n" +
				"Delivered-To: U+T@x\nReceived: from y\n\tby z\nDelivered-To: other@x\n\nb\n",
			want: envelope{fromLine: true, fromLineSender: "a@b", eol: "\n", returnPathFirst: true,
				mtaDeliveredTo: "u+t@x", deliveredTo: []string{"u+t@x", "other@x"}},
			wantRest: "Return-Path: <a@b>\nX-Original-To: u+t@x\nDelivered-To: U+T@x\nReceived: from y\n\tby z\nDelivered-To: other@x\n\nb\n",
		},
		{
			name:     "delivered-to not in a trace block",
			msg:      "Subject: x\nReturn-Path: <a@b>\nDelivered-To: <u@x>\n\nDelivered-To: body@x\n",
			want:     envelope{eol: "\n", deliveredTo: []string{"u@x"}},
			wantRest: "Subject: x\nReturn-Path: <a@b>\nDelivered-To: <u@x>\n\nDelivered-To: body@x\n",
		},
		{
			name:     "folded delivered-to",
			msg:      "Delivered-To:\n  u@x\n\nb",
			want:     envelope{eol: "\n", deliveredTo: []string{"u@x"}},
			wantRest: "Delivered-To:\n  u@x\n\nb",
		},
		{
			name:     "headers only, no final newline",
			msg:      "Subject: x",
			want:     envelope{eol: "\n"},
			wantRest: "Subject: x",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.msg), headerScanLimit)
			got, err := inspect(br)
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("inspect =\n %+v\nwant\n %+v", got, tt.want)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != tt.wantRest {
				t.Errorf("rest = %q, want %q", rest, tt.wantRest)
			}
		})
	}
}

func TestInspectBadData(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"empty", "", errEmpty},
		{"only a From_ line", "From a@b  Mon Nov 23 21:14:47 2026\n", errEmpty},
		{"no headers", "hello world\n\nbody\n", errNoHeaders},
		{"blank first line", "\nbody\n", errNoHeaders},
		{"space in field name", "Sub ject: x\n\nb", errNoHeaders},
		{"colon first", ": x\n\nb", errNoHeaders},
		{"NUL in header", "Subject: a\x00b\n\nb", errNUL},
		{"NUL in early body", "Subject: a\n\nb\x00", errNUL},
		{"From_ line too long", "From " + strings.Repeat("x", headerScanLimit) + "\n", errFromLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.msg), headerScanLimit)
			if _, err := inspect(br); !errors.Is(err, tt.want) {
				t.Errorf("inspect error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestGuard(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int64
		want error
	}{
		{"clean", "abc", 0, nil},
		{"at the limit", "abc", 3, nil},
		{"over the limit", "abcd", 3, errTooBig},
		{"NUL", "ab\x00c", 0, errNUL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &guard{r: strings.NewReader(tt.in), max: tt.max}
			out, err := io.ReadAll(g)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && string(out) != tt.in {
				t.Errorf("out = %q, want %q", out, tt.in)
			}
		})
	}
}

func FuzzInspect(f *testing.F) {
	f.Add("Subject: x\n\nbody\n")
	f.Add("From a@b  Mon Nov 23 21:14:47 2026\nReturn-Path: <a@b>\nDelivered-To: u@x\n\nb")
	f.Add("Delivered-To:\n  u@x\r\n\r\n")
	f.Add("\n")
	f.Add("x\x00")
	f.Fuzz(func(t *testing.T, msg string) {
		br := bufio.NewReaderSize(strings.NewReader(msg), headerScanLimit)
		env, err := inspect(br)
		if err != nil {
			return
		}
		if env.mtaDeliveredTo != "" && (len(env.deliveredTo) == 0 || env.deliveredTo[0] != env.mtaDeliveredTo) {
			t.Fatalf("trace-block Delivered-To %q is not the first of %q", env.mtaDeliveredTo, env.deliveredTo)
		}
		if env.eol != "\n" && env.eol != "\r\n" {
			t.Fatalf("eol = %q", env.eol)
		}
		rest, _ := io.ReadAll(br)
		if !strings.HasSuffix(msg, string(rest)) || len(rest) == 0 {
			t.Fatalf("rest %q is not a non-empty tail of the message", rest)
		}
	})
}
