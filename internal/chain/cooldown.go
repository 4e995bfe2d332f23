package chain

import (
	"context"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/ratelimit"
)

// A tier's admission goes through the chain's limiter, keyed by the
// tier's name, unless the tier is local: no limit of its own, no default
// limit, no LimitFunc and no shared Store. Such a tier can only be paused
// by its servers' Retry-After, and the pause is kept here.

// allow admits a call to t now, or refuses it with a *ratelimit.LimitedError.
func (t *tier) allow(ctx context.Context, l *ratelimit.Limiter, tokens int64) (ratelimit.Permit, error) {
	if !t.local {
		return l.Allow(ctx, t.Name, tokens)
	}
	until := t.coolUntil.Load()
	if until == 0 {
		return ratelimit.Permit{}, nil
	}
	now := time.Now().UnixNano()
	if now >= until {
		t.coolUntil.CompareAndSwap(until, 0)
		return ratelimit.Permit{}, nil
	}
	return ratelimit.Permit{}, t.cooling(now, until)
}

// wait admits a call to t, waiting up to maxWait (and never past ctx's
// deadline) for the limiter or the pause to let it in.
func (t *tier) wait(ctx context.Context, l *ratelimit.Limiter, tokens int64, maxWait time.Duration) (ratelimit.Permit, error) {
	if !t.local {
		return l.Wait(ctx, t.Name, tokens, maxWait)
	}
	until := t.coolUntil.Load()
	now := time.Now().UnixNano()
	if d := time.Duration(until - now); until != 0 && d > 0 {
		if d > maxWait {
			return ratelimit.Permit{}, t.cooling(now, until)
		}
		if err := attempt.Sleep(ctx, d); err != nil {
			return ratelimit.Permit{}, err
		}
	}
	return ratelimit.Permit{}, nil
}

// cool pauses t for d, as a server's Retry-After asked; it never shortens
// a pause in force.
func (t *tier) cool(l *ratelimit.Limiter, d time.Duration) {
	if !t.local {
		l.Observe(t.Name, sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: d})
		return
	}
	until := time.Now().Add(d).UnixNano()
	for {
		cur := t.coolUntil.Load()
		if cur >= until || t.coolUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func (t *tier) cooling(now, until int64) error {
	return &ratelimit.LimitedError{Key: t.Name, Cause: ratelimit.CauseCooldown,
		RetryAfter: time.Duration(until - now), At: time.Unix(0, until)}
}
