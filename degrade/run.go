package degrade

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/ratelimit"
)

// Call is one call through a Chain, as an adapter describes it.
type Call[T any] struct {
	// Fn runs one attempt on a.Endpoint of tier a.Tier and says how it
	// ended. It must return promptly once ctx is done.
	Fn func(ctx context.Context, a Attempt) (T, sturdy.Outcome)
	// Cleanup releases a value the call discards (a losing hedge, a
	// failure that was retried or that a later tier replaced). Nil means
	// nothing to release.
	Cleanup func(T)
	// Tokens is the call's estimated token count, charged to each tier's
	// token limit before the call and corrected by Served.Release.
	Tokens int64
	// PromptTokens is the prompt's estimated size; tiers whose
	// ContextWindow is smaller are skipped. Zero means unknown.
	PromptTokens int
	// Once says the request cannot be replayed (its body cannot be read
	// twice): the call makes one attempt in all, with no retry, hedge or
	// fallback after it went out.
	Once bool
}

// Served is what a served call still holds. Call Release exactly once,
// when the result is no longer in use (for an HTTP response, when its
// body is closed).
type Served struct {
	// Tier is the index of the tier that served the call.
	Tier int
	// Attempt is the winning attempt.
	Attempt Attempt

	w      attempt.Winner
	permit ratelimit.Permit
	cancel context.CancelCauseFunc
}

// SetOutcome amends the winner's outcome before Release, for a result that
// failed after it was handed over (a stream cut mid-way): the balancer and
// health learn that instead.
func (s *Served) SetOutcome(o sturdy.Outcome) { s.w.Outcome = o }

// Outcome returns the winner's outcome as it stands.
func (s *Served) Outcome() sturdy.Outcome { return s.w.Outcome }

// Release reports the winner's outcome, corrects the tier's token charge to
// tokens (negative: unknown, the estimate stands) and releases the
// winner's context. A second call does nothing.
func (s *Served) Release(tokens int64) {
	s.w.Release()
	s.permit.Done(tokens)
	s.permit = ratelimit.Permit{}
	if s.cancel != nil {
		s.cancel(errReleased)
		s.cancel = nil
	}
}

var (
	errReleased = errors.New("degrade: call released")
	errSlow     = errors.New("degrade: tier missed its latency objective")
)

// Run runs call through the chain: tier by tier from the primary, skipping
// tiers that cannot serve, running the attempt loop on the first that can,
// and falling back as the outcome says. On success it returns the result
// and what the call still holds (release it with Served.Release). On
// failure it returns the deciding attempt's value (the caller owns it; it
// may be the zero value; its attempt's context may already be cancelled,
// so Call.Fn must return failed values that stand on their own) and a
// *sturdy.Error that lists every attempt of every tier.
func Run[T any](ctx context.Context, c *Chain, call *Call[T]) (T, Served, error) {
	var (
		zero     T
		last     T
		haveLast bool
		attempts []sturdy.Attempt
		skipped  []error
		lastErr  error
		from     = -1 // the tier the call is leaving, for OnFallback
		reason   Reason
		soonest  time.Duration = -1 // the shortest limiter wait seen
		soonTier               = -1
		// back is the first tier that gave up on a server's Retry-After
		// because a later tier could take the call now, and backWait that
		// Retry-After: if no later tier serves, the call comes back to it
		// once, after the wait.
		back     = -1
		backWait time.Duration
		cameBack bool
	)
	n := len(c.tiers)
	i := 0
	for {
		for ; i < n; i++ {
			t := c.tiers[i]
			final := i == n-1
			skip := func(r Reason, err error) {
				skipped = append(skipped, fmt.Errorf("%s: %w", t.Name, err))
				if from < 0 {
					from = i
				}
				reason = r
			}
			if call.PromptTokens > 0 && t.ContextWindow > 0 && call.PromptTokens > t.ContextWindow && !final {
				skip(ReasonContextWindow, fmt.Errorf("prompt of ~%d tokens exceeds the context window of %d", call.PromptTokens, t.ContextWindow))
				continue
			}
			if t.ready != nil && !final && !t.ready() {
				skip(ReasonUnhealthy, errors.New("no endpoint allowed by health"))
				continue
			}
			var permit ratelimit.Permit
			if t.Limiter != nil {
				p, err := t.Limiter.Allow(ctx, t.key, call.Tokens)
				if err != nil {
					if le, ok := errors.AsType[*ratelimit.LimitedError](err); ok && (soonest < 0 || le.RetryAfter < soonest) {
						soonest, soonTier = le.RetryAfter, i
					}
					if !final || haveLast || len(attempts) > 0 || c.maxWait <= 0 || soonTier < 0 {
						skip(ReasonLimited, err)
						continue
					}
					// Every tier refused admission: wait for the soonest.
					st := c.tiers[soonTier]
					p, err = st.Limiter.Wait(ctx, st.key, call.Tokens, c.maxWait)
					if err != nil {
						skip(ReasonLimited, err)
						continue
					}
					t, i = st, soonTier
					n = i + 1 // after waiting, the call ends on this tier
				}
				permit = p
			}
			if from >= 0 && c.onFallback != nil {
				c.onFallback(Fallback{From: from, To: i, Reason: reason})
			}
			if from >= 0 {
				c.fallbacks.Add(1)
			}

			tctx, cancel, timer := ctx, context.CancelCauseFunc(nil), (*time.Timer)(nil)
			if t.Timeout > 0 && !final {
				tctx, cancel = context.WithCancelCause(ctx)
				timer = time.AfterFunc(t.Timeout, func() { cancel(errSlow) })
			}
			spec := &t.spec
			switch {
			case call.Once:
				spec = &t.single
			case i < n-1:
				spec = &t.fast
			}
			v, w, err := attempt.Run(tctx, spec, call.Fn, call.Cleanup)
			if err == nil {
				if timer != nil {
					// The objective is for the answer to start; the body may
					// take longer. The context lives until Release.
					timer.Stop()
				}
				t.served.Add(1)
				if haveLast {
					release(call.Cleanup, last)
				}
				return v, Served{Tier: i, Attempt: w.Info, w: w, permit: permit, cancel: cancel}, nil
			}
			slow := cancel != nil && context.Cause(tctx) == errSlow && ctx.Err() == nil
			if timer != nil {
				timer.Stop()
				cancel(errReleased)
			}
			permit.Done(0) // the call produced no tokens here

			se, _ := errors.AsType[*sturdy.Error](err)
			if se != nil {
				attempts = append(attempts, se.Attempts...)
			}
			if haveLast {
				release(call.Cleanup, last)
			}
			last, haveLast, lastErr = v, true, err
			class := sturdy.ClassOf(err)
			if slow {
				class = sturdy.Timeout
			}
			if class == sturdy.Overloaded && se != nil && se.RetryAfter > 0 {
				if t.Limiter != nil {
					// Every attempt in the tier was turned away with a wait:
					// pause the tier so later calls skip it until then.
					t.Limiter.Observe(t.key, sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: se.RetryAfter})
				}
				if spec == &t.fast && back < 0 && t.spec.Retry != nil && se.RetryAfter <= t.spec.Retry.MaxRetryAfterWait() {
					back, backWait = i, se.RetryAfter
				}
			}
			wentOut := se == nil || len(se.Attempts) > 0
			switch {
			case attempt.CallerErr(ctx) != nil, class == sturdy.Canceled, class == sturdy.Fatal:
				c.failed.Add(1)
				return last, Served{}, c.failure(ctx, err, attempts, skipped)
			case call.Once && wentOut:
				c.failed.Add(1)
				return last, Served{}, c.failure(ctx, err, attempts, skipped)
			case class == sturdy.TooLarge:
				next := c.largerWindow(i)
				if next < 0 {
					c.failed.Add(1)
					return last, Served{}, c.failure(ctx, err, attempts, skipped)
				}
				from, reason = i, ReasonTooLarge
				i = next - 1
			case slow:
				from, reason = i, ReasonSlow
			default:
				from, reason = i, ReasonFailed
			}
		}
		if back < 0 || cameBack {
			break
		}
		// No later tier took the call: wait for the Retry-After of the
		// tier that gave up on it, and end the call there.
		cameBack = true
		if attempt.Sleep(ctx, backWait) != nil {
			break
		}
		i, n, from = back, back+1, -1 // going back to a better tier is no fallback
	}
	c.failed.Add(1)
	if !haveLast {
		last = zero
	}
	if lastErr == nil {
		// No tier made an attempt.
		e := &sturdy.Error{Op: "degrade", Class: sturdy.Overloaded, Err: errors.Join(skipped...)}
		if soonest > 0 {
			e.RetryAfter = soonest
		}
		if allUnhealthy(skipped) {
			e.Class = sturdy.Unavailable
		}
		return last, Served{}, e
	}
	return last, Served{}, c.failure(ctx, lastErr, attempts, skipped)
}

// largerWindow returns the first tier after i with a larger context
// window than tier i's, or -1.
func (c *Chain) largerWindow(i int) int {
	w := c.tiers[i].ContextWindow
	for j := i + 1; j < len(c.tiers); j++ {
		if cw := c.tiers[j].ContextWindow; w > 0 && cw > w || w == 0 && cw > 0 {
			return j
		}
	}
	return -1
}

func allUnhealthy(skipped []error) bool {
	for _, e := range skipped {
		if errors.Is(e, ratelimit.ErrLimited) {
			return false
		}
	}
	return len(skipped) > 0
}

// failure folds the attempts of every tier into one error whose class is
// the deciding tier's.
func (c *Chain) failure(ctx context.Context, err error, attempts []sturdy.Attempt, skipped []error) error {
	e := &sturdy.Error{Op: "degrade", Class: sturdy.ClassOf(err), Err: err, Attempts: attempts}
	if se, ok := errors.AsType[*sturdy.Error](err); ok {
		e.Endpoint, e.Err = se.Endpoint, se.Err
		for _, a := range attempts {
			e.RetryAfter = max(e.RetryAfter, a.RetryAfter)
		}
	}
	if err := attempt.CallerErr(ctx); err != nil {
		e.Class, e.Err = sturdy.Canceled, err
	}
	if len(skipped) > 0 {
		e.Err = errors.Join(append([]error{e.Err}, skipped...)...)
	}
	return e
}

func release[T any](cleanup func(T), v T) {
	if cleanup != nil {
		cleanup(v)
	}
}

// Do runs fn through the chain on its own: fn gets the tier and endpoint
// of each attempt, and its error is classified with sturdy.ClassOf.
func Do[T any](ctx context.Context, c *Chain, fn func(ctx context.Context, tier Tier, ep *sturdy.Endpoint) (T, error)) (T, error) {
	call := Call[T]{Fn: func(ctx context.Context, a Attempt) (T, sturdy.Outcome) {
		v, err := fn(ctx, c.tiers[a.Tier].Tier, a.Endpoint)
		return v, sturdy.OutcomeOf(err)
	}}
	v, s, err := Run(ctx, c, &call)
	s.Release(-1)
	return v, err
}
