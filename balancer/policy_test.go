package balancer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/sturdyai/sturdy"
)

func TestPolicyString(t *testing.T) {
	for p, want := range map[Policy]string{
		P2CPeakEWMA:        "p2c_peak_ewma",
		RoundRobin:         "round_robin",
		WeightedRoundRobin: "weighted_round_robin",
		LeastOutstanding:   "least_outstanding",
		PrefixAffinity:     "prefix_affinity",
		Policy(99):         "unknown",
	} {
		if got := p.String(); got != want {
			t.Errorf("Policy(%d).String() = %q, want %q", p, got, want)
		}
	}
}

func TestRoundRobinOrder(t *testing.T) {
	tests := []struct {
		name    string
		exclude []string
		want    string
	}{
		{"all", nil, "a b c d a b c d a b c d"},
		{"skip one", []string{"b"}, "a c d a c d a c d"},
		{"skip two adjacent", []string{"b", "c"}, "a d a d a d"},
		{"skip first", []string{"a"}, "b c d b c d"},
		{"only one left", []string{"a", "b", "d"}, "c c c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool("a", "b", "c", "d"), Policy: RoundRobin, Seed: 1})
			want := strings.Fields(tt.want)
			if got := pickNames(t, b, len(want), tt.exclude...); !slices.Equal(got, want) {
				t.Errorf("picks = %v, want %v", got, want)
			}
		})
	}
}

func TestRoundRobinUnseededVisitsAllEvenly(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a", "b", "c"), Policy: RoundRobin})
	counts := map[string]int{}
	for _, n := range pickNames(t, b, 300) {
		counts[n]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if counts[n] != 100 {
			t.Errorf("%s picked %d times of 300, want 100 (%v)", n, counts[n], counts)
		}
	}
}

func TestWeightedRoundRobinSequence(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		exclude []string
		want    string
	}{
		// nginx's documented example for weights 5, 1, 1.
		{"nginx 5 1 1", []int{5, 1, 1}, nil, "a a b a c a a  a a b a c a a"},
		{"zero weight is 1", []int{0, 0, 2}, nil, "c a b c  c a b c"},
		{"equal weights are round-robin", []int{3, 3, 3}, nil, "a b c a b c"},
		{"excluded sits out", []int{5, 1, 1}, []string{"a"}, "b c b c"},
		{"4 2 1", []int{4, 2, 1}, nil, "a b a c a b a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := pool("a", "b", "c")
			for i, w := range tt.weights {
				eps[i].Weight = w
			}
			b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin, Seed: 1})
			want := strings.Fields(tt.want)
			if got := pickNames(t, b, len(want), tt.exclude...); !slices.Equal(got, want) {
				t.Errorf("picks = %v, want %v", got, want)
			}
		})
	}
}

func TestWeightedRoundRobinExactPerCycle(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 50 {
		n := 1 + r.IntN(8)
		eps := make([]sturdy.Endpoint, n)
		total := 0
		for i := range eps {
			eps[i] = sturdy.Endpoint{Name: fmt.Sprint("e", i), Weight: r.IntN(10)}
			total += eps[i].EffectiveWeight()
		}
		b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin, Seed: 1})
		for cycle := range 3 {
			counts := map[string]int{}
			for _, name := range pickNames(t, b, total) {
				counts[name]++
			}
			for i := range eps {
				if got, want := counts[eps[i].Name], eps[i].EffectiveWeight(); got != want {
					t.Fatalf("trial %d cycle %d: %s (weight %d) picked %d times in %d picks, want %d",
						trial, cycle, eps[i].Name, eps[i].Weight, got, total, want)
				}
			}
		}
	}
}

// held is an attempt picked and not yet done.
type held struct {
	name string
	done func(sturdy.Outcome)
}

func TestLeastOutstandingNeverPicksBusier(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f"}
	b := mustNew(t, Config{Endpoints: pool(names...), Policy: LeastOutstanding, Seed: 3})
	r := rand.New(rand.NewPCG(3, 3))
	inflight := map[string]int{}
	var holds []held
	for step := range 5000 {
		if len(holds) > 0 && r.IntN(5) < 2 {
			k := r.IntN(len(holds))
			h := holds[k]
			holds = slices.Delete(holds, k, k+1)
			h.done(sturdy.Outcome{})
			inflight[h.name]--
			continue
		}
		var exclude []string
		for _, n := range names {
			if r.IntN(6) == 0 {
				exclude = append(exclude, n)
			}
		}
		least := -1
		for _, n := range names {
			if !slices.Contains(exclude, n) && (least < 0 || inflight[n] < least) {
				least = inflight[n]
			}
		}
		ep, done, err := b.Pick(context.Background(), exclude)
		if least < 0 {
			if !errors.Is(err, ErrNoEndpoint) {
				t.Fatalf("step %d: every endpoint excluded, Pick err = %v", step, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: Pick: %v", step, err)
		}
		if slices.Contains(exclude, ep.Name) {
			t.Fatalf("step %d: picked excluded %s (exclude %v)", step, ep.Name, exclude)
		}
		if inflight[ep.Name] != least {
			t.Fatalf("step %d: picked %s with %d in flight, but an eligible endpoint had %d (%v, exclude %v)",
				step, ep.Name, inflight[ep.Name], least, inflight, exclude)
		}
		inflight[ep.Name]++
		holds = append(holds, held{ep.Name, done})
	}
}

func TestLeastOutstandingBreaksTiesAtRandom(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a", "b", "c", "d"), Policy: LeastOutstanding, Seed: 9})
	counts := map[string]int{}
	for _, n := range pickNames(t, b, 400) { // each done at once: all idle at every pick
		counts[n]++
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		if counts[n] < 50 {
			t.Errorf("%s won %d of 400 ties (%v); ties should spread", n, counts[n], counts)
		}
	}
}

func TestPickFailsWithBothSentinels(t *testing.T) {
	tests := []struct {
		name    string
		eps     []sturdy.Endpoint
		exclude []string
		reason  string
	}{
		{"empty pool", nil, nil, "pool is empty"},
		{"all tried", pool("a", "b"), []string{"b", "a"}, "all 2 endpoints already tried"},
		{"single tried", pool("a"), []string{"a", "x"}, "all 1 endpoints already tried"},
	}
	for _, p := range allPolicies {
		for _, tt := range tests {
			t.Run(p.String()+"/"+tt.name, func(t *testing.T) {
				b := mustNew(t, Config{Endpoints: tt.eps, Policy: p, Seed: 1})
				ep, done, err := b.Pick(context.Background(), tt.exclude)
				if ep != nil || done != nil {
					t.Errorf("Pick returned endpoint %v and done %v with an error", ep, done != nil)
				}
				if !errors.Is(err, ErrNoEndpoint) || !errors.Is(err, sturdy.ErrUnavailable) {
					t.Fatalf("err = %v; want both ErrNoEndpoint and sturdy.ErrUnavailable", err)
				}
				var se *sturdy.Error
				if !errors.As(err, &se) || se.Op != "balancer" || se.Class != sturdy.Unavailable {
					t.Errorf("err = %#v; want *sturdy.Error{Op: balancer, Class: Unavailable}", err)
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("err = %q; want it to say %q", err, tt.reason)
				}
				if sturdy.ClassOf(err) != sturdy.Unavailable {
					t.Errorf("ClassOf(err) = %v, want unavailable", sturdy.ClassOf(err))
				}
			})
		}
	}
}

func TestPickWithDoneContext(t *testing.T) {
	b := mustNew(t, Config{Endpoints: pool("a"), Policy: LeastOutstanding})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := b.Pick(ctx, nil)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, sturdy.ErrCanceled) {
		t.Fatalf("Pick on a canceled context: err = %v, want context.Canceled as sturdy.ErrCanceled", err)
	}
	// Nothing was counted: the next pick still sees an idle endpoint.
	if got := b.snap.Load().lds[0].inflight(); got != 0 {
		t.Errorf("outstanding after a refused pick = %d, want 0", got)
	}
}

func TestExclusionRespectedByEveryPolicy(t *testing.T) {
	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprint("e", i)
	}
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool(names...), Policy: p, Seed: 5})
			// Leave exactly two eligible: P2C must find them by sampling or scanning.
			exclude := slices.Clone(names[:18])
			seen := map[string]int{}
			var dones []func(sturdy.Outcome)
			for range 200 {
				// Hold every attempt so that load-aware policies alternate too.
				ep, done, err := b.Pick(context.Background(), exclude)
				if err != nil {
					t.Fatal(err)
				}
				if slices.Contains(exclude, ep.Name) {
					t.Fatalf("picked excluded %s", ep.Name)
				}
				seen[ep.Name]++
				dones = append(dones, done)
			}
			for _, done := range dones {
				done(sturdy.Outcome{})
			}
			if len(seen) != 2 || seen["e18"] < 90 || seen["e19"] < 90 {
				t.Errorf("picked %v, want both remaining endpoints about evenly", seen)
			}
		})
	}
}

func TestSeedMakesPicksRepeatable(t *testing.T) {
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			// In a bubble, so that Peak-EWMA sees the same times too.
			run := func() (names []string) {
				synctest.Test(t, func(t *testing.T) {
					b := mustNew(t, Config{Endpoints: pool("a", "b", "c", "d", "e"), Policy: p, Seed: 42})
					names = pickNames(t, b, 50)
				})
				return names
			}
			if a, c := run(), run(); !slices.Equal(a, c) {
				t.Errorf("same seed, different picks:\n%v\n%v", a, c)
			}
		})
	}
}

func TestPickAndDoneDoNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	for _, p := range allPolicies {
		t.Run(p.String(), func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: pool("a", "b", "c", "d", "e"), Policy: p})
			ctx := context.Background()
			exclude := []string{"b"}
			allocs := testing.AllocsPerRun(1000, func() {
				_, done, err := b.Pick(ctx, exclude)
				if err != nil {
					t.Fatal(err)
				}
				done(sturdy.Outcome{Latency: 1000})
			})
			if allocs != 0 {
				t.Errorf("Pick+done allocates %v times, want 0", allocs)
			}
		})
	}
}
