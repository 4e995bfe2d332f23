package sim

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Phase is a stretch of the run at one offered rate.
type Phase struct {
	Duration time.Duration
	Rate     float64 // calls per second
}

// Load is an open-loop load: Poisson arrivals on a fixed, seeded timeline.
// Each call's latency is measured from its scheduled time, not from when
// the generator got round to sending it, so a client that falls behind
// is charged for it (no coordinated omission).
type Load struct {
	Phases  []Phase
	Timeout time.Duration // per call, from its scheduled time
	Warmup  time.Duration // calls scheduled earlier are left out of the histogram
	Seed    uint64
}

// Arrivals returns the scheduled offsets of every call.
func (l Load) Arrivals() []time.Duration {
	rng := rand.New(rand.NewPCG(l.Seed, 0xa11))
	var out []time.Duration
	var start time.Duration
	for _, p := range l.Phases {
		end := start + p.Duration
		if p.Rate > 0 {
			t := start
			for {
				t += time.Duration(rng.ExpFloat64() / p.Rate * float64(time.Second))
				if t >= end {
					break
				}
				out = append(out, t)
			}
		}
		start = end
	}
	return out
}

// Duration returns the length of the load.
func (l Load) Duration() time.Duration {
	var d time.Duration
	for _, p := range l.Phases {
		d += p.Duration
	}
	return d
}

// CallFunc makes one call and says which backend served it.
type CallFunc func(ctx context.Context) (served string, err error)

// Record is one call's fate.
type Record struct {
	At      time.Duration // scheduled offset from the start
	Latency time.Duration // from the scheduled time to the end of the call
	OK      bool
	Served  string
}

// Run is the outcome of one load run.
type Run struct {
	Start   time.Time
	Records []Record
	Hist    *hdrhistogram.Histogram // latency in µs of calls after the warm-up, failures included
	Calls   int                     // after the warm-up
	OK      int                     // after the warm-up
}

// NewHist returns a latency histogram in microseconds, 1µs to 2 minutes.
func NewHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(2*time.Minute/time.Microsecond), 3)
}

// Drive runs the load against call. It returns when every call has
// ended; no call outlives its Timeout.
func Drive(ctx context.Context, l Load, start time.Time, call CallFunc) *Run {
	arr := l.Arrivals()
	run := &Run{Start: start, Hist: NewHist()}
	recs, n := make([]Record, len(arr)), len(arr) // n: the calls started
	var wg sync.WaitGroup
	for i, at := range arr {
		target := start.Add(at)
		if d := time.Until(target); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			n = i
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithDeadline(ctx, target.Add(l.Timeout))
			served, err := call(cctx)
			cancel()
			recs[i] = Record{At: at, Latency: time.Since(target), OK: err == nil, Served: served}
		}()
	}
	wg.Wait()
	run.Records = recs[:n]
	for _, r := range run.Records {
		if r.At < l.Warmup {
			continue
		}
		run.Calls++
		if r.OK {
			run.OK++
		}
		_ = run.Hist.RecordValue(max(1, int64(r.Latency/time.Microsecond)))
	}
	return run
}
