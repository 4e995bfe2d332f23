package attempt

import (
	"context"
	"sync"
	"time"

	"github.com/sturdyai/sturdy"
)

// scratch is per-call memory reused across calls so that the tried set and
// the attempt records do not escape to the heap through the Picker
// interface.
type scratch struct {
	tried    [8]string
	attempts [8]sturdy.Attempt
}

var scratches = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratches.Get().(*scratch) }

func putScratch(sc *scratch) {
	clear(sc.tried[:])
	clear(sc.attempts[:])
	scratches.Put(sc)
}

// runSequential runs attempts one after another on the caller's goroutine.
// On success it fills *w; on failure it leaves it as it was.
func runSequential[T any](ctx context.Context, s *Spec, exclude []string, fn Func[T], cleanup func(T), start time.Time, w *Winner, store func() *ContextStore) (T, error) {
	var zero T
	// The tried set and the records are only needed once an attempt
	// fails: a call whose first attempt succeeds never takes a scratch.
	var sc *scratch
	defer func() {
		if sc != nil {
			putScratch(sc)
		}
	}()
	tried := exclude // read only until the scratch takes a copy
	var attempts []sturdy.Attempt
	maxN := s.maxAttempts()

	var last T // the latest failed attempt's value, owned until superseded
	haveLast := false

	for n := 1; ; n++ {
		kind := sturdy.First
		if n > 1 {
			kind = sturdy.Retry
		}
		ep, done, err := s.pick(ctx, tried)
		if err != nil && len(attempts) > 0 && s.Retry != nil {
			// Every endpoint has been tried. Go back to one whose failure
			// may pass (the backoff was waited); else, if one asked us to
			// come back soon enough, wait for it rather than give up.
			if kept, ok := s.untrySame(attempts, tried); ok {
				tried = kept
				ep, done, err = s.pick(ctx, tried)
			} else if wait, kept, ok := untryAfterWait(ctx, attempts, tried, s.retryAfterWait()); ok {
				tried = kept
				if Sleep(ctx, wait) == nil {
					ep, done, err = s.pick(ctx, tried)
				}
			}
		}
		if err != nil {
			if len(attempts) == 0 {
				return zero, err
			}
			return last, finalError(ctx, s.Op, attempts)
		}
		if haveLast {
			release(cleanup, last)
			last, haveLast = zero, false
		}
		a := Info{Endpoint: ep, Kind: kind, N: n, Tier: s.Tier, TierName: s.TierName}

		if n > 1 {
			start = time.Now() // the first attempt starts when the call does
		}
		actx := attemptCtxIn(store, ctx, false, s.attemptTimeout(n, maxN), start)
		a.Stored = store != nil && actx != nil
		hctx := s.start(ctxOr(actx, ctx), a)
		v, out := fn(hctx, a)
		classify(ctx, &out, start, actx.stopTimeout())
		s.observe(kind, out)

		if out.Class == sturdy.Success {
			if s.Hedge != nil {
				s.Hedge.Observe(out.Latency)
			}
			*w = Winner{Info: a, Outcome: out, done: done, actx: actx, hctx: hctx, hooks: s.Hooks}
			return v, nil
		}
		done(out)
		s.end(hctx, a, out, false)
		actx.cancel(causeLost)
		if sc == nil {
			sc = getScratch()
			tried, attempts = append(sc.tried[:0], tried...), sc.attempts[:0]
		}
		if ep != nil {
			tried = append(tried, ep.Name)
		}
		attempts = append(attempts, Record(a, out))
		last, haveLast = v, true

		if out.Class == sturdy.Canceled || s.Retry == nil || !s.Retry.Retryable(out.Class) || n >= maxN || CallerErr(ctx) != nil {
			return last, finalError(ctx, s.Op, attempts)
		}
		if !s.Retry.AllowRetry(time.Now()) {
			return last, finalError(ctx, s.Op, attempts)
		}
		if err := Sleep(ctx, s.Retry.Backoff(n)); err != nil {
			return last, finalError(ctx, s.Op, attempts)
		}
	}
}
