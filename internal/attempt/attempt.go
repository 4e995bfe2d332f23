package attempt

import (
	"context"
	"errors"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/policy"
)

// Info describes one attempt.
type Info struct {
	Endpoint *sturdy.Endpoint // nil when the Spec has no Picker
	Kind     sturdy.AttemptKind
	N        int    // 1-based attempt number within the call
	Tier     int    // Spec.Tier: which tier of a chain the attempt serves
	TierName string // Spec.TierName
	// Stored says that the attempt's own context is in the memory that
	// RunExcluding's store gave right before it: the attempt runs
	// sequentially, on the loop's goroutine.
	Stored bool
}

// Retry is what the loop needs of a failover policy (failover.Policy).
type Retry interface {
	// MaxAttempts is the cap on attempts per call, the first included.
	MaxAttempts() int
	// AttemptTimeout bounds attempt n (1-based), until its function
	// returns; zero means none. last says that no attempt can follow this
	// one (the call's attempt cap, hedges included, is reached, or every
	// endpoint of the pool has been tried).
	AttemptTimeout(n int, last bool) time.Duration
	// Retryable reports whether a failure of class c may be retried.
	Retryable(c sturdy.Class) bool
	// Backoff is the wait before retry n (1-based), already jittered.
	Backoff(retry int) time.Duration
	// MaxRetryAfterWait caps how long the loop waits for a server's
	// Retry-After when no untried endpoint is left.
	MaxRetryAfterWait() time.Duration
	// SameEndpoint reports whether a retry may go back to an endpoint the
	// call already tried, once no untried one is left.
	SameEndpoint() bool
	// RetrySame reports whether the endpoint of failed attempt a may be
	// tried again by the same call.
	RetrySame(a sturdy.Attempt) bool
	// Deposit records a call in the retry budget.
	Deposit(now time.Time)
	// AllowRetry withdraws one retry from the budget, if it has one.
	AllowRetry(now time.Time) bool
	// Observe learns from an attempt of kind kind that ended with o. It
	// is called for every attempt except those that lost to another or
	// that the caller cancelled, from any of the call's goroutines.
	Observe(kind sturdy.AttemptKind, o sturdy.Outcome)
}

// Hedge is what the loop needs of a hedging policy (hedge.Policy).
type Hedge interface {
	// Delay is how long to wait for an attempt before starting another;
	// ok is false when the policy will not hedge this call (not enough
	// samples yet, or disabled).
	Delay() (d time.Duration, ok bool)
	// MaxHedges caps the hedges per call.
	MaxHedges() int
	// Deposit records a call in the hedge budget.
	Deposit(now time.Time)
	// AllowHedge withdraws one hedge from the budget, if it has one.
	AllowHedge(now time.Time) bool
	// Observe feeds the latency of a successful attempt to the delay.
	Observe(latency time.Duration)
}

// Hooks observe attempts for telemetry. Either field may be nil.
type Hooks struct {
	// Start runs before an attempt; the context it returns is the one the
	// attempt's function receives (a span may be started in it).
	Start func(ctx context.Context, a Info) context.Context
	// End runs once per attempt with its outcome and whether it won, with
	// the context Start returned. For the winner it runs at Release.
	End func(ctx context.Context, a Info, o sturdy.Outcome, won bool)
}

// Spec is what a call runs with. A Spec is read-only during Run and may be
// shared by concurrent calls; adapters build one per policy set and tier.
type Spec struct {
	Picker sturdy.Picker // nil: every attempt runs with a nil endpoint
	Retry  Retry         // nil: no retries
	Hedge  Hedge         // nil: no hedging
	Hooks  *Hooks        // nil: no hooks
	Op     string        // names the operation in errors ("failover", "hedge", "httpmw")
	Tier   int           // copied into every Info
	// TierName is copied into every Info and every attempt record.
	TierName string
	// LaterTier says that a later tier can take the call at once: once
	// every endpoint has been tried, the call neither waits for a
	// server's Retry-After nor goes back to an endpoint it tried.
	LaterTier bool
}

// Func runs one attempt and says how it ended. Latency may be left zero;
// the loop measures it. Func must return promptly once ctx is done.
type Func[T any] func(ctx context.Context, a Info) (T, sturdy.Outcome)

// ErrFunc is the form policies' users write: an attempt on an endpoint
// that returns an error, classified by sturdy.OutcomeOf.
type ErrFunc[T any] func(ctx context.Context, ep *sturdy.Endpoint) (T, error)

// Winner holds what the winning attempt still owns: its context, its
// balancer report and its End hook. Call Release exactly when the result
// is no longer in use (for an HTTP response, when its body is closed).
// Before Release, Outcome may be amended (for example when a stream that
// started well fails), and that is what the balancer and hooks learn.
type Winner struct {
	Info    Info
	Outcome sturdy.Outcome

	done  func(sturdy.Outcome)
	actx  *attemptContext // nil when the attempt ran in the caller's context
	hctx  context.Context
	hooks *Hooks
}

// Release reports the winner's outcome and releases its context. It is a
// no-op on a zero Winner and on every call after the first.
func (w *Winner) Release() {
	if w.done != nil {
		w.done(w.Outcome)
		w.done = nil
	}
	if w.hooks != nil && w.hooks.End != nil {
		w.hooks.End(w.hctx, w.Info, w.Outcome, true)
	}
	w.hooks = nil
	w.actx.cancel(causeRelease)
	w.actx = nil
}

var (
	errReleased = errors.New("sturdy: call released")
	errLost     = errors.New("sturdy: another attempt won")
	// ErrAttemptTimeout is the cause of an attempt's context when the
	// attempt ran past its timeout.
	ErrAttemptTimeout = policy.ErrAttemptTimeout
)

func noopDone(sturdy.Outcome) {}

// Run runs fn under the spec's policies and returns the first successful
// result with its Winner. cleanup, if not nil, releases every value the
// call discards (a losing hedge, a failure that was retried). On failure
// Run returns the deciding attempt's value (the caller owns it and must
// release it; it may be the zero value), a zero Winner, and a
// *sturdy.Error that lists every attempt.
//
// A failed attempt's context may already be cancelled when Run returns its
// value (hedged calls and per-attempt timeouts give attempts contexts of
// their own, released as each attempt settles): fn must return a failed
// value that stands on its own — an HTTP adapter reads an error body into
// memory before returning it.
func Run[T any](ctx context.Context, s *Spec, fn Func[T], cleanup func(T)) (T, Winner, error) {
	var w Winner
	v, err := RunExcluding(ctx, s, nil, fn, cleanup, time.Time{}, &w, nil)
	return v, w, err
}

// ContextStore is the memory of an attempt's own context, for an adapter
// to allocate with its own state of the attempt, in one allocation
// (RunExcluding's store). Its zero value is ready for use, once.
type ContextStore struct{ c attemptContext }

// RunExcluding is Run for a call that must not go to the endpoints
// exclude names (they count as tried from the start) and that started at
// now: the caller's clock reading when it has one (the first attempt
// starts then), zero to read the clock. On success it fills *w, the
// caller's memory, so that no frame copies the Winner on its way (the
// chain's BenchmarkRun); on failure it leaves *w as it was.
//
// store, if not nil, gives the memory of an attempt's own context (a
// zero ContextStore, used once) when one runs sequentially, right before
// fn runs that attempt: an adapter allocates it with what it allocates
// for the attempt anyway, and takes that in fn. Hedged attempts, which
// run at once, get their contexts as without it.
func RunExcluding[T any](ctx context.Context, s *Spec, exclude []string, fn Func[T], cleanup func(T), now time.Time, w *Winner, store func() *ContextStore) (T, error) {
	if now.IsZero() {
		now = time.Now()
	}
	if d, ok := s.begin(now); ok {
		v, win, err := runHedged(ctx, s, exclude, fn, nil, cleanup, d, now)
		if err == nil {
			*w = win
		}
		return v, err
	}
	return runSequential(ctx, s, exclude, fn, cleanup, now, w, store)
}

// begin counts the call with its policies' budgets and returns the hedge
// delay, if the call is to be hedged.
func (s *Spec) begin(now time.Time) (time.Duration, bool) {
	if s.Retry != nil {
		s.Retry.Deposit(now)
	}
	if s.Hedge == nil {
		return 0, false
	}
	s.Hedge.Deposit(now)
	if s.Hedge.MaxHedges() <= 0 {
		return 0, false
	}
	return s.Hedge.Delay()
}

// RunErr is Run for an ErrFunc, whose errors sturdy.OutcomeOf classifies.
// Unlike a closure adapting it to a Func, it costs no allocation when the
// call is hedged.
func RunErr[T any](ctx context.Context, s *Spec, fn ErrFunc[T], cleanup func(T)) (T, Winner, error) {
	now := time.Now()
	if d, ok := s.begin(now); ok {
		return runHedged(ctx, s, nil, nil, fn, cleanup, d, now)
	}
	var w Winner
	v, err := runSequential(ctx, s, nil, func(ctx context.Context, a Info) (T, sturdy.Outcome) {
		v, err := fn(ctx, a.Endpoint)
		return v, sturdy.OutcomeOf(err)
	}, cleanup, now, &w, nil)
	return v, w, err
}

// RunSequential is Run for a Spec without hedging (s.Hedge is ignored).
// Its attempts all run on the caller's goroutine, so fn does not escape:
// a caller that builds fn per call (a closure) pays no allocation for it.
func RunSequential[T any](ctx context.Context, s *Spec, fn Func[T], cleanup func(T)) (T, Winner, error) {
	now := time.Now()
	if s.Retry != nil {
		s.Retry.Deposit(now)
	}
	var w Winner
	v, err := runSequential(ctx, s, nil, fn, cleanup, now, &w, nil)
	return v, w, err
}

func (s *Spec) maxAttempts() int {
	n := 1
	if s.Retry != nil {
		n = max(s.Retry.MaxAttempts(), 1)
	}
	if s.Hedge != nil {
		n = max(n, 1+s.Hedge.MaxHedges())
	}
	return n
}

// retryAfterWait is how long the call may wait for a Retry-After.
func (s *Spec) retryAfterWait() time.Duration {
	if s.Retry == nil || s.LaterTier {
		return 0
	}
	return s.Retry.MaxRetryAfterWait()
}

// attemptTimeout is the bound of attempt n of a call allowed maxN.
func (s *Spec) attemptTimeout(n, maxN int) time.Duration {
	if s.Retry == nil {
		return 0
	}
	last := n >= maxN
	if p, ok := s.Picker.(interface{ Len() int }); ok && n >= p.Len() {
		// Every endpoint tried: nothing to fail over to. A retry on the
		// same endpoint (Retry.SameEndpoint) is for failures that may
		// pass; a slow answer cut there would likely be slow again.
		last = true
	}
	return s.Retry.AttemptTimeout(n, last)
}

// observe tells the retry policy how an attempt ended.
func (s *Spec) observe(kind sturdy.AttemptKind, o sturdy.Outcome) {
	if s.Retry != nil && o.Class != sturdy.Canceled {
		s.Retry.Observe(kind, o)
	}
}

func release[T any](cleanup func(T), v T) {
	if cleanup != nil {
		cleanup(v)
	}
}

func (s *Spec) pick(ctx context.Context, tried []string) (*sturdy.Endpoint, func(sturdy.Outcome), error) {
	if s.Picker == nil {
		return nil, noopDone, nil
	}
	return s.Picker.Pick(ctx, tried)
}

func (s *Spec) start(ctx context.Context, a Info) context.Context {
	if s.Hooks != nil && s.Hooks.Start != nil {
		return s.Hooks.Start(ctx, a)
	}
	return ctx
}

func (s *Spec) end(ctx context.Context, a Info, o sturdy.Outcome, won bool) {
	if s.Hooks != nil && s.Hooks.End != nil {
		s.Hooks.End(ctx, a, o, won)
	}
}

func endpointName(ep *sturdy.Endpoint) string {
	if ep == nil {
		return ""
	}
	return ep.Name
}

// classify settles an attempt's outcome, in place (a 72-byte Outcome
// passed and returned by value was a measurable part of
// BenchmarkRunExcluding): the loop's own timeout and the caller's context
// override what the function said. timedOut is what stopping the
// attempt's timeout reported.
func classify(parent context.Context, out *sturdy.Outcome, start time.Time, timedOut bool) {
	if out.Latency == 0 {
		out.Latency = time.Since(start)
	}
	if out.End.IsZero() {
		out.End = start.Add(out.Latency) // no second clock read
	}
	switch {
	case timedOut:
		out.Class = sturdy.Timeout
		out.Err = ErrAttemptTimeout
	case out.Class != sturdy.Success:
		if err := CallerErr(parent); err != nil {
			// The caller gave up (cancelled or past its own deadline,
			// even one its context has not noticed yet): not the
			// endpoint's fault, and nothing to retry.
			out.Class, out.Err = sturdy.Canceled, err
		} else if out.Err == nil {
			out.Err = out.Class.Err()
		}
	}
}

// attemptCtx gives an attempt its own context when it may need to be
// cancelled on its own (own: a hedge that may lose; or a per-attempt
// timeout), and arms the timeout, which cancels it with
// ErrAttemptTimeout. It returns nil, and the attempt runs in parent, when
// neither applies, or when parent's deadline comes first: then the
// caller's deadline bounds the attempt, and classify calls the attempt
// the caller's, as it would have once the caller's deadline passed. now
// is the attempt's start, or zero for now.
func attemptCtx(parent context.Context, own bool, timeout time.Duration, now time.Time) *attemptContext {
	return attemptCtxIn(nil, parent, own, timeout, now)
}

// attemptCtxIn is attemptCtx with the context's memory from store, if not
// nil (RunExcluding).
func attemptCtxIn(store func() *ContextStore, parent context.Context, own bool, timeout time.Duration, now time.Time) *attemptContext {
	if timeout > 0 {
		if dl, ok := parent.Deadline(); ok {
			if now.IsZero() {
				now = time.Now()
			}
			if !dl.After(now.Add(timeout)) {
				timeout = 0
			}
		}
	}
	if !own && timeout <= 0 {
		return nil
	}
	var c *attemptContext
	if store != nil {
		c = &store().c
		c.Context = parent
	} else {
		c = newAttemptContext(parent)
	}
	if timeout > 0 {
		c.startTimeout(now, timeout)
	}
	return c
}

// ctxOr is c as a context, or parent when c is nil.
func ctxOr(c *attemptContext, parent context.Context) context.Context {
	if c == nil {
		return parent
	}
	return c
}

// failure builds the error a failed call returns.
func failure(op string, attempts []sturdy.Attempt, final *sturdy.Attempt) error {
	e := &sturdy.Error{Op: op, Class: final.Class, Endpoint: final.Endpoint, Err: final.Err}
	for _, a := range attempts {
		e.RetryAfter = max(e.RetryAfter, a.RetryAfter)
	}
	if len(attempts) > 0 {
		e.Attempts = append([]sturdy.Attempt(nil), attempts...)
	}
	return e
}

// CallerErr is ctx.Err(), or context.DeadlineExceeded once ctx's deadline
// has passed even though its timer has not fired yet. A transport that reads
// the clock itself can see the deadline first: grpc-go turns a stream reset
// after the deadline into DEADLINE_EXCEEDED while ctx.Err() is still nil, and
// that attempt must still count as the caller's, not as the endpoint's
// timeout.
func CallerErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// finalError is failure for the last attempt, unless the caller's context
// ended the call, in which case the call is Canceled.
func finalError(ctx context.Context, op string, attempts []sturdy.Attempt) error {
	final := attempts[len(attempts)-1]
	if err := CallerErr(ctx); err != nil && final.Class != sturdy.Canceled {
		final.Class, final.Err = sturdy.Canceled, err
	}
	return failure(op, attempts, &final)
}

// Record is the attempt record of a that ended with o.
func Record(a Info, o sturdy.Outcome) sturdy.Attempt {
	return sturdy.Attempt{
		Endpoint:   endpointName(a.Endpoint),
		Tier:       a.TierName,
		N:          a.N,
		Kind:       a.Kind,
		Class:      o.Class,
		Latency:    o.Latency,
		RetryAfter: o.RetryAfter,
		Err:        o.Err,
	}
}

// untryAfterWait looks for endpoints that answered overloaded with a
// Retry-After short enough to wait for (within limit and the deadline),
// and returns the wait and the tried set without them.
func untryAfterWait(ctx context.Context, attempts []sturdy.Attempt, tried []string, limit time.Duration) (time.Duration, []string, bool) {
	if limit <= 0 {
		return 0, tried, false
	}
	if dl, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(dl))
	}
	wait := time.Duration(-1)
	for _, a := range attempts {
		if a.Class == sturdy.Overloaded && a.RetryAfter > 0 && a.RetryAfter <= limit {
			if wait < 0 || a.RetryAfter < wait {
				wait = a.RetryAfter
			}
		}
	}
	if wait < 0 {
		return 0, tried, false
	}
	kept := tried[:0]
	for _, name := range tried {
		cooled := false
		for _, a := range attempts {
			if a.Endpoint == name && a.Class == sturdy.Overloaded && a.RetryAfter > 0 && a.RetryAfter <= wait {
				cooled = true
				break
			}
		}
		if !cooled {
			kept = append(kept, name)
		}
	}
	return wait, kept, true
}

// untrySame returns tried without the endpoint the call may try again
// and reports whether it dropped it: once no untried endpoint is left, a
// retry may go back to the one endpoint the call could reach (a tier of
// one, or one whose others are all out) if its failures may pass
// (Retry.RetrySame). A call that tried two endpoints or more saw them
// all fail: that is an outage of the tier, which more retries would only
// load, so it does not go back. In an outage of a lone endpoint, the
// retry budget bounds the retries, as everywhere. tried is filtered in
// place.
func (s *Spec) untrySame(attempts []sturdy.Attempt, tried []string) ([]string, bool) {
	r := s.Retry
	if s.LaterTier || len(tried) == 0 || !r.SameEndpoint() {
		return tried, false
	}
	name := tried[0]
	for _, n := range tried[1:] {
		if n != name {
			return tried, false
		}
	}
	for _, a := range attempts {
		if a.Endpoint == name && !r.RetrySame(a) {
			return tried, false
		}
	}
	return tried[:0], true
}

// Sleep waits d or until ctx is done, and never past ctx's deadline: a wait
// that would end after the deadline is not started.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
