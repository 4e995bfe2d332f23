package balancer

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
)

// simulate runs workers that each make calls in a loop against b in the
// synctest bubble's virtual time: pick, wait the endpoint's latency (±10%),
// report it. It returns how often each endpoint was picked after the first
// warmup calls of each worker.
func simulate(b *Balancer, latency func(name string) (time.Duration, sturdy.Class), workers, calls, warmup int) (counts map[string]int, total int) {
	counts = map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			for i := range calls {
				ep, done, err := b.Pick(context.Background(), nil)
				if err != nil {
					panic(err)
				}
				d, class := latency(ep.Name)
				d = d * time.Duration(90+r.IntN(21)) / 100
				time.Sleep(d)
				done(sturdy.Outcome{Class: class, Latency: d})
				if i >= warmup {
					mu.Lock()
					counts[ep.Name]++
					total++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return counts, total
}

func TestP2CShunsSlowEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Endpoints: pool("a", "b", "c", "d", "slow"), Seed: 1})
		lat := func(name string) (time.Duration, sturdy.Class) {
			if name == "slow" {
				return 100 * time.Millisecond, sturdy.Success
			}
			return 10 * time.Millisecond, sturdy.Success
		}
		// 8 concurrent callers, 3000 calls each: about 40s of virtual time.
		counts, total := simulate(b, lat, 8, 3000, 300)
		share := float64(counts["slow"]) / float64(total)
		t.Logf("after warm-up: %v of %d; slow share %.3f%%", counts, total, 100*share)
		if share >= 0.05 {
			t.Errorf("slow endpoint got %.1f%% of requests after warm-up, want < 5%%", 100*share)
		}
		for _, n := range []string{"a", "b", "c", "d"} {
			if c := counts[n]; float64(c) < 0.2*float64(total) {
				t.Errorf("fast endpoint %s got %d of %d, want about a quarter", n, c, total)
			}
		}
	})
}

func TestP2CRetriesRestedSlowEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Endpoints: pool("fast", "slow"), Seed: 1})
		var slowAt []time.Duration
		start := time.Now()
		for time.Since(start) < 2*time.Minute {
			ep, done, err := b.Pick(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			d := 10 * time.Millisecond
			if ep.Name == "slow" {
				d = 100 * time.Millisecond
				slowAt = append(slowAt, time.Since(start))
			}
			time.Sleep(d)
			done(sturdy.Outcome{Latency: d})
		}
		// slow's 100ms decays below fast's 10ms after 10s·ln(10) ≈ 23s idle,
		// so it is probed about every 23s: a handful of times in 2 minutes.
		if len(slowAt) < 3 || len(slowAt) > 10 {
			t.Errorf("slow picked %d times in 2m at %v; want it shunned but re-probed every ~23s", len(slowAt), slowAt)
		}
		for i := 1; i < len(slowAt); i++ {
			if gap := slowAt[i] - slowAt[i-1]; gap < 15*time.Second {
				t.Errorf("slow re-picked after only %v (at %v)", gap, slowAt)
			}
		}
	})
}

func TestP2CFailingFastLooksExpensive(t *testing.T) {
	for _, class := range []sturdy.Class{sturdy.Unavailable, sturdy.Overloaded, sturdy.Timeout, sturdy.Auth} {
		t.Run(class.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := mustNew(t, Config{Endpoints: pool("ok", "broken"), Seed: 1})
				lat := func(name string) (time.Duration, sturdy.Class) {
					if name == "broken" {
						return time.Millisecond, class // fails in 1ms
					}
					return 20 * time.Millisecond, sturdy.Success
				}
				counts, total := simulate(b, lat, 4, 500, 50)
				if share := float64(counts["broken"]) / float64(total); share > 0.05 {
					t.Errorf("endpoint failing fast with %v got %.1f%% of requests (%v); failures must not look cheap", class, 100*share, counts)
				}
			})
		})
	}
}

// How each class moves the estimate, read right after the outcome.
func TestP2COutcomeClassesAndEstimate(t *testing.T) {
	const before = 40 * time.Millisecond
	tests := []struct {
		class   sturdy.Class
		latency time.Duration
		want    time.Duration // estimate after
	}{
		{sturdy.Success, 400 * time.Millisecond, 400 * time.Millisecond}, // peak
		{sturdy.Unavailable, time.Millisecond, 2 * before},               // doubled
		{sturdy.Timeout, time.Second, time.Second},                       // its latency is worse still
		{sturdy.Overloaded, 0, 2 * before},
		{sturdy.Auth, 0, 2 * before},
		{sturdy.Canceled, time.Millisecond, before},                       // lower bound below: no change
		{sturdy.Canceled, 300 * time.Millisecond, 300 * time.Millisecond}, // lower bound above: raised
		{sturdy.TooLarge, time.Millisecond, before},
		{sturdy.Fatal, time.Millisecond, before},
	}
	for _, tt := range tests {
		t.Run(tt.class.String()+"/"+tt.latency.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := mustNew(t, Config{Endpoints: pool("a"), Seed: 1})
				ld := b.snap.Load().lds[0]
				time.Sleep(time.Minute) // the 30ms default has decayed to nothing
				_, done, _ := b.Pick(context.Background(), nil)
				done(sturdy.Outcome{Latency: before}) // a peak: estimate = before
				_, done, _ = b.Pick(context.Background(), nil)
				done(sturdy.Outcome{Class: tt.class, Latency: tt.latency})
				if got := time.Duration(math.Round(ld.ewma.at(b.p.now(), ld.decay()))); got != tt.want {
					t.Errorf("estimate after %v in %v = %v, want %v", tt.class, tt.latency, got, tt.want)
				}
			})
		})
	}
}

func TestP2CFailurePenaltyIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Endpoints: pool("a"), Seed: 1})
		ld := b.snap.Load().lds[0]
		for range 40 {
			_, done, _ := b.Pick(context.Background(), nil)
			done(sturdy.Outcome{Class: sturdy.Unavailable})
		}
		if got := time.Duration(math.Round(ld.ewma.at(b.p.now(), ld.decay()))); got != maxPenalty {
			t.Errorf("estimate after 40 fast failures = %v, want the %v cap", got, maxPenalty)
		}
		// A slow success above the cap stands, and a failure does not lower it.
		_, done, _ := b.Pick(context.Background(), nil)
		done(sturdy.Outcome{Latency: 3 * time.Minute})
		_, done, _ = b.Pick(context.Background(), nil)
		done(sturdy.Outcome{Class: sturdy.Unavailable})
		if got := time.Duration(math.Round(ld.ewma.at(b.p.now(), ld.decay()))); got != 3*time.Minute {
			t.Errorf("estimate after a failure above the cap = %v, want it held at 3m", got)
		}
	})
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	// Equal latency estimates: outstanding attempts decide.
	b := mustNew(t, Config{Endpoints: pool("a", "b"), Seed: 1})
	var dones []func(sturdy.Outcome)
	counts := map[string]int{}
	for range 100 {
		ep, done, err := b.Pick(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[ep.Name]++
		dones = append(dones, done)
	}
	for _, d := range dones {
		d(sturdy.Outcome{Class: sturdy.Canceled})
	}
	if counts["a"] < 45 || counts["b"] < 45 {
		t.Errorf("held picks split %v, want about even (cost × outstanding+1)", counts)
	}
}

// cheaper's shortcut (no decay factor when the older estimate is already
// no dearer) must choose as the plain formula does: decay the older
// estimate to the newer one's stamp, multiply each by in flight + 1,
// take j only if strictly cheaper.
func TestCheaperMatchesTheFormula(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a", "b")})
	s := b.snap.Load()
	set := func(l *load, cost float64, stamp, inflight int64) {
		l.ewma.lock()
		l.ewma.unlock(cost, stamp)
		l.outstanding.Store(inflight)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rate := s.p.rate
	for range 100000 {
		ci, cj := float64(rng.IntN(200)+1)*1e6, float64(rng.IntN(200)+1)*1e6
		ti, tj := rng.Int64N(int64(30*time.Second)), rng.Int64N(int64(30*time.Second))
		if rng.IntN(4) == 0 {
			tj = ti // equal stamps
		}
		ni, nj := rng.Int64N(4), rng.Int64N(4)
		set(s.lds[0], ci, ti, ni)
		set(s.lds[1], cj, tj, nj)
		di, dj := ci, cj
		if ti < tj {
			di *= weight(tj-ti, rate)
		} else {
			dj *= weight(ti-tj, rate)
		}
		di, dj = di*float64(ni+1), dj*float64(nj+1)
		want := 0
		if dj < di {
			want = 1
		}
		if got := s.cheaper(0, 1); got != want && math.Abs(di-dj) > 1e-9*di {
			t.Fatalf("cheaper(%v@%v×%d, %v@%v×%d) = %d, want %d (%v vs %v)", ci, ti, ni+1, cj, tj, nj+1, got, want, di, dj)
		}
	}
}

// TestCheaperBoundsDecideAsTheDecay: cheaper decides from bounds of the
// older estimate's decay unless they are too close to call; whatever the
// ages (within the Taylor terms weight uses, up to several Decays), the
// estimates and the usual latencies (the PeakDecay fade), it must choose
// exactly as computing the decay does.
func TestCheaperBoundsDecideAsTheDecay(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a", "b")})
	s := b.snap.Load()
	set := func(l *load, cost, base float64, stamp, inflight int64) {
		l.ewma.lock()
		l.ewma.unlock(cost, stamp)
		l.base.Store(math.Float64bits(base))
		l.outstanding.Store(inflight)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ages := []int64{int64(time.Microsecond), int64(50 * time.Microsecond), int64(5 * time.Millisecond),
		int64(100 * time.Millisecond), int64(3 * time.Second), int64(40 * time.Second)}
	for n := range 200000 {
		ci := float64(rng.IntN(2000)+1) * 1e5
		cj := ci * (1 + (rng.Float64()-0.5)*math.Pow(10, -float64(rng.IntN(10)))) // near-ties too
		bi, bj := 0.0, 0.0
		if rng.IntN(2) == 0 {
			bi, bj = ci*rng.Float64(), cj*rng.Float64() // a penalty above the usual latency
		}
		ti := int64(time.Minute)
		tj := ti + ages[rng.IntN(len(ages))]*int64(rng.IntN(3)+1)/2
		if n%2 == 0 {
			ti, tj = tj, ti
		}
		ni, nj := rng.Int64N(3), rng.Int64N(3)
		set(s.lds[0], ci, bi, ti, ni)
		set(s.lds[1], cj, bj, tj, nj)
		di, dj := s.lds[0].decay().decayed(ci, max(ti, tj)-ti), s.lds[1].decay().decayed(cj, max(ti, tj)-tj)
		want := 0
		if dj*float64(nj+1) < di*float64(ni+1) {
			want = 1
		}
		if got := s.cheaper(0, 1); got != want {
			t.Fatalf("cheaper(%v (base %v) at %v ×%d, %v (base %v) at %v ×%d) = %d, the decay says %d (%v vs %v)",
				ci, bi, ti, ni+1, cj, bj, tj, nj+1, got, want, di*float64(ni+1), dj*float64(nj+1))
		}
	}
}

// TestExpBounds: expLower and expUpper bracket exp(-x) and weight's
// value, up to the rounding boundMargin covers.
func TestExpBounds(t *testing.T) {
	const ulps = 1e-15
	for x := 0.0; x < 50; x = x*1.01 + 1e-9 {
		age := int64(x * 1e9)
		x := float64(age) * 1e-9
		lo, hi := expLower(x), expUpper(x)
		for _, v := range []float64{math.Exp(-x), weight(age, 1e-9)} {
			if lo > v*(1+ulps) || hi < v*(1-ulps) {
				t.Fatalf("exp bounds of %v: [%v, %v], outside %v", x, lo, hi, v)
			}
		}
		if x < 0.1 && hi-lo > x*x*x/5+ulps {
			t.Fatalf("exp bounds of %v: [%v, %v], wider than about x³/6", x, lo, hi)
		}
	}
}
