//go:build unix

package attempt

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sturdyai/sturdy"
)

// BenchmarkAttemptTimeoutCPU is BenchmarkAttemptContext measured as the
// overhead benchmark of httpmw measures: in rounds that run a batch of
// each way in a new random order, after a collection, timed by the
// process's CPU time, so that other work on a shared machine weighs on
// both alike. It reports the median per-attempt CPU time of each way and
// the median per-round ratio:
//
//	go test -run '^$' -bench AttemptTimeoutCPU -benchtime 1x ./internal/attempt
func BenchmarkAttemptTimeoutCPU(b *testing.B) {
	bg := context.Background()
	ways := []func(now time.Time){
		func(now time.Time) { // before: what the loop did
			ctx, cancel := context.WithCancelCause(bg)
			tm := StartTimer(now, time.Minute, cancel, ErrAttemptTimeout)
			o := sturdy.Outcome{Latency: 1}
			classify(ctx, &o, now, tm.Stop())
			cancel(errReleased)
		},
		func(now time.Time) { // after
			c := attemptCtx(bg, false, time.Minute, now)
			o := sturdy.Outcome{Latency: 1}
			classify(bg, &o, now, c.stopTimeout())
			c.cancel(causeRelease)
		},
	}
	const rounds, batch = 60, 20000
	var ns [2][]float64
	var ratio []float64
	rng := rand.New(rand.NewPCG(1, 2))
	order := []int{0, 1}
	now := time.Now()
	for range b.N {
		for range rounds {
			var per [2]float64
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, w := range order {
				runtime.GC()
				start := processCPU(b)
				for range batch {
					ways[w](now)
				}
				per[w] = float64(processCPU(b)-start) / batch
				ns[w] = append(ns[w], per[w])
			}
			ratio = append(ratio, per[1]/per[0])
		}
	}
	b.ReportMetric(median(ns[0]), "cpu-before-ns/attempt")
	b.ReportMetric(median(ns[1]), "cpu-after-ns/attempt")
	b.ReportMetric(median(ratio), "after/before")
}

func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
