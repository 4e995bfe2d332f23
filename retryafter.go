package sturdy

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds every wait hint sturdy parses. A server that asks
// for a longer pause gets this one; the caller can still decide to wait
// less.
const MaxRetryAfter = time.Hour

// Header names that carry a server's wait hint.
const (
	HeaderRetryAfterMs       = "Retry-After-Ms"
	HeaderRetryAfter         = "Retry-After"
	HeaderResetRequests      = "X-Ratelimit-Reset-Requests"
	HeaderResetTokens        = "X-Ratelimit-Reset-Tokens"
	HeaderRemainingRequests  = "X-Ratelimit-Remaining-Requests"
	HeaderRemainingTokens    = "X-Ratelimit-Remaining-Tokens"
	MetadataRetryPushbackMs  = "grpc-retry-pushback-ms"
	maxRetryAfterHeaderBytes = 64
)

func clampWait(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	if d > MaxRetryAfter {
		return MaxRetryAfter
	}
	return d
}

// parseNonNegative parses a finite, non-negative number. A number too large
// for float64 ("1e400") comes back as +Inf, a request to wait as long as
// allowed, so that callers clamp it to MaxRetryAfter like any other long
// wait; the literals "Inf" and "NaN" are still rejected.
func parseNonNegative(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if errors.Is(err, strconv.ErrRange) && f > 0 {
		return math.Inf(1), true
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	return f, true
}

// overflowsDuration reports whether v is well-formed Go duration syntax
// too large for time.Duration ("9999999999h"): v is not negative and the
// same string with every run of digits replaced by "0" parses.
func overflowsDuration(v string) bool {
	if strings.HasPrefix(v, "-") {
		return false
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < '0' || c > '9' {
			b = append(b, c)
		} else if i == 0 || v[i-1] < '0' || v[i-1] > '9' {
			b = append(b, '0')
		}
	}
	_, err := time.ParseDuration(string(b))
	return err == nil
}

// ParseRetryAfterMs parses a count of milliseconds ("retry-after-ms",
// "grpc-retry-pushback-ms"). Fractions are accepted; the result is
// clamped to [0, MaxRetryAfter]. ok is false for anything that is not a
// finite, non-negative number.
func ParseRetryAfterMs(v string) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > maxRetryAfterHeaderBytes {
		return 0, false
	}
	f, ok := parseNonNegative(v)
	if !ok {
		return 0, false
	}
	if f >= float64(MaxRetryAfter/time.Millisecond) {
		return MaxRetryAfter, true
	}
	return clampWait(time.Duration(f * float64(time.Millisecond))), true
}

// ParseRetryAfter parses an HTTP Retry-After value (RFC 9110 §10.2.3):
// either delay-seconds or an HTTP date, which is turned into a wait from
// now. A date in the past gives zero. The result is clamped to
// [0, MaxRetryAfter].
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > maxRetryAfterHeaderBytes {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		// delay-seconds is 1*DIGIT; some servers send fractions, which we
		// accept rather than ignore.
		f, ok := parseNonNegative(v)
		if !ok {
			return 0, false
		}
		if f >= MaxRetryAfter.Seconds() {
			return MaxRetryAfter, true
		}
		return clampWait(time.Duration(f * float64(time.Second))), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return clampWait(t.Sub(now)), true
}

// ParseResetDuration parses the OpenAI-style x-ratelimit-reset-* value, a
// Go-style duration such as "6m0s", "1s", "20ms" or "1.5s". A bare number
// is taken as seconds. The result is clamped to [0, MaxRetryAfter].
func ParseResetDuration(v string) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > maxRetryAfterHeaderBytes {
		return 0, false
	}
	// A number ends in a digit or a point; "6m0s" and the like skip
	// ParseFloat, whose error for them allocates (BenchmarkParseHeaders in
	// package ratelimit reads an OpenAI response's two resets per call).
	if c := v[len(v)-1]; c >= '0' && c <= '9' || c == '.' {
		f, ok := parseNonNegative(v)
		if !ok {
			return 0, false
		}
		if f >= MaxRetryAfter.Seconds() {
			return MaxRetryAfter, true
		}
		return clampWait(time.Duration(f * float64(time.Second))), true
	}
	d, err := time.ParseDuration(v)
	if err != nil && overflowsDuration(v) {
		return MaxRetryAfter, true
	}
	if err != nil || d < 0 {
		return 0, false
	}
	return clampWait(d), true
}

// RetryAfterFromHeader reads a wait hint from response headers, in order
// of precision: retry-after-ms, then retry-after (seconds or HTTP date),
// then x-ratelimit-reset-requests / -tokens. Of the two reset headers it
// takes the one whose x-ratelimit-remaining-* says 0, and otherwise the
// shorter, since OpenAI sends them on every response and only an exhausted
// limit is a reason to wait. ok is false when no header holds a valid hint.
func RetryAfterFromHeader(h http.Header, now time.Time) (d time.Duration, ok bool) {
	if len(h) == 0 {
		return 0, false
	}
	if d, ok := ParseRetryAfterMs(h.Get(HeaderRetryAfterMs)); ok {
		return d, true
	}
	if d, ok := ParseRetryAfter(h.Get(HeaderRetryAfter), now); ok {
		return d, true
	}
	dr, okr := ParseResetDuration(h.Get(HeaderResetRequests))
	dt, okt := ParseResetDuration(h.Get(HeaderResetTokens))
	exhaustedR := okr && strings.TrimSpace(h.Get(HeaderRemainingRequests)) == "0"
	exhaustedT := okt && strings.TrimSpace(h.Get(HeaderRemainingTokens)) == "0"
	switch {
	case exhaustedR && exhaustedT:
		return max(dr, dt), true
	case exhaustedR:
		return dr, true
	case exhaustedT:
		return dt, true
	case okr && okt:
		return min(dr, dt), true
	case okr:
		return dr, true
	case okt:
		return dt, true
	}
	return 0, false
}
