package attempt

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/sturdyai/sturdy"
)

// errAborted cancels the other attempts when one failed in a way that says
// the request itself is at fault (Fatal, TooLarge): every attempt would.
var errAborted = errors.New("sturdy: another attempt failed for good")

type result[T any] struct {
	v    T
	out  sturdy.Outcome
	info Info
	done func(sturdy.Outcome)
	actx *attemptContext
	hctx context.Context
	lost bool // another attempt won: release this one
}

// prepared is an attempt that has an endpoint and a context, not yet run.
type prepared struct {
	info Info
	done func(sturdy.Outcome)
	actx *attemptContext // with the attempt's timeout, if any
	hctx context.Context
}

// hedgedCall is the state of one hedged call.
//
// The first attempt runs on the caller's goroutine, and the hedge timer is
// a time.AfterFunc whose callback (fire) runs each hedge on the timer's own
// goroutine. A call whose first attempt answers before the delay therefore
// starts no goroutine and waits on no channel: it pays for a context and a
// timer. Once a hedge has started or the first attempt has failed, the
// caller's goroutine coordinates: results arrive on a channel, retries run
// on goroutines of their own.
//
// A call whose first attempt wins before the delay, outside a
// testing/synctest bubble, goes back to a pool with its stopped timer,
// so that the next call pays for neither (see recycle).
type hedgedCall[T any] struct {
	ctx     context.Context
	s       *Spec // points at spec, so that the caller's Spec does not escape
	spec    Spec
	fn      Func[T]
	efn     ErrFunc[T] // used instead of fn when set
	cleanup func(T)
	delay   time.Duration
	maxN    int
	sc      *scratch

	fires sync.WaitGroup // one count per armed timer and per running fire

	mu       sync.Mutex // guards what fire shares with the caller, below
	timer    *time.Timer
	armed    bool
	finished bool
	results  chan result[T]
	actxs    []*attemptContext  // by attempt number - 1; nil once settled
	actx0    [4]*attemptContext // actxs' first backing array
	tried    []string
	inN      int // attempts in flight, the inline one included
	started  int
	hedges   int
	winner   int  // N of the first attempt to succeed; 0 while none has
	inline   bool // the caller's goroutine is still running the first attempt
}

// callPools holds a sync.Pool of *hedgedCall[T] per T.
var callPools sync.Map // reflect.Type → *sync.Pool

func callPool[T any]() *sync.Pool {
	k := reflect.TypeFor[T]()
	if p, ok := callPools.Load(k); ok {
		return p.(*sync.Pool)
	}
	p, _ := callPools.LoadOrStore(k, new(sync.Pool))
	return p.(*sync.Pool)
}

// bubbled reports whether now was read inside a testing/synctest bubble,
// where time.Now has no monotonic reading. A timer made in a bubble
// belongs to it, and a timer made outside must not run a bubble's fake
// time: calls in a bubble neither take from nor give to the pool.
func bubbled(now time.Time) bool { return now == now.Round(0) }

// newHedgedCall returns a zeroed call, from pool if there is one (nil:
// the call may not be pooled).
func newHedgedCall[T any](pool *sync.Pool) *hedgedCall[T] {
	if pool != nil {
		if c, ok := pool.Get().(*hedgedCall[T]); ok {
			return c
		}
	}
	return new(hedgedCall[T])
}

// recycle returns a finished call to the pool when nothing can reach it
// any more: drain has waited for every fire (and finish stopped the
// timer), and no hedge or retry started (no goroutine holds c: each would
// have made c.results). The timer and its callback, bound to c, are kept
// for the next call.
func (c *hedgedCall[T]) recycle(pool *sync.Pool) {
	if pool == nil || c.results != nil {
		return
	}
	*c = hedgedCall[T]{timer: c.timer}
	pool.Put(c)
}

// runHedged runs a call with hedging.
func runHedged[T any](ctx context.Context, s *Spec, exclude []string, fn Func[T], efn ErrFunc[T], cleanup func(T), delay time.Duration, start time.Time) (T, Winner, error) {
	var zero T
	var pool *sync.Pool // none in a bubble
	if !bubbled(start) {
		pool = callPool[T]()
	}
	c := newHedgedCall[T](pool)
	c.ctx, c.spec, c.fn, c.efn, c.cleanup = ctx, *s, fn, efn, cleanup
	c.delay, c.maxN, c.sc = delay, s.maxAttempts(), getScratch()
	c.s = &c.spec
	s = c.s
	defer putScratch(c.sc)
	c.tried = append(c.sc.tried[:0], exclude...)
	c.actxs = c.actx0[:0]

	c.mu.Lock()
	p, err := c.prepare(sturdy.First)
	if err != nil {
		c.mu.Unlock()
		return zero, Winner{}, err
	}
	c.arm()
	c.inline = true
	c.mu.Unlock()

	first := c.exec(p, start)

	c.mu.Lock()
	c.inline = false
	c.inN--
	if first.out.Class == sturdy.Success && !first.lost {
		c.finish()
		c.mu.Unlock()
		c.drain()
		w := winnerOf(first, s.Hooks)
		c.recycle(pool)
		return first.v, w, nil
	}
	c.mu.Unlock()
	return c.coordinate(first)
}

func winnerOf[T any](r result[T], hooks *Hooks) Winner {
	return Winner{Info: r.info, Outcome: r.out, done: r.done, actx: r.actx, hctx: r.hctx, hooks: hooks}
}

// arm starts the hedge timer if another hedge is allowed. c.mu is held.
func (c *hedgedCall[T]) arm() {
	if c.armed || c.finished || c.hedges >= c.s.Hedge.MaxHedges() || c.started >= c.maxN {
		return
	}
	c.fires.Add(1)
	c.armed = true
	if c.timer == nil {
		c.timer = time.AfterFunc(c.delay, c.fire)
	} else {
		c.timer.Reset(c.delay)
	}
}

// fire starts a hedge when the delay has passed with an attempt still in
// flight, and runs it on the timer's goroutine.
func (c *hedgedCall[T]) fire() {
	defer c.fires.Done()
	c.mu.Lock()
	c.armed = false
	if c.finished || c.inN == 0 || c.started >= c.maxN || c.hedges >= c.s.Hedge.MaxHedges() {
		c.mu.Unlock()
		return
	}
	if CallerErr(c.ctx) != nil {
		c.mu.Unlock()
		return
	}
	if !c.s.Hedge.AllowHedge(time.Now()) {
		c.mu.Unlock()
		return
	}
	p, err := c.prepare(sturdy.Hedge)
	if err != nil {
		c.mu.Unlock()
		return
	}
	c.hedges++
	c.arm()
	c.mu.Unlock()
	for {
		r := c.exec(p, time.Now())
		next, ok := c.afterFailure(r)
		c.results <- r
		if !ok {
			return
		}
		p = next
	}
}

// afterFailure acts on a failed hedge while the caller's goroutine is busy
// with the first attempt and so cannot: a failure that says the request
// itself is at fault ends the other attempts; a failure worth retrying
// starts the retry here, at once (another attempt is still in flight, so
// there is no backoff). It reports whether this goroutine should run the
// returned attempt next.
func (c *hedgedCall[T]) afterFailure(r result[T]) (prepared, bool) {
	if r.out.Class == sturdy.Success || r.lost || r.out.Class == sturdy.Canceled {
		return prepared{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished || c.winner != 0 || c.ctx.Err() != nil {
		return prepared{}, false
	}
	if !r.out.Class.RetryElsewhere() {
		for _, actx := range c.actxs {
			actx.cancel(causeAborted)
		}
		return prepared{}, false
	}
	s := c.s
	if !c.inline || s.Retry == nil || !s.Retry.Retryable(r.out.Class) || c.started >= c.maxN || !s.Retry.AllowRetry(time.Now()) {
		return prepared{}, false
	}
	p, err := c.prepare(sturdy.Retry)
	if err != nil {
		return prepared{}, false
	}
	return p, true
}

// prepare picks an endpoint and gives the attempt its context. c.mu is
// held.
func (c *hedgedCall[T]) prepare(kind sturdy.AttemptKind) (prepared, error) {
	ep, done, err := c.s.pick(c.ctx, c.tried)
	if err != nil {
		return prepared{}, err
	}
	if c.results == nil && kind != sturdy.First {
		c.results = make(chan result[T], c.maxN)
	}
	c.started++
	a := Info{Endpoint: ep, Kind: kind, N: c.started, Tier: c.s.Tier, TierName: c.s.TierName}
	if ep != nil {
		c.tried = append(c.tried, ep.Name)
	}
	actx := attemptCtx(c.ctx, true, c.s.attemptTimeout(c.started, c.maxN), time.Time{})
	c.actxs = append(c.actxs, actx)
	c.inN++
	return prepared{info: a, done: done, actx: actx, hctx: c.s.start(actx, a)}, nil
}

// exec runs a prepared attempt and settles its outcome. The first attempt
// to succeed wins: it cancels the others at once (so that an attempt
// running on the caller's goroutine returns) and keeps its own context
// for Release. Any later success, and any attempt cut short by the win,
// is marked lost.
func (c *hedgedCall[T]) exec(p prepared, start time.Time) result[T] {
	var v T
	var out sturdy.Outcome
	if c.efn != nil {
		var err error
		v, err = c.efn(p.hctx, p.info.Endpoint)
		out = sturdy.OutcomeOf(err)
	} else {
		v, out = c.fn(p.hctx, p.info)
	}
	classify(c.ctx, &out, start, p.actx.stopTimeout())
	r := result[T]{v: v, out: out, info: p.info, done: p.done, actx: p.actx, hctx: p.hctx}
	if out.Class == sturdy.Success {
		c.s.Hedge.Observe(out.Latency)
		c.mu.Lock()
		if c.winner == 0 {
			c.winner = p.info.N
			c.actxs[p.info.N-1] = nil // the winner's context lives on until Release
			for _, actx := range c.actxs {
				actx.cancel(causeLost)
			}
		} else {
			r.lost = true
		}
		c.mu.Unlock()
	} else if cause := p.actx.causeOf(); cause == errLost || cause == errAborted {
		r.lost = true
	}
	if r.lost {
		r.out = sturdy.Outcome{Class: sturdy.Canceled, Latency: r.out.Latency, End: r.out.End, Err: errLost}
	} else {
		c.s.observe(p.info.Kind, r.out)
	}
	return r
}

// finish stops new hedges. c.mu is held.
func (c *hedgedCall[T]) finish() {
	c.finished = true
	if c.armed && c.timer.Stop() {
		c.armed = false
		c.fires.Done()
	}
}

// coordinate runs the rest of a call whose first attempt failed: it waits
// for hedges in flight, starts retries, and settles the call.
func (c *hedgedCall[T]) coordinate(first result[T]) (T, Winner, error) {
	var zero T
	s := c.s
	attempts := c.sc.attempts[:0]
	var last T
	haveLast := false
	var retryT *time.Timer
	var retryC <-chan time.Time
	defer func() {
		if retryT != nil {
			retryT.Stop()
		}
	}()
	fail := func() (T, Winner, error) {
		c.mu.Lock()
		c.finish()
		c.mu.Unlock()
		c.drain()
		return last, Winner{}, finalError(c.ctx, s.Op, attempts)
	}

	// failed handles a failed attempt; it reports whether the call is over.
	failed := func(r result[T]) bool {
		c.settle(r, false)
		attempts = append(attempts, Record(r.info, r.out))
		if haveLast {
			release(c.cleanup, last)
		}
		last, haveLast = r.v, true
		if r.out.Class == sturdy.Canceled || CallerErr(c.ctx) != nil {
			return true
		}
		c.mu.Lock()
		inN, started := c.inN, c.started
		c.mu.Unlock()
		if s.Retry == nil || !s.Retry.Retryable(r.out.Class) {
			// Without retries of our own, a hedge still running may win;
			// a failure that says the request itself is at fault ends it.
			return !(r.out.Class.RetryElsewhere() && inN > 0)
		}
		if retryC == nil && started < c.maxN && s.Retry.AllowRetry(time.Now()) {
			d := s.Retry.Backoff(len(attempts))
			if dl, ok := c.ctx.Deadline(); ok && time.Until(dl) < d {
				return inN == 0
			}
			if retryT == nil {
				retryT = time.NewTimer(d)
			} else {
				retryT.Reset(d)
			}
			retryC = retryT.C
			return false
		}
		return inN == 0 && retryC == nil
	}

	if first.lost {
		c.settle(first, true)
	} else if failed(first) {
		return fail()
	}
	for {
		c.mu.Lock()
		results := c.results
		c.mu.Unlock()
		select {
		case r := <-results:
			c.mu.Lock()
			c.inN--
			if r.lost {
				c.mu.Unlock()
				c.settle(r, true)
				continue
			}
			if r.out.Class == sturdy.Success {
				c.finish()
				c.mu.Unlock()
				if haveLast {
					release(c.cleanup, last)
				}
				c.drain()
				return r.v, winnerOf(r, s.Hooks), nil
			}
			c.mu.Unlock()
			if failed(r) {
				return fail()
			}

		case <-retryC:
			retryC = nil
			c.mu.Lock()
			p, err := c.prepare(sturdy.Retry)
			if err != nil && c.inN == 0 {
				// No untried endpoint left and none in flight: go back to
				// one whose failure may pass.
				var ok bool
				if c.tried, ok = s.untrySame(attempts, c.tried); ok {
					p, err = c.prepare(sturdy.Retry)
				}
			}
			if err == nil {
				c.arm()
			}
			inN := c.inN
			c.mu.Unlock()
			if err != nil {
				if inN > 0 {
					continue
				}
				if wait, kept, ok := untryAfterWait(c.ctx, attempts, c.tried, s.retryAfterWait()); ok {
					c.mu.Lock()
					c.tried = kept
					c.mu.Unlock()
					retryT.Reset(wait)
					retryC = retryT.C
					continue
				}
				return fail()
			}
			go func() { c.results <- c.exec(p, time.Now()) }()

		case <-c.ctx.Done():
			c.mu.Lock()
			c.finish()
			c.mu.Unlock()
			c.drain()
			if len(attempts) == 0 {
				return zero, Winner{}, &sturdy.Error{Op: s.Op, Class: sturdy.Canceled, Err: c.ctx.Err()}
			}
			return last, Winner{}, finalError(c.ctx, s.Op, attempts)
		}
	}
}

// settle reports a losing or failed attempt and releases what it holds.
func (c *hedgedCall[T]) settle(r result[T], cleanup bool) {
	r.done(r.out)
	c.s.end(r.hctx, r.info, r.out, false)
	r.actx.cancel(causeLost)
	if cleanup {
		release(c.cleanup, r.v)
	}
}

// drain cancels every attempt still in flight, waits for each, and waits
// for the hedge timer's goroutine, so that nothing outlives the call. The
// call must be finished.
func (c *hedgedCall[T]) drain() {
	c.mu.Lock()
	for _, actx := range c.actxs {
		actx.cancel(causeLost)
	}
	n, results := c.inN, c.results
	c.inN = 0
	c.mu.Unlock()
	for range n {
		c.settle(<-results, true)
	}
	c.fires.Wait()
}
