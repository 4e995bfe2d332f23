package balancer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

func BenchmarkPickDone(b *testing.B) {
	for _, p := range allPolicies {
		for _, n := range []int{3, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%v/%d", p, n), func(b *testing.B) {
				benchPickDone(b, Config{Endpoints: benchPool(n), Policy: p})
			})
		}
	}
	for _, p := range []Policy{P2CPeakEWMA, RoundRobin} {
		for _, n := range []int{3, 1000} {
			b.Run(fmt.Sprintf("%v+health/%d", p, n), func(b *testing.B) {
				benchPickDone(b, Config{Endpoints: benchPool(n), Policy: p, Health: newTracker(b)})
			})
		}
	}
}

func benchPool(n int) []sturdy.Endpoint {
	eps := make([]sturdy.Endpoint, n)
	for i := range eps {
		eps[i] = sturdy.Endpoint{Name: fmt.Sprint("ep-", i), Weight: 1 + i%3}
	}
	return eps
}

func benchPickDone(b *testing.B, cfg Config) {
	bal := mustNew(b, cfg)
	ctx := context.Background()
	o := sturdy.Outcome{Class: sturdy.Success, Latency: 20 * time.Millisecond}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, done, err := bal.Pick(ctx, nil)
			if err != nil {
				b.Error(err)
				return
			}
			done(o)
		}
	})
}
