package attempt

import (
	"context"
	"time"

	"github.com/sturdyai/sturdy"
)

type result[T any] struct {
	v      T
	out    sturdy.Outcome
	info   Info
	done   func(sturdy.Outcome)
	cancel context.CancelCauseFunc
	hctx   context.Context
}

// hedgedCall is the coordinator's state for one hedged call. Only the
// caller's goroutine touches it; attempts talk to it through results.
type hedgedCall[T any] struct {
	ctx     context.Context
	s       *Spec
	fn      Func[T]
	cleanup func(T)
	results chan result[T]
	cancels []context.CancelCauseFunc // of attempts in flight, by slot
	sc      *scratch
	tried   []string
	inN     int // attempts in flight
	started int
	hedges  int
}

// runHedged runs each attempt on its own goroutine and starts a hedge
// when the delay passes without a result.
func runHedged[T any](ctx context.Context, s *Spec, fn Func[T], cleanup func(T), delay time.Duration) (T, Winner, error) {
	var zero T
	maxN := s.maxAttempts()
	c := &hedgedCall[T]{
		ctx:     ctx,
		s:       s,
		fn:      fn,
		cleanup: cleanup,
		results: make(chan result[T], maxN),
		cancels: make([]context.CancelCauseFunc, 0, maxN),
		sc:      getScratch(),
	}
	defer putScratch(c.sc)
	c.tried = c.sc.tried[:0]
	attempts := c.sc.attempts[:0]

	if err := c.launch(sturdy.First); err != nil {
		return zero, Winner{}, err
	}
	// Timers are not pooled: a timer belongs to the synctest bubble (or
	// not) that made it, and tests run this loop inside bubbles.
	hedgeT := time.NewTimer(delay)
	defer hedgeT.Stop()
	var retryT *time.Timer
	var retryC <-chan time.Time
	defer func() {
		if retryT != nil {
			retryT.Stop()
		}
	}()

	var last T
	haveLast := false
	fail := func() (T, Winner, error) {
		c.drain()
		return last, Winner{}, finalError(ctx, s.Op, attempts)
	}

	for {
		select {
		case r := <-c.results:
			c.inN--
			if r.out.Class == sturdy.Success {
				if haveLast {
					release(cleanup, last)
				}
				c.cancels[r.info.N-1] = nil // the winner's context lives on until Release
				c.drain()                   // cancel and collect the losers
				return r.v, Winner{Info: r.info, Outcome: r.out, done: r.done, cancel: r.cancel, hctx: r.hctx, hooks: s.Hooks}, nil
			}
			c.finish(r, false)
			attempts = append(attempts, record(r.info, r.out))
			if haveLast {
				release(cleanup, last)
			}
			last, haveLast = r.v, true
			if r.out.Class == sturdy.Canceled || ctx.Err() != nil {
				return fail()
			}
			if s.Retry == nil || !s.Retry.Retryable(r.out.Class) {
				if r.out.Class.RetryElsewhere() && c.inN > 0 {
					continue // no retries of our own, but a hedge is still running
				}
				return fail() // the request itself is at fault: every attempt would fail
			}
			if retryC == nil && c.started < maxN && s.Retry.AllowRetry(time.Now()) {
				d := s.Retry.Backoff(len(attempts))
				if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
					if c.inN == 0 {
						return fail()
					}
					continue
				}
				if retryT == nil {
					retryT = time.NewTimer(d)
				} else {
					retryT.Reset(d)
				}
				retryC = retryT.C
				continue
			}
			if c.inN == 0 && retryC == nil {
				return fail()
			}

		case <-retryC:
			retryC = nil
			err := c.launch(sturdy.Retry)
			if err != nil && c.inN == 0 {
				if wait, kept, ok := untryAfterWait(ctx, attempts, c.tried, s.Retry.MaxRetryAfterWait()); ok {
					c.tried = kept
					retryT.Reset(wait)
					retryC = retryT.C
					continue
				}
				return fail()
			}
			if err == nil && c.hedges < s.Hedge.MaxHedges() {
				hedgeT.Reset(delay)
			}

		case <-hedgeT.C:
			if c.inN == 0 || c.started >= maxN || c.hedges >= s.Hedge.MaxHedges() {
				continue
			}
			if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
				continue
			}
			if !s.Hedge.AllowHedge(time.Now()) {
				continue
			}
			if c.launch(sturdy.Hedge) == nil {
				c.hedges++
				if c.hedges < s.Hedge.MaxHedges() {
					hedgeT.Reset(delay)
				}
			}

		case <-ctx.Done():
			if c.inN == 0 && len(attempts) == 0 {
				return zero, Winner{}, &sturdy.Error{Op: s.Op, Class: sturdy.Canceled, Err: ctx.Err()}
			}
			c.drain()
			if len(attempts) == 0 {
				return zero, Winner{}, &sturdy.Error{Op: s.Op, Class: sturdy.Canceled, Err: ctx.Err()}
			}
			return last, Winner{}, finalError(ctx, s.Op, attempts)
		}
	}
}

// launch picks an endpoint and starts an attempt on it.
func (c *hedgedCall[T]) launch(kind sturdy.AttemptKind) error {
	ep, done, err := c.s.pick(c.ctx, c.tried)
	if err != nil {
		return err
	}
	c.started++
	a := Info{Endpoint: ep, Kind: kind, N: c.started, Tier: c.s.Tier}
	if ep != nil {
		c.tried = append(c.tried, ep.Name)
	}
	actx, cancel, timer := attemptCtx(c.ctx, true, c.s.attemptTimeout())
	c.cancels = append(c.cancels, cancel)
	c.inN++
	hctx := c.s.start(actx, a)
	go func() {
		start := time.Now()
		v, out := c.fn(hctx, a)
		out = classify(c.ctx, actx, out, time.Since(start), stopTimer(timer))
		if out.Class == sturdy.Success && c.s.Hedge != nil {
			c.s.Hedge.Observe(out.Latency)
		}
		c.results <- result[T]{v: v, out: out, info: a, done: done, cancel: cancel, hctx: hctx}
	}()
	return nil
}

// finish reports a losing or failed attempt and releases what it holds.
func (c *hedgedCall[T]) finish(r result[T], cleanup bool) {
	r.done(r.out)
	c.s.end(r.hctx, r.info, r.out, false)
	r.cancel(errLost)
	if cleanup {
		release(c.cleanup, r.v)
	}
}

// drain cancels every attempt still in flight and waits for each, so that
// no goroutine outlives the call.
func (c *hedgedCall[T]) drain() {
	if c.inN == 0 {
		return
	}
	for _, cancel := range c.cancels {
		if cancel != nil {
			cancel(errLost)
		}
	}
	for ; c.inN > 0; c.inN-- {
		r := <-c.results
		if r.out.Class == sturdy.Success {
			r.out = sturdy.Outcome{Class: sturdy.Canceled, Latency: r.out.Latency, Err: errLost}
		}
		c.finish(r, true)
	}
}
