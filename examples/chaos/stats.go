package main

import (
	"math"
	"slices"
	"time"

	"github.com/sturdyai/sturdy/degrade"
)

// summary is one client's figures.
type summary struct {
	Name        string
	Calls       int // finished calls
	OK          int
	Latencies   []time.Duration // of all finished calls, a failure at its time to fail; sorted
	OKLatency   []time.Duration // of successful calls, sorted
	ServedBy    []int           // successful calls by tier
	Backend     int64           // chat completions the client's servers received
	PerSecond   []float64       // success rate of the calls started in each second; NaN if none
	Interrupted int             // scheduled calls not counted (Ctrl-C)
}

func summarize(name string, recs []record, backend map[string]int64, seconds int) summary {
	s := summary{Name: name, ServedBy: make([]int, 2)}
	okPer, allPer := make([]int, seconds), make([]int, seconds)
	for _, r := range recs {
		if !r.Finished {
			s.Interrupted++
			continue
		}
		s.Calls++
		s.Latencies = append(s.Latencies, r.Latency)
		sec := min(int(r.Start/time.Second), seconds-1)
		allPer[sec]++
		if r.OK {
			s.OK++
			okPer[sec]++
			s.OKLatency = append(s.OKLatency, r.Latency)
			s.ServedBy[r.Tier]++
		}
	}
	slices.Sort(s.Latencies)
	slices.Sort(s.OKLatency)
	for _, n := range backend {
		s.Backend += n
	}
	s.PerSecond = make([]float64, seconds)
	for i := range seconds {
		s.PerSecond[i] = math.NaN()
		if allPer[i] > 0 {
			s.PerSecond[i] = float64(okPer[i]) / float64(allPer[i])
		}
	}
	return s
}

// SuccessRate is OK / Calls.
func (s summary) SuccessRate() float64 { return ratio(s.OK, s.Calls) }

// ExtraLoad is (backend requests − calls) / calls: the load the client's
// retries and hedges add on top of one request per call.
func (s summary) ExtraLoad() float64 {
	if s.Calls == 0 {
		return math.NaN()
	}
	return float64(s.Backend-int64(s.Calls)) / float64(s.Calls)
}

// Shares returns the share of successful calls each tier served.
func (s summary) Shares() []float64 {
	out := make([]float64, len(s.ServedBy))
	for i, n := range s.ServedBy {
		out[i] = ratio(n, s.OK)
	}
	return out
}

// Quality is Σ share × quality over served calls: (1 − r)·Q + r·Q′.
func (s summary) Quality() float64 {
	if s.OK == 0 {
		return math.NaN()
	}
	return degrade.ExpectedQuality(s.Shares(), []float64{primaryQuality, fallbackQuality})
}

// Percentile returns the q-quantile (0..1) of the latencies of all
// finished calls, a failed call counted at the time it took to fail, by the
// nearest-rank method; false if there are none. Counting failures keeps a
// client from looking fast by dropping its slow calls: what a user waited
// is the same whether an answer or an error came at the end.
func (s summary) Percentile(q float64) (time.Duration, bool) {
	n := len(s.Latencies)
	if n == 0 {
		return 0, false
	}
	i := int(math.Ceil(q*float64(n))) - 1
	return s.Latencies[min(max(i, 0), n-1)], true
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}
