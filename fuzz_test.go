package sturdy_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

// The fuzz targets pin the parsers' contract for any input a server could
// send: no panic, a wait within [0, MaxRetryAfter], and a zero wait
// whenever ok is false. Seeds live in testdata/fuzz/<FuzzName>/ and below.

func checkBounds(t *testing.T, name, in string, d time.Duration, ok bool) {
	t.Helper()
	if d < 0 || d > sturdy.MaxRetryAfter {
		t.Errorf("%s(%q) = %v, outside [0, %v]", name, in, d, sturdy.MaxRetryAfter)
	}
	if !ok && d != 0 {
		t.Errorf("%s(%q) = %v, false; want 0 when not ok", name, in, d)
	}
}

var numberSeeds = []string{
	"", "0", "-0", "1", "1500", "12.5", " 250 ", "-1", "NaN", "Inf", "-Inf",
	"1e300", "1e400", "-1e400", "1e-400", "3600000", "0x1p10", "1_000",
	"9999999999999999999999", "abc", "\x00", "1.5s",
}

func FuzzParseRetryAfterMs(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := sturdy.ParseRetryAfterMs(v)
		checkBounds(t, "ParseRetryAfterMs", v, d, ok)
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s, int64(0))
	}
	for _, s := range []string{
		"Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT",
		"Sun Nov  6 08:49:37 1994",
		"Fri, 31 Dec 9999 23:59:59 GMT",
		"Mon, 01 Jan 0001 00:00:00 GMT",
	} {
		f.Add(s, int64(784111777)) // the RFC's own date
		f.Add(s, int64(-1<<62))    // a now far in the past
		f.Add(s, int64(1<<62))     // and far in the future
	}
	f.Fuzz(func(t *testing.T, v string, nowUnix int64) {
		now := time.Unix(nowUnix, 0).UTC()
		d, ok := sturdy.ParseRetryAfter(v, now)
		checkBounds(t, "ParseRetryAfter", v, d, ok)
	})
}

func FuzzParseResetDuration(f *testing.F) {
	for _, s := range numberSeeds {
		f.Add(s)
	}
	for _, s := range []string{
		"6m0s", "1s", "20ms", "1.5s", "1m30.5s", "2562048h", "9999999999h",
		"-9999999999h", "+9999999999h", "1µs", "1μs", "0.00000000000000000001h",
		"1h1h1h1h1h1h1h1h1h1h", "9223372036854775807ns", "9223372036854775808ns",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := sturdy.ParseResetDuration(v)
		checkBounds(t, "ParseResetDuration", v, d, ok)
	})
}

func FuzzRetryAfterFromHeader(f *testing.F) {
	f.Add("1500", "", "", "", "", "")
	f.Add("", "120", "", "", "", "")
	f.Add("", "Sun, 06 Nov 1994 08:49:37 GMT", "", "", "", "")
	f.Add("", "", "6m0s", "1.5s", "0", "10")
	f.Add("", "", "6m0s", "1.5s", "10", "0")
	f.Add("", "", "2s", "7s", "0", "0")
	f.Add("x", "y", "9999999999h", "-1s", "0", " 0 ")
	f.Fuzz(func(t *testing.T, ms, ra, resetReq, resetTok, remReq, remTok string) {
		h := http.Header{}
		for k, v := range map[string]string{
			sturdy.HeaderRetryAfterMs:      ms,
			sturdy.HeaderRetryAfter:        ra,
			sturdy.HeaderResetRequests:     resetReq,
			sturdy.HeaderResetTokens:       resetTok,
			sturdy.HeaderRemainingRequests: remReq,
			sturdy.HeaderRemainingTokens:   remTok,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		d, ok := sturdy.RetryAfterFromHeader(h, now)
		checkBounds(t, "RetryAfterFromHeader", ms+"|"+ra+"|"+resetReq+"|"+resetTok, d, ok)

		// Precedence: a valid retry-after-ms decides alone.
		if dm, okm := sturdy.ParseRetryAfterMs(ms); okm && (d != dm || !ok) {
			t.Errorf("retry-after-ms %q parses to %v but the header gives %v, %v", ms, dm, d, ok)
		}
		// A valid hint anywhere means ok.
		_, okm := sturdy.ParseRetryAfterMs(ms)
		_, okr := sturdy.ParseRetryAfter(ra, now)
		_, okq := sturdy.ParseResetDuration(resetReq)
		_, okt := sturdy.ParseResetDuration(resetTok)
		if want := okm || okr || okq || okt; ok != want {
			t.Errorf("ok = %v, want %v", ok, want)
		}
	})
}
