package hedge

import (
	"context"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/attempt"
)

// Do runs fn and, if it has not answered after the policy's delay, runs it
// again on another endpoint from picker, up to the policy's MaxHedges; the
// first success wins and the others' contexts are cancelled. cleanup, if
// not nil, receives the value of every attempt that lost or failed but was
// not returned (close a losing response there). picker may be nil: each
// hedge then calls fn with a nil endpoint.
//
// fn's error is classified with sturdy.ClassOf. Do returns an error only
// when every attempt failed: a *sturdy.Error that lists them.
func Do[T any](ctx context.Context, p *Policy, picker sturdy.Picker, fn func(ctx context.Context, ep *sturdy.Endpoint) (T, error), cleanup func(T)) (T, error) {
	s := attempt.Spec{Picker: picker, Hedge: p.p, Op: "hedge"}
	v, w, err := attempt.RunErr(ctx, &s, fn, cleanup)
	w.Release()
	return v, err
}
