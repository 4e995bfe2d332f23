package balancer

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
)

// One replica of five answers as fast as the others but reports 5× their
// queue: with the reports it gets less traffic than with latency alone,
// and a replica whose reports say nothing (all zeros) is priced exactly as
// without them.
func TestP2CLoadReportQueueTakesShare(t *testing.T) {
	names := []string{"b0", "b1", "b2", "b3", "b4"}
	run := func(report bool, seed uint64) (share float64) {
		synctest.Test(t, func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool(names...), Seed: seed})
			at, picked := openLoop(b, 200, 10*time.Second, seed, func(name string, _ time.Duration, r *rand.Rand) (time.Duration, sturdy.Outcome) {
				lat := time.Duration(float64(50*time.Millisecond) * math.Exp(0.3*r.NormFloat64()))
				o := sturdy.Outcome{Class: sturdy.Success}
				if report {
					q := 2.0
					if name == "b0" {
						q = 10
					}
					o.Load = &sturdy.LoadReport{Queue: q}
				}
				return lat, o
			})
			share = shareIn(at, picked, "b0", time.Second, 10*time.Second)
		})
		return share
	}
	for seed := uint64(1); seed <= 3; seed++ {
		with, without := run(true, seed), run(false, seed)
		t.Logf("seed %d: b0's share %.1f%% with reports, %.1f%% without", seed, 100*with, 100*without)
		if with >= 0.5*without {
			t.Errorf("seed %d: b0, reporting 5× the queue, got %.1f%% with reports vs %.1f%% without; want less than half", seed, 100*with, 100*without)
		}
	}
}

func TestPriceWithoutReportIsPeakEWMA(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a")})
	ld := b.snap.Load().lds[0]
	if got := ld.price(30, 5e9, 3); got != 90 {
		t.Errorf("price without a report = %v, want est × n = 90", got)
	}
	ld.report.Store(packReport(&sturdy.LoadReport{})) // nothing but zeros
	if ld.report.Load() != 0 {
		t.Fatalf("an all-zero report packs to %#x, want 0 (no report)", ld.report.Load())
	}
	ld.report.Store(packReport(&sturdy.LoadReport{Queue: 4, KVCache: 0.5, Utilization: 0.2}))
	w := math.Exp(-0.5) // 5s at the default 10s Decay
	if got, want := ld.price(30, 5e9, 3), 30*(3+4*w)/(1-0.5*w); math.Abs(got-want) > 1e-9*want {
		t.Errorf("price with a report = %v, want est × (n + q·w) / (1 − ρ·w) = %v", got, want)
	}
}

func TestPackReportCaps(t *testing.T) {
	for _, tt := range []struct {
		in     sturdy.LoadReport
		q, rho float64
	}{
		{sturdy.LoadReport{Queue: 3, KVCache: 0.25}, 3, 0.25},
		{sturdy.LoadReport{Utilization: 0.5, KVCache: 0.25}, 0, 0.5},
		{sturdy.LoadReport{Utilization: 3}, 0, maxRho},
		{sturdy.LoadReport{Queue: 1e12}, maxQueue, 0},
		{sturdy.LoadReport{Queue: -1, KVCache: -1}, 0, 0},
	} {
		q, rho := unpackReport(packReport(&tt.in))
		if q != tt.q || math.Abs(rho-tt.rho) > 1e-7 {
			t.Errorf("pack(%+v) → %v, %v; want %v, %v", tt.in, q, rho, tt.q, tt.rho)
		}
	}
}

// cheaper with reports must choose as the formula does: each estimate
// decayed to the later stamp, priced with its report.
func TestCheaperReportedMatchesTheFormula(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a", "b")})
	s := b.snap.Load()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var c [2]float64
		var st [2]int64
		var n [2]int64
		var rep [2]sturdy.LoadReport
		for k := range 2 {
			c[k] = float64(rng.IntN(200)+1) * 1e6
			st[k] = rng.Int64N(int64(30 * time.Second))
			n[k] = rng.Int64N(4)
			if rng.IntN(3) > 0 {
				rep[k] = sturdy.LoadReport{Queue: float64(rng.IntN(10)), KVCache: rng.Float64()}
			}
			l := s.lds[k]
			l.ewma.lock()
			l.ewma.unlock(c[k], st[k])
			l.outstanding.Store(n[k])
			l.report.Store(packReport(&rep[k]))
		}
		if rep[0] == (sturdy.LoadReport{}) && rep[1] == (sturdy.LoadReport{}) {
			continue
		}
		t0 := max(st[0], st[1])
		var cost [2]float64
		for k := range 2 {
			w := math.Exp(-float64(t0-st[k]) / float64(DefaultDecay))
			q, rho := unpackReport(packReport(&rep[k]))
			cost[k] = c[k] * w * (float64(n[k]+1) + q*w) / (1 - rho*w)
		}
		want := 0
		if cost[1] < cost[0] {
			want = 1
		}
		if got := s.cheaper(0, 1); got != want && math.Abs(cost[0]-cost[1]) > 1e-9*cost[0] {
			t.Fatalf("cheaper = %d, want %d (costs %v)", got, want, cost)
		}
	}
}

func TestDoneWithReportDoesNotAllocate(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a", "b", "c")})
	rep := &sturdy.LoadReport{Queue: 2, KVCache: 0.4}
	o := sturdy.Outcome{Latency: 20 * time.Millisecond, Load: rep}
	if n := testing.AllocsPerRun(1000, func() {
		_, done, _ := b.Pick(context.Background(), nil)
		done(o)
	}); n != 0 {
		t.Errorf("Pick+done with a load report allocates %v times, want 0", n)
	}
}
