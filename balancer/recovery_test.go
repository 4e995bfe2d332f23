package balancer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
)

// openLoop sends Poisson arrivals at rate per second for d, in the
// synctest bubble's virtual time, each on its own goroutine: pick, then
// attempt(name, pick time) says how long the attempt takes and how it
// ends. It returns every pick's time and endpoint.
func openLoop(b *Balancer, rate float64, d time.Duration, seed uint64, attempt func(name string, at time.Duration, r *rand.Rand) (time.Duration, sturdy.Outcome)) (at []time.Duration, names []string) {
	r := rand.New(rand.NewPCG(seed, 7))
	start := time.Now()
	var wg sync.WaitGroup
	for t := time.Duration(0); ; {
		t += time.Duration(r.ExpFloat64() / rate * float64(time.Second))
		if t >= d {
			break
		}
		time.Sleep(time.Until(start.Add(t)))
		ep, done, err := b.Pick(context.Background(), nil)
		if err != nil {
			panic(err)
		}
		lat, o := attempt(ep.Name, t, r)
		at, names = append(at, t), append(names, ep.Name)
		wg.Go(func() {
			time.Sleep(lat)
			o.Latency = lat
			done(o)
		})
	}
	wg.Wait()
	return at, names
}

// shareIn is b0's share of the picks made in [from, to).
func shareIn(at []time.Duration, names []string, name string, from, to time.Duration) float64 {
	n, all := 0, 0
	for i, t := range at {
		if t >= from && t < to {
			all++
			if names[i] == name {
				n++
			}
		}
	}
	return float64(n) / float64(max(all, 1))
}

// The slow-replica experiment (bench/sim's SlowReplica) in virtual time:
// 11 replicas at ~50ms, 400 calls/s; b0 answers in 2s from 1s to 3.5s, and
// attempts are cut at 300ms as sturdy's adaptive attempt timeout cuts them
// (a Timeout). Once b0 has recovered it must be back to ≥ 80% of its fair
// share (1/11) within 3s, measured over the third second; pure Peak-EWMA
// (PeakDecay < 0) is not.
func TestP2CRecoveredReplicaRegainsShare(t *testing.T) {
	const (
		slowFrom, slowTo = time.Second, 3500 * time.Millisecond
		cut              = 300 * time.Millisecond
	)
	attempt := func(name string, at time.Duration, r *rand.Rand) (time.Duration, sturdy.Outcome) {
		lat := time.Duration(float64(50*time.Millisecond) * math.Exp(0.3*r.NormFloat64()))
		if name == "b0" && at >= slowFrom && at < slowTo {
			lat = 2 * time.Second
		}
		if lat > cut {
			return cut, sturdy.Outcome{Class: sturdy.Timeout}
		}
		return lat, sturdy.Outcome{Class: sturdy.Success}
	}
	var names []string
	for i := range 11 {
		names = append(names, fmt.Sprintf("b%d", i))
	}
	run := func(peakDecay time.Duration, seed uint64) (share float64) {
		synctest.Test(t, func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool(names...), Seed: seed, PeakDecay: peakDecay})
			at, picked := openLoop(b, 400, 8*time.Second, seed, attempt)
			share = shareIn(at, picked, "b0", slowTo+2*time.Second, slowTo+3*time.Second)
		})
		return share
	}
	fair := 1.0 / 11
	for seed := uint64(1); seed <= 3; seed++ {
		got, old := run(0, seed), run(-1, seed)
		t.Logf("seed %d: b0's share in the third second after recovery %.1f%% of fair (pure Peak-EWMA: %.1f%%)", seed, 100*got/fair, 100*old/fair)
		if got < 0.8*fair {
			t.Errorf("seed %d: b0's share in the third second after recovery is %.1f%% of its fair share, want ≥ 80%%", seed, 100*got/fair)
		}
		if old >= 0.8*fair {
			t.Errorf("seed %d: pure Peak-EWMA gave b0 %.1f%% of its fair share in the third second after recovery; the experiment no longer shows the slow return", seed, 100*old/fair)
		}
	}
}

// Each answer in time halves what Timeouts added to the estimate above
// the usual latency, so a replica that is tried again after it has
// recovered is back to its share after a few answers instead of after
// the penalty has faded over PeakDecay: in the experiment above, b0 has
// on average more than half its share in the first second after it
// recovered (about 40% when answers do not lower the penalty).
func TestP2CRecoveredReplicaBackWithinASecond(t *testing.T) {
	const (
		slowFrom, slowTo = time.Second, 3500 * time.Millisecond
		cut              = 300 * time.Millisecond
		seeds            = 6
	)
	var names []string
	for i := range 11 {
		names = append(names, fmt.Sprintf("b%d", i))
	}
	sum := 0.0
	for seed := uint64(1); seed <= seeds; seed++ {
		synctest.Test(t, func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool(names...), Seed: seed})
			at, picked := openLoop(b, 400, slowTo+time.Second, seed, func(name string, at time.Duration, r *rand.Rand) (time.Duration, sturdy.Outcome) {
				lat := time.Duration(float64(50*time.Millisecond) * math.Exp(0.3*r.NormFloat64()))
				if name == "b0" && at >= slowFrom && at < slowTo {
					return cut, sturdy.Outcome{Class: sturdy.Timeout}
				}
				return lat, sturdy.Outcome{Class: sturdy.Success}
			})
			s := 11 * shareIn(at, picked, "b0", slowTo, slowTo+time.Second)
			t.Logf("seed %d: b0's share in the first second after recovery %.0f%% of fair", seed, 100*s)
			sum += s
		})
	}
	if mean := sum / seeds; mean < 0.55 {
		t.Errorf("b0's share in the first second after recovery, mean over %d seeds, is %.0f%% of fair, want ≥ 55%%", seeds, 100*mean)
	}
}

// The rule itself: after a Timeout's penalty, each success halves what
// the penalty adds above the usual latency (then folds its sample in as
// Peak-EWMA does); pure Peak-EWMA (PeakDecay < 0) keeps the penalty.
func TestSuccessHalvesTimeoutPenalty(t *testing.T) {
	for _, peakDecay := range []time.Duration{0, -1} {
		synctest.Test(t, func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool("a"), Seed: 1, PeakDecay: peakDecay})
			ld := b.snap.Load().lds[0]
			report := func(o sturdy.Outcome) {
				_, done, _ := b.Pick(context.Background(), nil)
				done(o)
			}
			est := func() float64 { return ld.ewma.at(b.p.now(), ld.decay()) }
			report(sturdy.Outcome{Latency: 50 * time.Millisecond})
			report(sturdy.Outcome{Class: sturdy.Timeout, Latency: 300 * time.Millisecond})
			usual, penalised := 50*float64(time.Millisecond), est()
			if penalised != 300*float64(time.Millisecond) {
				t.Fatalf("PeakDecay %v: estimate after the Timeout = %v, want 300ms", peakDecay, time.Duration(penalised))
			}
			want := penalised
			for i := range 3 {
				report(sturdy.Outcome{Latency: 40 * time.Millisecond})
				if peakDecay >= 0 {
					want = usual + (want-usual)/2
				}
				// The clock has not moved (synctest), so nothing decayed
				// and the 40ms sample weighs nothing.
				if got := est(); math.Abs(got-want) > 1e-9*want {
					t.Errorf("PeakDecay %v: estimate after %d successes = %v, want %v", peakDecay, i+1, time.Duration(got), time.Duration(want))
				}
			}
		})
	}
}

// A replica whose attempts are cut half the time stays shunned although
// each answer in time halves its penalty: each Timeout doubles the whole
// estimate.
func TestP2CIntermittentlyStuckReplicaStaysShunned(t *testing.T) {
	var names []string
	for i := range 11 {
		names = append(names, fmt.Sprintf("b%d", i))
	}
	const seeds = 5
	sum := 0.0
	for seed := uint64(1); seed <= seeds; seed++ {
		synctest.Test(t, func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool(names...), Seed: seed})
			at, picked := openLoop(b, 400, 10*time.Second, seed, func(name string, _ time.Duration, r *rand.Rand) (time.Duration, sturdy.Outcome) {
				if name == "b0" && r.Float64() < 0.5 {
					return 300 * time.Millisecond, sturdy.Outcome{Class: sturdy.Timeout}
				}
				return time.Duration(float64(50*time.Millisecond) * math.Exp(0.3*r.NormFloat64())), sturdy.Outcome{Class: sturdy.Success}
			})
			sum += 11 * shareIn(at, picked, "b0", 2*time.Second, 10*time.Second)
		})
	}
	if mean := sum / seeds; mean > 0.25 {
		t.Errorf("a replica cut on half its attempts got %.0f%% of its fair share, want ≤ 25%%", 100*mean)
	}
}

// A replica that is always slow stays shunned: its usual latency is slow,
// so PeakDecay brings it back no sooner than Decay would.
func TestP2CAlwaysSlowStaysShunned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Endpoints: pool("a", "b", "c", "slow"), Seed: 1})
		at, picked := openLoop(b, 200, 30*time.Second, 1, func(name string, _ time.Duration, r *rand.Rand) (time.Duration, sturdy.Outcome) {
			lat := time.Duration(float64(20*time.Millisecond) * math.Exp(0.2*r.NormFloat64()))
			if name == "slow" {
				lat *= 10
			}
			return lat, sturdy.Outcome{Class: sturdy.Success}
		})
		if s := shareIn(at, picked, "slow", 5*time.Second, 30*time.Second); s > 0.02 {
			t.Errorf("always-slow endpoint got %.2f%% of picks, want < 2%%", 100*s)
		}
	})
}

func TestDecayedPeakFadesToBase(t *testing.T) {
	const tau, fast = float64(10 * time.Second), float64(time.Second)
	ms := func(f float64) float64 { return f * float64(time.Millisecond) }
	d := decay{rate: 1 / tau, fast: 1 / fast, base: ms(50)}
	for _, tt := range []struct {
		c    float64
		age  time.Duration
		want float64
	}{
		{ms(300), 0, ms(300)},
		{ms(300), time.Second, (ms(50) + ms(250)/math.E) * math.Exp(-0.1)},
		{ms(300), 10 * time.Second, (ms(50) + ms(250)*math.Exp(-10)) / math.E},
		{ms(40), time.Second, ms(40) * math.Exp(-0.1)}, // below the base: plain decay
	} {
		if got := d.decayed(tt.c, int64(tt.age)); math.Abs(got-tt.want) > 1e-9*tt.want {
			t.Errorf("decayed(%v, %v) = %v, want %v", time.Duration(tt.c), tt.age, time.Duration(got), time.Duration(tt.want))
		}
	}
	for _, d := range []decay{{rate: 1 / tau, base: ms(50)}, {rate: 1 / tau, fast: 1 / fast}} {
		if got, want := d.decayed(ms(300), int64(time.Second)), ms(300)*math.Exp(-0.1); math.Abs(got-want) > 1e-9*want {
			t.Errorf("%+v: decayed = %v, want plain Peak-EWMA's %v", d, time.Duration(got), time.Duration(want))
		}
	}
}

// The usual latency is Peak-EWMA over everything but Timeouts' penalties:
// equal to the estimate until a Timeout, which leaves it where it was;
// an error lifts it to its penalty.
func TestBaseIsPeakEWMAWithoutTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Endpoints: pool("a"), Seed: 1})
		ld := b.snap.Load().lds[0]
		base := func() float64 { return math.Float64frombits(ld.base.Load()) }
		est := func() float64 { c, _ := ld.ewma.load(); return c }
		report := func(o sturdy.Outcome) {
			_, done, _ := b.Pick(context.Background(), nil)
			done(o)
		}
		if base() != 0 {
			t.Fatalf("base before any outcome = %v, want 0 (none)", base())
		}
		r := rand.New(rand.NewPCG(1, 1))
		for range 200 {
			time.Sleep(time.Duration(r.IntN(50)) * time.Millisecond)
			report(sturdy.Outcome{Latency: time.Duration(r.IntN(100)+1) * time.Millisecond})
			if base() != est() {
				t.Fatalf("after successes only, base %v ≠ estimate %v", base(), est())
			}
		}
		report(sturdy.Outcome{Class: sturdy.Canceled, Latency: time.Second}) // a lower bound is latency
		if base() != est() || est() != float64(time.Second) {
			t.Fatalf("after a 1s lower bound: base %v, estimate %v; want both 1s", base(), est())
		}
		time.Sleep(10 * time.Second)
		report(sturdy.Outcome{Class: sturdy.Timeout, Latency: 300 * time.Millisecond})
		if base() >= est() {
			t.Fatalf("after a Timeout base %v is not below the estimate %v", base(), est())
		}
		if got, want := base(), float64(time.Second)*math.Exp(-1); math.Abs(got-want) > 1e-9*want {
			t.Errorf("a Timeout moved base to %v, want it only decayed, to %v", time.Duration(got), time.Duration(want))
		}
		report(sturdy.Outcome{Class: sturdy.Unavailable})
		if base() != est() {
			t.Errorf("after an error base %v ≠ estimate %v: the penalty must lift it", base(), est())
		}
	})
}

// An error (not a Timeout) lifts the usual latency to its penalty, so
// that it fades over Decay, not PeakDecay; a Timeout does not.
func TestErrorPenaltyFadesWithDecay(t *testing.T) {
	for _, tt := range []struct {
		class sturdy.Class
		fast  bool // fades over PeakDecay
	}{{sturdy.Unavailable, false}, {sturdy.Overloaded, false}, {sturdy.Auth, false}, {sturdy.Timeout, true}} {
		synctest.Test(t, func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool("a"), Seed: 1})
			ld := b.snap.Load().lds[0]
			_, done, _ := b.Pick(context.Background(), nil)
			done(sturdy.Outcome{Latency: 50 * time.Millisecond})
			_, done, _ = b.Pick(context.Background(), nil)
			done(sturdy.Outcome{Class: tt.class, Latency: time.Millisecond})
			time.Sleep(2 * time.Second)
			got := ld.ewma.at(b.p.now(), ld.decay())
			slow := 100 * float64(time.Millisecond) * math.Exp(-0.2) // the 2×50ms penalty after 2s of Decay alone
			if faded := got < 0.7*slow; faded != tt.fast {
				t.Errorf("%v: estimate 2s after the failure = %v (Decay alone: %v); want faded over PeakDecay: %v",
					tt.class, time.Duration(got), time.Duration(slow), tt.fast)
			}
		})
	}
}
