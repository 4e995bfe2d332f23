package ratelimit

import (
	"errors"
	"strconv"
	"time"

	"github.com/sturdyai/sturdy"
)

// ErrLimited is matched (errors.Is) by every refusal from a Limiter or a
// Throttle. Refusals also match sturdy.ErrOverloaded, so sturdy.ClassOf
// classifies them as sturdy.Overloaded and the failover and degrade
// policies treat a locally refused call like a server's 429.
var ErrLimited = errors.New("ratelimit: limited")

// Cause says which limit refused a call.
type Cause string

// The reasons a call can be refused.
const (
	CauseRequests Cause = "requests" // the requests-per-second bucket is empty
	CauseTokens   Cause = "tokens"   // the tokens-per-minute bucket is empty or in debt
	CauseCooldown Cause = "cooldown" // the server asked for a pause (Retry-After)
	CauseThrottle Cause = "throttle" // adaptive throttling rejected the call locally
)

// LimitedError is the error of a refused admission. It says which key was
// refused, why, and when to come back. It matches ErrLimited and
// sturdy.ErrOverloaded with errors.Is.
type LimitedError struct {
	Key   string // the refused key; empty for a Throttle
	Cause Cause  // which limit refused
	// RetryAfter is how long from the refusal until the call would have
	// been admitted, had nothing else been admitted meanwhile. Zero when
	// unknown (throttle refusals are probabilistic).
	RetryAfter time.Duration
	// At is the instant RetryAfter points to; zero when RetryAfter is.
	At time.Time
}

// Error formats `ratelimit: key "k" limited by tokens (retry after 1.5s)`.
func (e *LimitedError) Error() string {
	b := make([]byte, 0, 64+len(e.Key))
	b = append(b, "ratelimit: "...)
	if e.Key != "" {
		b = append(b, "key "...)
		b = strconv.AppendQuote(b, e.Key)
		b = append(b, ' ')
	}
	b = append(b, "limited by "...)
	b = append(b, e.Cause...)
	if e.RetryAfter > 0 {
		b = append(b, " (retry after "...)
		b = append(b, e.RetryAfter.String()...)
		b = append(b, ')')
	}
	return string(b)
}

// Is reports whether target is ErrLimited or sturdy.ErrOverloaded.
func (e *LimitedError) Is(target error) bool {
	return target == ErrLimited || target == sturdy.ErrOverloaded
}

func limited(key string, r Cause, wait time.Duration, now time.Time) *LimitedError {
	return &LimitedError{Key: key, Cause: r, RetryAfter: wait, At: now.Add(wait)}
}
