package balancer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

func BenchmarkPickDone(b *testing.B) {
	benchPickDoneCases(b, benchPickDone)
}

// BenchmarkPickDoneSerial is BenchmarkPickDone on one goroutine: the cost
// of a pick itself, without other cores contending for what it writes.
func BenchmarkPickDoneSerial(b *testing.B) {
	benchPickDoneCases(b, benchPickDoneSerial)
}

// benchPickDoneCases runs bench over every policy and pool size, and over
// the variants that take other paths: health, a call that has tried one
// endpoint, and weights whose cycle is too long for WeightedRoundRobin's
// table.
func benchPickDoneCases(b *testing.B, bench func(*testing.B, Config, ...string)) {
	for _, p := range allPolicies {
		for _, n := range []int{3, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%v/%d", p, n), func(b *testing.B) {
				bench(b, Config{Endpoints: benchPool(n), Policy: p})
			})
		}
	}
	for _, p := range []Policy{P2CPeakEWMA, RoundRobin, WeightedRoundRobin} {
		for _, n := range []int{3, 1000} {
			b.Run(fmt.Sprintf("%v+health/%d", p, n), func(b *testing.B) {
				bench(b, Config{Endpoints: benchPool(n), Policy: p, Health: newTracker(b)})
			})
		}
	}
	for _, p := range []Policy{RoundRobin, WeightedRoundRobin} {
		for _, n := range []int{3, 1000} {
			b.Run(fmt.Sprintf("%v+exclude/%d", p, n), func(b *testing.B) {
				// The heaviest endpoint of benchPool, as a failover's retry
				// would exclude the endpoint that most calls go to first.
				bench(b, Config{Endpoints: benchPool(n), Policy: p}, "ep-2")
			})
		}
	}
	for _, n := range []int{3, 1000} {
		b.Run(fmt.Sprintf("%v+long/%d", WeightedRoundRobin, n), func(b *testing.B) {
			bench(b, Config{Endpoints: benchLongPool(n), Policy: WeightedRoundRobin})
		})
	}
}

// BenchmarkPickDoneClock is BenchmarkPickDone for a caller that leaves
// Outcome.End zero, so that done reads the clock.
func BenchmarkPickDoneClock(b *testing.B) {
	for _, n := range []int{3, 10, 100, 1000} {
		b.Run(fmt.Sprintf("%v/%d", P2CPeakEWMA, n), func(b *testing.B) {
			bal := mustNew(b, Config{Endpoints: benchPool(n)})
			o := sturdy.Outcome{Class: sturdy.Success, Latency: 20 * time.Millisecond}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, _ := bal.Pick(context.Background(), nil)
					done(o)
				}
			})
		})
	}
}

func benchPool(n int) []sturdy.Endpoint {
	eps := make([]sturdy.Endpoint, n)
	for i := range eps {
		eps[i] = sturdy.Endpoint{Name: fmt.Sprint("ep-", i), Weight: 1 + i%3}
	}
	return eps
}

// benchLongPool is benchPool with weights whose cycle is longer than
// WeightedRoundRobin's table.
func benchLongPool(n int) []sturdy.Endpoint {
	eps := benchPool(n)
	for i := range eps {
		eps[i].Weight += maxTable / n
	}
	return eps
}

// benchPickDone picks and reports on every goroutine b.RunParallel starts.
// Outcomes carry End, as sturdy's own policies pass it: each goroutine acts
// as if an attempt of 20 ms ended every microsecond, without reading the
// clock (BenchmarkPickDoneClock shows the cost of a caller that does not).
func benchPickDone(b *testing.B, cfg Config, exclude ...string) {
	bal := mustNew(b, cfg)
	ctx := context.Background()
	start := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		o := sturdy.Outcome{Class: sturdy.Success, Latency: 20 * time.Millisecond, End: start}
		for pb.Next() {
			o.End = o.End.Add(time.Microsecond)
			_, done, err := bal.Pick(ctx, exclude)
			if err != nil {
				b.Error(err)
				return
			}
			done(o)
		}
	})
}

// benchPickDoneSerial is benchPickDone on the benchmark's goroutine.
func benchPickDoneSerial(b *testing.B, cfg Config, exclude ...string) {
	bal := mustNew(b, cfg)
	ctx := context.Background()
	o := sturdy.Outcome{Class: sturdy.Success, Latency: 20 * time.Millisecond, End: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		o.End = o.End.Add(time.Microsecond)
		_, done, err := bal.Pick(ctx, exclude)
		if err != nil {
			b.Fatal(err)
		}
		done(o)
	}
}

// BenchmarkNewSchedule is what Update pays for WeightedRoundRobin's order:
// the pool of BenchmarkPickDone, the table with the most distinct weights
// (the slowest to build) and a cycle too long for a table.
func BenchmarkNewSchedule(b *testing.B) {
	distinct := make([]sturdy.Endpoint, 0, 400)
	for w, total := 1, 0; total+w <= maxTable; w++ {
		distinct = append(distinct, sturdy.Endpoint{Name: fmt.Sprint("ep-", w), Weight: w})
		total += w
	}
	for _, c := range []struct {
		name string
		eps  []sturdy.Endpoint
	}{
		{"bench/1000", benchPool(1000)},
		{fmt.Sprintf("distinct/%d", len(distinct)), distinct},
		{"long/1000", benchLongPool(1000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				newSchedule(c.eps)
			}
		})
	}
}

// BenchmarkPickDoneKey is BenchmarkPickDone for PrefixAffinity with keys:
// 4096 prompts of 8 blocks (the index remembers them), the same without
// the index (rendezvous hashing alone, and a lookup of every block before
// it), and 4096 sessions. The cost should not grow with the pool.
func BenchmarkPickDoneKey(b *testing.B) {
	prompts := keys(1, 4096, 8)
	var sessions []Key
	for i := range 4096 {
		sessions = append(sessions, SessionKey(fmt.Sprint("session-", i)))
	}
	for _, bc := range []struct {
		name string
		keys []Key
		cfg  Config
	}{
		{"prefix", prompts, Config{}},
		{"prefix/no-index", prompts, Config{Affinity: Affinity{Index: -1}}},
		{"session", sessions, Config{}},
	} {
		for _, n := range []int{3, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", bc.name, n), func(b *testing.B) {
				cfg := bc.cfg
				cfg.Endpoints = benchPool(n)
				cfg.Policy = PrefixAffinity
				benchPickDoneKeys(b, cfg, bc.keys)
			})
		}
	}
}

func benchPickDoneKeys(b *testing.B, cfg Config, keys []Key) {
	bal := mustNew(b, cfg)
	ctxs := make([]context.Context, len(keys))
	for i, k := range keys {
		ctxs[i] = WithKey(context.Background(), k)
	}
	start := time.Now()
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		o := sturdy.Outcome{Class: sturdy.Success, Latency: 20 * time.Millisecond, End: start}
		i := int(worker.Add(1)) * 7919
		for pb.Next() {
			i++
			o.End = o.End.Add(time.Microsecond)
			_, done, err := bal.Pick(ctxs[i%len(ctxs)], nil)
			if err != nil {
				b.Error(err)
				return
			}
			done(o)
		}
	})
}
