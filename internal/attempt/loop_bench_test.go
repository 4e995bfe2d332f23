package attempt

import (
	"context"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
	"github.com/sturdyai/sturdy/internal/policy"
)

// BenchmarkRunExcluding is one call as the chain makes it for httpmw: a
// retry policy with a fixed attempt timeout (the attempt gets its own
// context, armed in the sweeper), empty hooks, a first attempt that
// succeeds, and the winner's Release. "Done+WithCancel" is the attempt as
// net/http and grpc-go run it: they wait on Done and derive a context
// from the attempt's.
//
//	go test -run '^$' -bench RunExcluding -benchmem -count 6 ./internal/attempt
func BenchmarkRunExcluding(b *testing.B) {
	r, err := policy.NewRetry(policy.RetryConfig{AttemptTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	s := &Spec{Picker: &fakepick.One{EP: sturdy.Endpoint{Name: "a"}}, Retry: r, Hooks: &Hooks{}, Op: "bench", TierName: "t"}
	ok := func(context.Context, Info) (int, sturdy.Outcome) { return 1, sturdy.Outcome{Class: sturdy.Success} }
	withCancel := func(ctx context.Context, _ Info) (int, sturdy.Outcome) {
		_ = ctx.Done()
		c, cancel := context.WithCancel(ctx)
		_ = c.Err()
		cancel()
		return 1, sturdy.Outcome{Class: sturdy.Success}
	}
	for _, bc := range []struct {
		name string
		fn   Func[int]
	}{{"skeleton", ok}, {"Done+WithCancel", withCancel}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := new(Winner) // the chain's memory
			b.ReportAllocs()
			for b.Loop() {
				v, err := RunExcluding(ctx, s, nil, bc.fn, nil, time.Time{}, w, nil)
				if err != nil || v != 1 {
					b.Fatal(v, err)
				}
				w.Release()
			}
		})
	}
}
