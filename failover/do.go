package failover

import (
	"context"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/attempt"
)

// Do runs fn under the policy: on a failure whose class the policy
// retries, it runs fn again on an endpoint from picker that the call has
// not tried. picker may be nil, in which case fn gets a nil endpoint and a
// retry simply calls it again.
//
// fn's error is classified with sturdy.ClassOf (return a *sturdy.Error to
// say the class and Retry-After yourself). On failure Do returns a
// *sturdy.Error listing every attempt; the value of the last attempt is
// returned with it.
func Do[T any](ctx context.Context, p *Policy, picker sturdy.Picker, fn func(ctx context.Context, ep *sturdy.Endpoint) (T, error)) (T, error) {
	s := attempt.Spec{Picker: picker, Retry: p.p, Op: "failover"}
	v, w, err := attempt.RunSequential(ctx, &s, func(ctx context.Context, a attempt.Info) (T, sturdy.Outcome) {
		v, err := fn(ctx, a.Endpoint)
		return v, sturdy.OutcomeOf(err)
	}, nil)
	w.Release()
	return v, err
}
