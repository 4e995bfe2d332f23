package sturdy

import "context"

// Picker chooses the endpoint of the next attempt of a call, among those
// the call has not tried (exclude holds their names). *balancer.Balancer
// implements it. done must be called exactly once with the attempt's
// outcome; it feeds the picker's load and latency estimates and the
// endpoint's health. Pick must not block.
type Picker interface {
	Pick(ctx context.Context, exclude []string) (ep *Endpoint, done func(Outcome), err error)
}
