package messagetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// BenchMessage is a text/plain message of about size octets, LF line ends,
// with the header of a real one on top and a body of lines up to 72
// columns over a vocabulary of 5,000 words. The same size gives the same
// message, so that benchmarks of deliver and of the text index compare.
func BenchMessage(size int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("Return-Path: <a@example.org>\nReceived: from mx.example.org by mx with ESMTPS id 1234\n\tfor <b@example.net>; Tue, 24 Nov 2026 04:00:00 +0000\n" +
		"From: Alice <a@example.org>\nTo: b@example.net\nSubject: quarterly report and =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n" +
		"Date: Tue, 24 Nov 2026 04:00:00 +0000\nMessage-ID: <1.2@example.org>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n")
	col := 0
	for b.Len() < size {
		w := fmt.Sprintf("w%x", rng.IntN(5000)*2654435761%1000003)
		if col+len(w) > 72 {
			b.WriteByte('\n')
			col = 0
		}
		b.WriteString(w + " ")
		col += len(w) + 1
	}
	return b.String()
}
