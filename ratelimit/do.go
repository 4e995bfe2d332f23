package ratelimit

import (
	"context"
	"time"

	"github.com/sturdyai/sturdy"
)

// Do runs fn once it is admitted for key, as Wait admits it (estTokens,
// maxWait and ctx's deadline bound the wait). fn returns its result, the
// tokens the call really used (negative: unknown, keep the estimate) and
// its error. Do corrects the estimate with the real count and observes
// the error's class: an error carrying sturdy.Overloaded and a RetryAfter
// (a *sturdy.Error) pauses the key. A refused call returns a *LimitedError
// without running fn.
func Do[T any](ctx context.Context, l *Limiter, key string, estTokens int64, maxWait time.Duration,
	fn func(context.Context) (T, int64, error)) (T, error) {
	p, err := l.Wait(ctx, key, estTokens, maxWait)
	if err != nil {
		var zero T
		return zero, err
	}
	v, used, err := fn(ctx)
	p.Done(used)
	if err != nil {
		l.Observe(key, sturdy.OutcomeOf(err))
	}
	return v, err
}
