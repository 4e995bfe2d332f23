package ratelimit

import (
	"context"
	"time"
)

// Store holds the per-key state a Limiter admits against: two buckets
// (requests and tokens) and a cooldown deadline. The default is an
// in-process store; an implementation backed by a shared database makes the
// limits fleet-wide.
//
// The operations are shaped so that each one is a single atomic script
// over at most three values per key, e.g. a Redis Lua script keeping each
// bucket as a GCRA "theoretical arrival time" and the cooldown as a
// deadline, all with an expiry. lim always arrives with its defaults filled
// in (Burst ≥ 1 when RequestsPerSecond > 0, TokenBurst ≥ 1 when
// TokensPerMinute > 0); a zero rate means that bucket is unlimited and has
// no state. now is the caller's clock; a shared store may use its own
// instead so that a fleet agrees on time.
//
// Implementations must be safe for concurrent use. Errors from Take are
// returned to the caller of Limiter.Allow or Limiter.Wait; errors from
// Adjust and SetCooldown have nowhere to go (they run from Permit.Done,
// Permit.Cancel and Limiter.Observe) and are dropped, so a store that can
// fail should report them itself.
type Store interface {
	// Take charges one request and tokens tokens to key at now, unless
	// that would need a wait longer than maxWait (because a bucket is
	// short or the key is cooling down). It then returns OK with the wait
	// the caller must observe before acting (zero: act now), or not OK with
	// the wait that would have been needed, charging nothing. Cause names
	// the limit that sets the wait.
	Take(ctx context.Context, key string, lim Limit, tokens int64, now time.Time, maxWait time.Duration) (Decision, error)
	// Adjust changes what key has been charged by requests and tokens:
	// negative amounts give back (never beyond a full bucket), positive
	// amounts take more without any check, leaving the bucket in debt that
	// delays later admissions.
	Adjust(ctx context.Context, key string, lim Limit, requests, tokens int64, now time.Time) error
	// SetCooldown refuses key until until. It never shortens a cooldown
	// already set, so out-of-order reports are harmless.
	SetCooldown(ctx context.Context, key string, until time.Time) error
}

// Decision is the result of Store.Take.
type Decision struct {
	// OK reports whether the request and tokens were charged.
	OK bool
	// Wait is how long from now the caller must wait before acting (OK),
	// or would have had to wait (not OK). Zero means now.
	Wait time.Duration
	// Cause names the limit that sets Wait; empty when Wait is zero.
	Cause Cause
}
