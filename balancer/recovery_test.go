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

// The usual latency starts at the first success and then moves at most
// 1/16 of the way to each sample, less for samples close together.
func TestBaseLearnsSlowly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustNew(t, Config{Endpoints: pool("a"), Seed: 1})
		ld := b.snap.Load().lds[0]
		base := func() time.Duration { return time.Duration(math.Float64frombits(ld.base.Load())) }
		report := func(lat time.Duration) {
			_, done, _ := b.Pick(context.Background(), nil)
			done(sturdy.Outcome{Latency: lat})
		}
		if base() != 0 {
			t.Fatalf("base before any success = %v, want 0", base())
		}
		report(50 * time.Millisecond)
		if base() != 50*time.Millisecond {
			t.Fatalf("base after the first success = %v, want 50ms", base())
		}
		time.Sleep(5 * time.Second)
		report(2050 * time.Millisecond) // after a long silence: still only 1/16
		if got, want := base(), 50*time.Millisecond+2*time.Second/16; got != want {
			t.Errorf("base after a slow answer = %v, want %v", got, want)
		}
		_, done, _ := b.Pick(context.Background(), nil)
		done(sturdy.Outcome{Class: sturdy.Timeout, Latency: time.Second})
		if got, want := base(), 50*time.Millisecond+2*time.Second/16; got != want {
			t.Errorf("base after a failure = %v, want %v unchanged", got, want)
		}
	})
}
