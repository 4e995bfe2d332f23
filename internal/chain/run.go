package chain

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
	Fn func(ctx context.Context, a attempt.Info) (T, sturdy.Outcome)
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
	// Once says the request cannot be replayed: the call makes one attempt
	// in all, with no retry, hedge or fallback after it went out.
	Once bool
	// NoHedge says the call may not hedge (a stream), whatever its tiers'
	// policies.
	NoHedge bool
	// Exclude names endpoints the call must not be sent to, as if it had
	// tried them already. Nil means none.
	Exclude []string
	// Store, if not nil, gives the memory of a sequential attempt's own
	// context, right before Fn runs it (attempt.RunExcluding): an adapter
	// allocates it with its own state of the attempt.
	Store func() *attempt.ContextStore
	// Start is when the call started, if the adapter read the clock then
	// (it shares the reading with its telemetry): the call's first attempt
	// starts then, unless the call waited for admission first. Zero means
	// Run reads the clock.
	Start time.Time
}

// Served is what a served call still holds. Call Release exactly once,
// when the result is no longer in use (for an HTTP response, when its
// body is closed).
type Served struct {
	Tier int // the index of the tier that served the call

	w      attempt.Winner
	permit ratelimit.Permit
	ledger *ledger // the endpoints' token permits; nil: none
	cancel context.CancelCauseFunc
}

// Attempt returns the winning attempt.
func (s *Served) Attempt() attempt.Info { return s.w.Info }

// SetOutcome amends the winner's outcome before Release, for a result
// that failed after it was handed over (a stream cut mid-way).
func (s *Served) SetOutcome(o sturdy.Outcome) { s.w.Outcome = o }

// Outcome returns the winner's outcome as it stands.
func (s *Served) Outcome() sturdy.Outcome { return s.w.Outcome }

// Release reports the winner's outcome, corrects the tier's token charge
// to tokens (negative: unknown, the estimate stands) and releases the
// winner's context. A second call does nothing.
func (s *Served) Release(tokens int64) {
	s.w.Release()
	s.permit.Done(tokens)
	s.permit = ratelimit.Permit{}
	if s.ledger != nil {
		s.ledger.settle("", tokens)
		s.ledger = nil
	}
	if s.cancel != nil {
		s.cancel(errReleased)
		s.cancel = nil
	}
}

var (
	errReleased = errors.New("sturdy: call released")
	errSlow     = errors.New("sturdy: tier missed its latency objective")
)

// run is one call's walk down the chain. Each tier is first admitted
// (admit), then served (serve); a failure decides where the call goes next
// (next), and a call that no later tier served may come back once to a
// tier that asked it to wait (comeBack).
type run[T any] struct {
	c    *Chain
	ctx  context.Context
	call *Call[T]
	end  int // one past the last tier the call may use

	last     T // the deciding attempt's value, owned until superseded
	haveLast bool
	lastErr  error
	attempts []sturdy.Attempt
	skipped  []error

	from   int // the tier the call is leaving, for OnFallback; -1: none
	reason sturdy.FallbackReason

	soonest  time.Duration // the shortest limiter wait seen; -1: none
	soonTier int

	// back is the first tier that gave up on a server's Retry-After because
	// a later tier could take the call at once, and backWait that wait.
	back     int
	ledger   *ledger // endpoints' token permits, when some endpoint has a token limit
	backWait time.Duration
	cameBack bool

	start time.Time // Call.Start until the first attempt loop takes it

	served *Served // filled by serve on success
}

// Run runs call through the chain: tier by tier from the primary,
// skipping tiers that cannot serve, running the attempt loop on the first
// that can, and falling back as the outcome says. On success it returns
// the result and fills *served with what the call still holds (release it
// with Served.Release): the caller's own memory, so that no frame copies
// it. On failure it leaves *served as it was and returns the deciding
// attempt's value (the caller owns it; it may be the zero value; its
// attempt's context may already be cancelled, so Fn must return failed
// values that stand on their own) and a *sturdy.Error that lists every
// attempt of every tier.
func Run[T any](ctx context.Context, c *Chain, call *Call[T], served *Served) (T, error) {
	r := run[T]{c: c, ctx: ctx, call: call, end: len(c.tiers), from: -1, soonest: -1, soonTier: -1, back: -1, start: call.Start, served: served}
	if c.pacing != nil && c.pacing.tokens.Load() && call.Tokens > 0 {
		r.ledger = &ledger{est: call.Tokens}
		r.ctx = context.WithValue(ctx, ledgerKey{}, r.ledger)
	}
	for i := 0; ; {
		for i < r.end {
			t, permit, ok := r.admit(i)
			if !ok {
				i++
				continue
			}
			v, err := r.serve(t, permit)
			if err == nil {
				return v, nil
			}
			if i = r.next(t, err); i < 0 {
				return r.fail(err)
			}
		}
		if i = r.comeBack(); i < 0 {
			return r.fail(r.lastErr)
		}
	}
}

// final reports whether tier i is the last the call may use.
func (r *run[T]) final(i int) bool { return i == r.end-1 }

// skip records that the call passed tier i by without an attempt.
func (r *run[T]) skip(i int, reason sturdy.FallbackReason, err error) {
	r.skipped = append(r.skipped, fmt.Errorf("%s: %w", r.c.tiers[i].Name, err))
	if r.from < 0 {
		r.from = i
	}
	r.reason = reason
}

// admit decides whether tier i takes the call now, and with which permit.
// The last tier is never skipped for its window or its health (its answer
// is better than none), and when every tier's limiter refused, the call
// may wait for the soonest (Config.MaxWait) and then ends on that tier.
func (r *run[T]) admit(i int) (*tier, ratelimit.Permit, bool) {
	t := r.c.tiers[i]
	final := r.final(i)
	if p := r.call.PromptTokens; p > 0 && t.ContextWindow > 0 && p > t.ContextWindow && !final {
		r.skip(i, sturdy.FallbackContextWindow, fmt.Errorf("prompt of ~%d tokens exceeds the context window of %d", p, t.ContextWindow))
		return nil, ratelimit.Permit{}, false
	}
	if t.ready != nil && !final && !t.ready() {
		r.skip(i, sturdy.FallbackUnhealthy, errors.New("no endpoint allowed by health"))
		return nil, ratelimit.Permit{}, false
	}
	if t.throttle != nil {
		if err := t.throttle.Allow(); err != nil {
			r.skip(i, sturdy.FallbackLimited, err)
			return nil, ratelimit.Permit{}, false
		}
	}
	p, err := t.allow(r.ctx, r.c.limiter, r.call.Tokens)
	if err == nil {
		return t, p, true
	}
	return r.limited(i, err)
}

// limited handles tier i's limiter refusing the call with err: the tier is
// skipped, unless every tier refused and the call may wait (MaxWait), in
// which case it waits for the soonest and ends on that tier.
func (r *run[T]) limited(i int, err error) (*tier, ratelimit.Permit, bool) {
	if le, ok := errors.AsType[*ratelimit.LimitedError](err); ok && (r.soonest < 0 || le.RetryAfter < r.soonest) {
		r.soonest, r.soonTier = le.RetryAfter, i
	}
	if !r.final(i) || r.haveLast || len(r.attempts) > 0 || r.c.maxWait <= 0 || r.soonTier < 0 {
		r.skip(i, sturdy.FallbackLimited, err)
		return nil, ratelimit.Permit{}, false
	}
	// Every tier refused admission: wait for the soonest, and end there.
	r.start = time.Time{} // the attempt starts after the wait
	st := r.c.tiers[r.soonTier]
	p, err := st.wait(r.ctx, r.c.limiter, r.call.Tokens, r.c.maxWait)
	if err != nil {
		r.skip(i, sturdy.FallbackLimited, err)
		return nil, ratelimit.Permit{}, false
	}
	r.end = r.soonTier + 1
	return st, p, true
}

// serve runs the call's attempt loop on t. On success the call is served
// (r.served); on failure serve keeps the attempt records and the deciding
// value for the chain's error.
func (r *run[T]) serve(t *tier, permit ratelimit.Permit) (T, error) {
	i := t.index
	if r.from >= 0 {
		r.c.fallbacks.Add(1)
		if r.c.onFallback != nil {
			r.c.onFallback(r.from, i, r.reason)
		}
	}
	ctx, cancel, timer := r.ctx, context.CancelCauseFunc(nil), (*time.Timer)(nil)
	if t.Timeout > 0 && !r.final(i) {
		ctx, cancel = context.WithCancelCause(r.ctx)
		timer = time.AfterFunc(t.Timeout, func() { cancel(errSlow) })
	}
	flags := callFlags{once: r.call.Once}
	if r.call.NoHedge {
		flags.flags |= noHedge
	}
	if !r.final(i) {
		flags.flags |= noWait
	}
	// Only the call's first attempt loop starts when the call did.
	start := r.start
	r.start = time.Time{}
	// On success the winner is written where Served keeps it: no frame
	// copies it (BenchmarkRun).
	v, err := attempt.RunExcluding(ctx, t.spec(&flags), r.call.Exclude, r.call.Fn, r.call.Cleanup, start, &r.served.w, r.call.Store)
	if err == nil {
		if timer != nil {
			// The objective is for the answer to start; the body may take
			// longer. The context lives until Release.
			timer.Stop()
		}
		if t.throttle != nil {
			t.throttle.Record(true)
		}
		t.served.Add(1)
		if r.haveLast {
			release(r.call.Cleanup, r.last)
		}
		sv := r.served
		sv.Tier, sv.permit, sv.ledger, sv.cancel = i, permit, r.ledger, cancel
		return v, nil
	}
	slow := cancel != nil && context.Cause(ctx) == errSlow && r.ctx.Err() == nil
	if timer != nil {
		timer.Stop()
		cancel(errReleased)
	}
	permit.Done(0) // the call produced no tokens here
	if r.haveLast {
		release(r.call.Cleanup, r.last)
	}
	r.last, r.haveLast, r.lastErr = v, true, err
	if slow {
		err = &slowError{err}
	}
	if t.throttle != nil {
		t.throttle.Observe(sturdy.Outcome{Class: sturdy.ClassOf(err)})
	}
	return v, err
}

// slowError marks a tier's failure as its missed latency objective.
type slowError struct{ err error }

func (e *slowError) Error() string { return e.err.Error() }
func (e *slowError) Unwrap() error { return e.err }

// next is where a call goes after tier t failed with err: the index of the
// next tier to try, or -1 when the call ends with err.
func (r *run[T]) next(t *tier, err error) int {
	se, _ := errors.AsType[*sturdy.Error](err)
	if se != nil {
		r.attempts = append(r.attempts, se.Attempts...)
	}
	class := sturdy.ClassOf(err)
	_, slow := err.(*slowError)
	if slow {
		class = sturdy.Timeout
	}
	if class == sturdy.Overloaded && se != nil && se.RetryAfter > 0 {
		r.retryAfter(t, se)
	}
	wentOut := se == nil || len(se.Attempts) > 0
	switch {
	case attempt.CallerErr(r.ctx) != nil, class == sturdy.Canceled, class == sturdy.Fatal:
		return -1
	case r.call.Once && wentOut:
		return -1
	case class == sturdy.TooLarge:
		named := namedWindow(err)
		t.learn(named)
		next := r.c.largerWindow(t.index, named)
		r.from, r.reason = t.index, sturdy.FallbackTooLarge
		return next
	case slow:
		r.from, r.reason = t.index, sturdy.FallbackSlow
	case !wentOut && errors.Is(err, ratelimit.ErrLimited):
		// Every endpoint was paced (learned capacity): a local refusal.
		r.from, r.reason = t.index, sturdy.FallbackLimited
	default:
		r.from, r.reason = t.index, sturdy.FallbackFailed
	}
	return t.index + 1
}

// retryAfter handles a tier whose attempts ended with a server's
// Retry-After (the longest is se.RetryAfter): the tier is paused for later
// calls, and when the call is falling back rather than waiting for it, the
// tier is noted for comeBack. With learned pacing, the tier is paused only
// when every one of its endpoints said to wait: the others are paced at
// their own learned rates, and each endpoint that said it cools down alone
// (its health cooldown and its learned rate's).
func (r *run[T]) retryAfter(t *tier, se *sturdy.Error) {
	d := se.RetryAfter
	if r.c.pacing == nil || t.allSaidWait(se.Attempts) {
		t.cool(r.c.limiter, d)
	}
	if r.back < 0 && !r.final(t.index) && !r.call.Once && d <= t.retry.MaxRetryAfterWait() {
		r.back, r.backWait = t.index, d
	}
}

// allSaidWait reports whether every endpoint of t is among those whose
// attempts were turned away with a Retry-After.
func (t *tier) allSaidWait(attempts []sturdy.Attempt) bool {
	l, ok := t.Picker.(interface{ Len() int })
	if !ok {
		return true
	}
	n := l.Len()
	seen := 0
	for i, a := range attempts {
		if a.Tier != t.Name || a.Class != sturdy.Overloaded || a.RetryAfter <= 0 {
			continue
		}
		dup := false
		for _, b := range attempts[:i] {
			if b.Endpoint == a.Endpoint && b.Tier == t.Name && b.Class == sturdy.Overloaded && b.RetryAfter > 0 {
				dup = true
				break
			}
		}
		if !dup {
			seen++
		}
	}
	return seen >= n
}

// comeBack is the one place that decides to wait for a server's
// Retry-After: when no later tier served the call, it comes back once to
// the first tier that fell back instead of waiting, after the wait, and
// ends there. It returns that tier's index, or -1 when the call is over.
func (r *run[T]) comeBack() int {
	if r.back < 0 || r.cameBack {
		return -1
	}
	r.cameBack = true
	if attempt.Sleep(r.ctx, r.backWait) != nil {
		return -1
	}
	r.end, r.from = r.back+1, -1 // going back to a better tier is no fallback
	return r.back
}

// fail ends a call that no tier served.
func (r *run[T]) fail(err error) (T, error) {
	r.c.failed.Add(1)
	if !r.haveLast {
		var zero T
		r.last = zero
	}
	if err == nil {
		// No tier made an attempt.
		e := &sturdy.Error{Op: r.c.op, Class: sturdy.Overloaded, Err: errors.Join(r.skipped...)}
		if r.soonest > 0 {
			e.RetryAfter = r.soonest
		}
		if allUnhealthy(r.skipped) {
			e.Class = sturdy.Unavailable
		}
		return r.last, e
	}
	if se, ok := err.(*slowError); ok {
		err = se.err
	}
	return r.last, r.c.failure(r.ctx, err, r.attempts, r.skipped)
}

// largerWindow returns the first tier after i whose context window is
// larger than tier i's, or unknown; -1 when none is. Tier i's window is
// its configured ContextWindow, else named (the window its answer named),
// else the one it learned; a later tier's is configured, else learned.
// When tier i's window is unknown, the next tier is taken: it may be
// larger.
func (c *Chain) largerWindow(i, named int) int {
	w := c.tiers[i].ContextWindow
	if w == 0 {
		w = named
	}
	if w == 0 {
		w = c.tiers[i].window()
	}
	for j := i + 1; j < len(c.tiers); j++ {
		if cw := c.tiers[j].window(); w == 0 || cw == 0 || cw > w {
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
	e := &sturdy.Error{Op: c.op, Class: sturdy.ClassOf(err), Err: err, Attempts: attempts}
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
