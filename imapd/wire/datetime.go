package wire

import (
	"strings"
	"time"
)

var months = [...]string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}

// ParseDate parses date-text = date-day "-" date-month "-" date-year
// (RFC 9051 §9), "1-Feb-1994", into midnight UTC of that day.
func ParseDate(s string) (time.Time, error) {
	day, rest, ok1 := strings.Cut(s, "-")
	mon, year, ok2 := strings.Cut(rest, "-")
	if !ok1 || !ok2 || len(day) < 1 || len(day) > 2 || len(year) != 4 {
		return time.Time{}, syntaxErr("invalid date %q", s)
	}
	return makeDate(s, day, mon, year)
}

func makeDate(orig, day, mon, year string) (time.Time, error) {
	d, okD := parseUint(day)
	y, okY := parseUint(year)
	m := monthNumber(mon)
	if !isDigits(day) || !isDigits(year) || !okD || !okY || m == 0 {
		return time.Time{}, syntaxErr("invalid date %q", orig)
	}
	t := time.Date(int(y), time.Month(m), int(d), 0, 0, 0, 0, time.UTC)
	if t.Day() != int(d) {
		// time.Date normalises 31-Feb into March; the client meant nonsense.
		return time.Time{}, syntaxErr("no such day %q", orig)
	}
	return t, nil
}

func monthNumber(s string) int {
	for i, m := range months {
		if strings.EqualFold(s, m) {
			return i + 1
		}
	}
	return 0
}

// ParseDateToken parses date = date-text / DQUOTE date-text DQUOTE.
func ParseDateToken(t Token) (time.Time, error) {
	if t.Kind != KindAtom && t.Kind != KindQuoted {
		return time.Time{}, syntaxErr("expected a date")
	}
	return ParseDate(t.Value)
}

// ParseDateTime parses the content of date-time (RFC 9051 §9):
//
//	date-day-fixed "-" date-month "-" date-year SP time SP zone
//
// "17-Jul-1996 02:44:25 -0700". date-day-fixed is (SP DIGIT) / 2DIGIT;
// a lone digit is taken too, as some clients send it.
func ParseDateTime(s string) (time.Time, error) {
	bad := syntaxErr("invalid date-time %q", s)
	s = strings.TrimPrefix(s, " ")
	date, rest, ok := strings.Cut(s, " ")
	if !ok {
		return time.Time{}, bad
	}
	clock, zone, ok := strings.Cut(rest, " ")
	if !ok || len(clock) != 8 || clock[2] != ':' || clock[5] != ':' || len(zone) != 5 || (zone[0] != '+' && zone[0] != '-') {
		return time.Time{}, bad
	}
	day, err := ParseDate(date)
	if err != nil {
		return time.Time{}, bad
	}
	hh, ok1 := twoDigits(clock[0:2])
	mm, ok2 := twoDigits(clock[3:5])
	ss, ok3 := twoDigits(clock[6:8])
	zh, ok4 := twoDigits(zone[1:3])
	zm, ok5 := twoDigits(zone[3:5])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || hh > 23 || mm > 59 || ss > 60 || zm > 59 {
		return time.Time{}, bad
	}
	offset := (zh*60 + zm) * 60
	if zone[0] == '-' {
		offset = -offset
	}
	loc := time.FixedZone("", offset)
	return time.Date(day.Year(), day.Month(), day.Day(), hh, mm, ss, 0, loc), nil
}

func twoDigits(s string) (int, bool) {
	if len(s) != 2 || !isDigits(s) {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// ParseDateTimeToken parses a date-time token, which is always quoted.
func ParseDateTimeToken(t Token) (time.Time, error) {
	if t.Kind != KindQuoted {
		return time.Time{}, syntaxErr("date-time must be a quoted string")
	}
	return ParseDateTime(t.Value)
}
