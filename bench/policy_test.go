package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"
	"github.com/failsafe-go/failsafe-go/retrypolicy"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/balancer"
	"github.com/sturdyai/sturdy/degrade"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/hedge"
)

// The policy benchmarks of issue 3, each beside its failsafe-go v0.9.8 peer
// in the same run. The wrapped call does nothing, so ns/op and allocs/op
// are the policy's own cost; BenchmarkPolicy/bare is the floor.

var errDown = errors.New("down")

func pool(b *testing.B) *balancer.Balancer {
	bal, err := balancer.New(balancer.Config{Endpoints: []sturdy.Endpoint{{Name: "a"}, {Name: "b"}, {Name: "c"}}})
	if err != nil {
		b.Fatal(err)
	}
	return bal
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func BenchmarkPolicy(b *testing.B) {
	ctx := context.Background()
	ok := func(context.Context, *sturdy.Endpoint) (int, error) { return 1, nil }

	b.Run("bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ok(ctx, nil)
		}
	})

	b.Run("sturdy/failover/success", func(b *testing.B) {
		p := must(failover.New(failover.Config{}))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := failover.Do(ctx, p, nil, ok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sturdy/failover/success+p2c", func(b *testing.B) {
		p, bal := must(failover.New(failover.Config{})), pool(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := failover.Do(ctx, p, bal, ok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sturdy/failover/one-failure", func(b *testing.B) {
		p := must(failover.New(failover.Config{BaseBackoff: -1, BudgetRatio: -1}))
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			if _, err := failover.Do(ctx, p, nil, func(context.Context, *sturdy.Endpoint) (int, error) {
				n++
				if n == 1 {
					return 0, sturdy.ErrUnavailable
				}
				return n, nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sturdy/hedge/not-fired", func(b *testing.B) {
		p := must(hedge.New(hedge.Config{Delay: time.Second}))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := hedge.Do(ctx, p, nil, ok, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sturdy/hedge/fired", func(b *testing.B) {
		p := must(hedge.New(hedge.Config{Delay: 20 * time.Microsecond, BudgetRatio: -1}))
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			_, err := hedge.Do(ctx, p, nil, func(ctx context.Context, _ *sturdy.Endpoint) (int, error) {
				if n++; n == 1 { // the first attempt stalls until cancelled
					<-ctx.Done()
					return 0, ctx.Err()
				}
				return 2, nil
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sturdy/degrade/primary-serves", func(b *testing.B) {
		c := must(degrade.New(degrade.Config{
			Tiers:    []degrade.Tier{{Name: "primary", Picker: pool(b)}, {Name: "fallback", Picker: pool(b)}},
			Failover: failover.Config{},
		}))
		fn := func(context.Context, degrade.Tier, *sturdy.Endpoint) (int, error) { return 1, nil }
		b.ReportAllocs()
		for b.Loop() {
			if _, err := degrade.Do(ctx, c, fn); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("failsafe/retry/success", func(b *testing.B) {
		ex := failsafe.With[int](retrypolicy.NewBuilder[int]().WithMaxAttempts(3).Build())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ex.Get(func() (int, error) { return 1, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe/retry/one-failure", func(b *testing.B) {
		ex := failsafe.With[int](retrypolicy.NewBuilder[int]().WithMaxAttempts(3).WithDelay(0).Build())
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			if _, err := ex.Get(func() (int, error) {
				n++
				if n == 1 {
					return 0, errDown
				}
				return n, nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe/hedge/not-fired", func(b *testing.B) {
		ex := failsafe.With[int](hedgepolicy.NewWithDelay[int](time.Second))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ex.Get(func() (int, error) { return 1, nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe/hedge/fired", func(b *testing.B) {
		ex := failsafe.With[int](hedgepolicy.NewWithDelay[int](20 * time.Microsecond))
		b.ReportAllocs()
		for b.Loop() {
			_, err := ex.GetWithExecution(func(e failsafe.Execution[int]) (int, error) {
				if e.Hedges() == 0 {
					<-e.Canceled()
					return 0, errDown
				}
				return 2, nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHedgePrimitives is the least a hedged call that does not hedge
// can cost in Go, for comparison with sturdy/hedge/not-fired: a
// cancellable context for the first attempt (cancelled at the end), a
// reused timer armed for the hedge and stopped, and the two clock reads a
// call makes (its start, and the attempt's latency).
func BenchmarkHedgePrimitives(b *testing.B) {
	ctx := context.Background()
	t := time.AfterFunc(time.Hour, func() {})
	t.Stop()
	var d time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		actx, cancel := context.WithCancelCause(ctx)
		t.Reset(time.Second)
		_ = actx
		t.Stop()
		cancel(nil)
		d += time.Since(start)
	}
	if d < 0 {
		b.Fatal(d)
	}
}
