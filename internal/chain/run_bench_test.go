package chain

import (
	"context"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/fakepick"
)

// onePool is fakepick.One with a pool size, as a balancer has: with one
// endpoint, the first attempt is the last, which the adaptive timeout
// does not bound.
type onePool struct{ fakepick.One }

func (p *onePool) Len() int { return 1 }

// BenchmarkRun is one call through a chain of one tier, as the pipeline
// builds it with its defaults (failover's, learned pacing on, empty
// telemetry hooks) but with a one-endpoint Picker that does nothing in
// place of the balancer, whose first attempt succeeds, and its
// Served.Release into memory the caller keeps (as an adapter's pooled
// call does). "timeout" gives the tier a fixed attempt timeout, so that
// the attempt has a context of its own.
//
//	go test -run '^$' -bench 'Run$' -benchmem -count 6 ./internal/chain
func BenchmarkRun(b *testing.B) {
	for _, bc := range []struct {
		name string
		fc   failover.Config
	}{{"defaults", failover.Config{}}, {"timeout", failover.Config{AttemptTimeout: time.Minute}}} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := New(&Config{
				Tiers:    []TierConfig{{Picker: &onePool{fakepick.One{EP: sturdy.Endpoint{Name: "a"}}}}},
				Failover: bc.fc, Names: testNames, Hooks: new(attempt.Hooks),
			})
			if err != nil {
				b.Fatal(err)
			}
			call := &Call[int]{Fn: func(context.Context, attempt.Info) (int, sturdy.Outcome) {
				return 1, sturdy.Outcome{Class: sturdy.Success}
			}}
			ctx := context.Background()
			s := new(Served) // the adapter's pooled memory
			b.ReportAllocs()
			for b.Loop() {
				v, err := Run(ctx, c, call, s)
				if err != nil || v != 1 {
					b.Fatal(v, err)
				}
				s.Release(-1)
			}
		})
	}
}
