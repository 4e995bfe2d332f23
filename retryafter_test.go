package sturdy_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

// now is the fixed clock every Retry-After test reads dates against.
var now = time.Date(2026, time.November, 29, 12, 0, 0, 0, time.UTC)

type waitCase struct {
	in     string
	want   time.Duration
	wantOK bool
}

func checkWait(t *testing.T, name string, parse func(string) (time.Duration, bool), tests []waitCase) {
	t.Helper()
	for _, tt := range tests {
		d, ok := parse(tt.in)
		if d != tt.want || ok != tt.wantOK {
			t.Errorf("%s(%q) = %v, %v; want %v, %v", name, tt.in, d, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseRetryAfterMs(t *testing.T) {
	checkWait(t, "ParseRetryAfterMs", sturdy.ParseRetryAfterMs, []waitCase{
		{"1500", 1500 * time.Millisecond, true},
		{"0", 0, true},
		{"-0", 0, true},
		{"12.5", 12500 * time.Microsecond, true},
		{"0.001", time.Microsecond, true},
		{" 250 ", 250 * time.Millisecond, true},
		{"\t7\r\n", 7 * time.Millisecond, true},
		{"3599999", 3599999 * time.Millisecond, true},
		// At and beyond the bound, the bound.
		{"3600000", sturdy.MaxRetryAfter, true},
		{"3600000.5", sturdy.MaxRetryAfter, true},
		{"9999999999999999", sturdy.MaxRetryAfter, true},
		{"1e300", sturdy.MaxRetryAfter, true},
		{"1e400", sturdy.MaxRetryAfter, true}, // beyond float64: still "wait as long as allowed"
		// Not a finite, non-negative number.
		{"-1", 0, false},
		{"-0.5", 0, false},
		{"-1e400", 0, false},
		{"NaN", 0, false},
		{"nan", 0, false},
		{"Inf", 0, false},
		{"+Inf", 0, false},
		{"-Inf", 0, false},
		{"infinity", 0, false},
		{"", 0, false},
		{"   ", 0, false},
		{"abc", 0, false},
		{"1500ms", 0, false},
		{"1.5s", 0, false},
		{"1,500", 0, false},
		{"15 00", 0, false},
		{strings.Repeat("1", 65), 0, false}, // longer than any real header
	})
}

func TestParseRetryAfter(t *testing.T) {
	at := func(layout string, d time.Duration) string { return now.Add(d).Format(layout) }
	const rfc850 = "Monday, 02-Jan-06 15:04:05 GMT" // http.ParseTime's second layout, as servers write it
	parse := func(v string) (time.Duration, bool) { return sturdy.ParseRetryAfter(v, now) }
	checkWait(t, "ParseRetryAfter", parse, []waitCase{
		// delay-seconds
		{"0", 0, true},
		{"1", time.Second, true},
		{"120", 2 * time.Minute, true},
		{" 30 ", 30 * time.Second, true},
		{"3599", 3599 * time.Second, true},
		{"3600", sturdy.MaxRetryAfter, true},
		{"86400", sturdy.MaxRetryAfter, true},
		{"1e300", sturdy.MaxRetryAfter, true},
		{"1e400", sturdy.MaxRetryAfter, true},
		{strings.Repeat("9", 64), sturdy.MaxRetryAfter, true},
		// fractions, which some servers send
		{"1.5", 1500 * time.Millisecond, true},
		{"0.25", 250 * time.Millisecond, true},
		{"2.", 2 * time.Second, true},
		// HTTP dates in each layout http.ParseTime accepts
		{at(http.TimeFormat, 30*time.Second), 30 * time.Second, true},
		{at(rfc850, 90*time.Second), 90 * time.Second, true},
		{at(time.ANSIC, 5*time.Minute), 5 * time.Minute, true},
		{"Sun, 29 Nov 2026 12:00:07 GMT", 7 * time.Second, true},
		{"Sunday, 29-Nov-26 12:00:07 GMT", 7 * time.Second, true},
		{"Sun Nov 29 12:00:07 2026", 7 * time.Second, true},
		// the present and the past mean "no wait", which is still a valid hint
		{at(http.TimeFormat, 0), 0, true},
		{at(http.TimeFormat, -time.Second), 0, true},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0, true}, // RFC 9110's example
		{"Sunday, 06-Nov-94 08:49:37 GMT", 0, true},
		{"Sun Nov  6 08:49:37 1994", 0, true},
		// far future dates are bounded
		{at(http.TimeFormat, 2*time.Hour), sturdy.MaxRetryAfter, true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", sturdy.MaxRetryAfter, true},
		// invalid
		{"", 0, false},
		{"  ", 0, false},
		{"-5", 0, false},
		{"+5", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"soon", 0, false},
		{"5s", 0, false},
		{"5, 6", 0, false},
		{"Sun, 29 Nov 2026 12:00:07 PST", 0, false}, // HTTP dates are GMT
		{"2026-11-29T12:00:07Z", 0, false},          // not an HTTP date
		{strings.Repeat("9", 65), 0, false},
	})
}

// TestParseRetryAfterMonotonicNow checks that a now read from time.Now,
// which carries a monotonic reading, gives the same answer as its wall time.
func TestParseRetryAfterMonotonicNow(t *testing.T) {
	n := time.Now()
	v := n.Add(10 * time.Second).UTC().Format(http.TimeFormat)
	d, ok := sturdy.ParseRetryAfter(v, n)
	// The date has whole seconds; n has a fraction, so the wait is (9s, 10s].
	if !ok || d <= 9*time.Second || d > 10*time.Second {
		t.Errorf("ParseRetryAfter(%q, now) = %v, %v; want (9s, 10s], true", v, d, ok)
	}
}

func TestParseResetDuration(t *testing.T) {
	checkWait(t, "ParseResetDuration", sturdy.ParseResetDuration, []waitCase{
		// Go durations, as OpenAI sends them
		{"6m0s", 6 * time.Minute, true},
		{"1s", time.Second, true},
		{"20ms", 20 * time.Millisecond, true},
		{"1.5s", 1500 * time.Millisecond, true},
		{"1m30.5s", 90*time.Second + 500*time.Millisecond, true},
		{"59m59s", 59*time.Minute + 59*time.Second, true},
		{"0s", 0, true},
		{" 7s ", 7 * time.Second, true},
		// a bare number is seconds
		{"2", 2 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"0", 0, true},
		// bounded
		{"1h", sturdy.MaxRetryAfter, true},
		{"2h", sturdy.MaxRetryAfter, true},
		{"3600", sturdy.MaxRetryAfter, true},
		{"2562047h", sturdy.MaxRetryAfter, true},    // just fits in a Duration
		{"2562048h", sturdy.MaxRetryAfter, true},    // just does not
		{"9999999999h", sturdy.MaxRetryAfter, true}, // overflows: still "wait as long as allowed"
		{"9999999999h30m", sturdy.MaxRetryAfter, true},
		{"1e300", sturdy.MaxRetryAfter, true},
		{"1e400", sturdy.MaxRetryAfter, true},
		// invalid
		{"-1s", 0, false},
		{"-2", 0, false},
		{"-9999999999h", 0, false},
		{"-1e400", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"1x", 0, false},
		{"1s1", 0, false},
		{"s", 0, false},
		{"1d", 0, false},
		{strings.Repeat("9", 64) + "h", 0, false}, // longer than any real header
	})
}

func TestRetryAfterFromHeader(t *testing.T) {
	date := now.Add(45 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name   string
		h      map[string]string
		want   time.Duration
		wantOK bool
	}{
		{"nil", nil, 0, false},
		{"no hint", map[string]string{"Content-Type": "application/json"}, 0, false},
		{"all invalid", map[string]string{
			sturdy.HeaderRetryAfterMs: "x", sturdy.HeaderRetryAfter: "y",
			sturdy.HeaderResetRequests: "z", sturdy.HeaderResetTokens: "w",
		}, 0, false},

		{"ms alone", map[string]string{sturdy.HeaderRetryAfterMs: "1500"}, 1500 * time.Millisecond, true},
		{"ms beats retry-after", map[string]string{
			sturdy.HeaderRetryAfterMs: "1500", sturdy.HeaderRetryAfter: "9",
		}, 1500 * time.Millisecond, true},
		{"ms beats retry-after even when longer", map[string]string{
			sturdy.HeaderRetryAfterMs: "9000", sturdy.HeaderRetryAfter: "1",
		}, 9 * time.Second, true},
		{"ms zero is a hint", map[string]string{
			sturdy.HeaderRetryAfterMs: "0", sturdy.HeaderRetryAfter: "9",
		}, 0, true},
		{"invalid ms falls through to retry-after", map[string]string{
			sturdy.HeaderRetryAfterMs: "-1", sturdy.HeaderRetryAfter: "9",
		}, 9 * time.Second, true},

		{"retry-after seconds", map[string]string{sturdy.HeaderRetryAfter: "20"}, 20 * time.Second, true},
		{"retry-after date", map[string]string{sturdy.HeaderRetryAfter: date}, 45 * time.Second, true},
		{"retry-after beats reset headers", map[string]string{
			sturdy.HeaderRetryAfter:  "20",
			sturdy.HeaderResetTokens: "1s", sturdy.HeaderRemainingTokens: "0",
		}, 20 * time.Second, true},
		{"invalid retry-after falls through to reset", map[string]string{
			sturdy.HeaderRetryAfter: "soon", sturdy.HeaderResetRequests: "3s",
		}, 3 * time.Second, true},

		{"reset requests alone", map[string]string{sturdy.HeaderResetRequests: "6m0s"}, 6 * time.Minute, true},
		{"reset tokens alone", map[string]string{sturdy.HeaderResetTokens: "20ms"}, 20 * time.Millisecond, true},
		{"neither exhausted: the shorter", map[string]string{
			sturdy.HeaderResetRequests: "6m0s", sturdy.HeaderResetTokens: "1.5s",
			sturdy.HeaderRemainingRequests: "99", sturdy.HeaderRemainingTokens: "1000",
		}, 1500 * time.Millisecond, true},
		{"no remaining headers: the shorter", map[string]string{
			sturdy.HeaderResetRequests: "2s", sturdy.HeaderResetTokens: "6m0s",
		}, 2 * time.Second, true},
		{"requests exhausted: its reset, though longer", map[string]string{
			sturdy.HeaderResetRequests: "6m0s", sturdy.HeaderResetTokens: "1s",
			sturdy.HeaderRemainingRequests: "0", sturdy.HeaderRemainingTokens: "5000",
		}, 6 * time.Minute, true},
		{"tokens exhausted: its reset, though longer", map[string]string{
			sturdy.HeaderResetRequests: "1s", sturdy.HeaderResetTokens: "30s",
			sturdy.HeaderRemainingRequests: "10", sturdy.HeaderRemainingTokens: "0",
		}, 30 * time.Second, true},
		{"remaining with spaces", map[string]string{
			sturdy.HeaderResetRequests: "1s", sturdy.HeaderResetTokens: "30s",
			sturdy.HeaderRemainingTokens: " 0 ",
		}, 30 * time.Second, true},
		{"both exhausted: the longer", map[string]string{
			sturdy.HeaderResetRequests: "2s", sturdy.HeaderResetTokens: "7s",
			sturdy.HeaderRemainingRequests: "0", sturdy.HeaderRemainingTokens: "0",
		}, 7 * time.Second, true},
		{"exhausted without a valid reset: the other reset", map[string]string{
			sturdy.HeaderResetRequests: "bogus", sturdy.HeaderResetTokens: "4s",
			sturdy.HeaderRemainingRequests: "0",
		}, 4 * time.Second, true},
		{"remaining alone is no hint", map[string]string{
			sturdy.HeaderRemainingRequests: "0", sturdy.HeaderRemainingTokens: "0",
		}, 0, false},
		{"reset bounded", map[string]string{sturdy.HeaderResetTokens: "9999999999h"}, sturdy.MaxRetryAfter, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			if tt.h != nil {
				h = http.Header{}
				for k, v := range tt.h {
					h.Set(k, v)
				}
			}
			d, ok := sturdy.RetryAfterFromHeader(h, now)
			if d != tt.want || ok != tt.wantOK {
				t.Errorf("RetryAfterFromHeader(%v) = %v, %v; want %v, %v", h, d, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestRetryAfterFromHeaderLowercase checks that headers set by lowercase
// name, as HTTP/2 and gRPC metadata carry them, are found once set through
// http.Header's canonicalizing methods.
func TestRetryAfterFromHeaderLowercase(t *testing.T) {
	h := http.Header{}
	h.Set("retry-after-ms", "250")
	h.Add("retry-after", "9")
	if d, ok := sturdy.RetryAfterFromHeader(h, now); d != 250*time.Millisecond || !ok {
		t.Errorf("RetryAfterFromHeader = %v, %v; want 250ms, true", d, ok)
	}
}
