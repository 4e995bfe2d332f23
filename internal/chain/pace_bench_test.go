package chain

import (
	"context"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/ratelimit"
)

// BenchmarkLearningEnd is what learned capacity adds to the end of an
// attempt that succeeded (learningHooks' End, no inner hooks), on one
// goroutine, with a tier of two endpoints taking turns.
func BenchmarkLearningEnd(b *testing.B) {
	p, err := newPacing(ratelimit.Config{}, nil, nil, [][]string{{"a", "b"}})
	if err != nil {
		b.Fatal(err)
	}
	h := learningHooks(p, nil)
	eps := []*sturdy.Endpoint{{Name: "a"}, {Name: "b"}}
	ctx := context.Background()
	o := sturdy.Outcome{Class: sturdy.Success, Latency: 20 * time.Millisecond, End: time.Now()}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		o.End = o.End.Add(time.Microsecond)
		h.End(ctx, attempt.Info{Endpoint: eps[i&1]}, o, true)
	}
}
