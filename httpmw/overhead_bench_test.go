//go:build unix

package httpmw

import (
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/sturdyai/sturdy/degrade"
)

// BenchmarkRoundTripOverhead measures what BenchmarkRoundTripStub,
// BenchmarkRoundTripFloor, BenchmarkRoundTripFloorTimeout,
// BenchmarkRoundTripSturdy and BenchmarkRoundTripFloorReuse measure, but
// interleaved in batches of
// overheadBatch calls within one process, so that every transport sees
// the same machine load; on a shared machine, separate benchmarks a
// second apart see loads that differ by more than the differences
// measured. Each batch is timed twice: by the wall clock, and by the
// process's CPU time (every thread's, the garbage collector's included),
// which time slices given to other processes do not inflate. It reports
// each transport's median ns per call over the batches, by both clocks,
// and the medians of the per-round ratios of sturdy's added time (over the
// stub) to the floor's and to the floor with a timeout's. Run it with
// -benchtime 1x: one run makes all its rounds.
func BenchmarkRoundTripOverhead(b *testing.B) { overheadBench(b) }

// BenchmarkRoundTripSkeletonOverhead is BenchmarkRoundTripOverhead with
// every default turned off in sturdy's transport (the "skeleton" of
// BenchmarkRoundTripSturdyWithout): what the tiers, routing,
// classification, bodies and telemetry alone add, against the floor, in
// the same run:
//
//	go test -run '^$' -bench RoundTripSkeletonOverhead -benchtime 1x ./httpmw
func BenchmarkRoundTripSkeletonOverhead(b *testing.B) { overheadBench(b, skeletonOptions()...) }

// overheadBench measures, interleaved, the stub, the floors and sturdy's
// transport built with the bench tiers and opts.
func overheadBench(b *testing.B, opts ...Option) {
	opts = append([]Option{WithTier(degrade.Tier{Name: "primary", Model: "m"},
		URL("a", "http://127.0.0.1:1", http.Header{"Authorization": {"Bearer a-key"}}),
		URL("b", "http://127.0.0.1:2/openai", http.Header{"Api-Key": {"b-key"}}),
	), WithTier(degrade.Tier{Name: "fallback", Model: "small"}, URL("c", "http://127.0.0.1:3", nil))}, opts...)
	tr, err := NewTransport(stubTransport{}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	rts := []http.RoundTripper{stubTransport{}, floorTransport{}, floorTimeoutTransport{}, tr, floorReuseTransport{}}
	names := []string{"stub", "floor", "floor+timeout", "sturdy", "floor+reuse"}
	req := benchRequest(b)
	buf := make([]byte, 1024)
	var wall, cpu clockStats
	rng := rand.New(rand.NewPCG(1, 2))
	order := []int{0, 1, 2, 3, 4}
	for range b.N {
		for range overheadRounds {
			var perWall, perCPU [transports]float64
			// A new random order every round, so that no transport
			// mostly follows the same one (a rotation keeps the cyclic
			// order: sturdy would follow floor+timeout in 3 rounds of
			// 4), and a collection before every batch, so that no batch
			// pays for the garbage of the one before it.
			rng.Shuffle(len(order), func(a, c int) { order[a], order[c] = order[c], order[a] })
			for _, j := range order {
				runtime.GC()
				start, startCPU := time.Now(), processCPU(b)
				for range overheadBatch {
					roundTripOnce(b, rts[j], req, buf)
				}
				perCPU[j] = float64(processCPU(b)-startCPU) / overheadBatch
				perWall[j] = float64(time.Since(start).Nanoseconds()) / overheadBatch
			}
			wall.add(perWall)
			cpu.add(perCPU)
		}
	}
	wall.report(b, names, "")
	cpu.report(b, names, "cpu-")
}

// transports is how many transports overheadBench measures: the stub,
// the floor, the floor with a timeout, sturdy's, and the floor recycling
// its requests.
const transports = 5

// clockStats are one clock's batch times, by transport, and the per-round
// ratios of sturdy's added time to the floor's and to the floor with a
// timeout's. The floor recycling its requests adds so little over the
// stub (a few hundred ns) that a round's noise is of its size: a ratio to
// it per round means nothing, so only its time is reported.
type clockStats struct {
	ns                 [transports][]float64
	vsFloor, vsTimeout []float64
}

func (c *clockStats) add(per [transports]float64) {
	for i, v := range per {
		c.ns[i] = append(c.ns[i], v)
	}
	c.vsFloor = append(c.vsFloor, (per[3]-per[0])/(per[1]-per[0]))
	c.vsTimeout = append(c.vsTimeout, (per[3]-per[0])/(per[2]-per[0]))
}

func (c *clockStats) report(b *testing.B, names []string, prefix string) {
	for i, name := range names {
		b.ReportMetric(median(c.ns[i]), prefix+name+"-ns/call")
	}
	b.ReportMetric(median(c.vsFloor), prefix+"sturdy/floor")
	b.ReportMetric(median(c.vsTimeout), prefix+"sturdy/floor+timeout")
}

// processCPU is the CPU time the process has used, in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

const (
	overheadRounds = 60
	overheadBatch  = 3000
)

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
