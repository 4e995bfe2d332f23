package balancer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sturdyai/sturdy"
)

// weightedPool names endpoints e0, e1, … with the given weights.
func weightedPool(weights ...int) []sturdy.Endpoint {
	eps := make([]sturdy.Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = sturdy.Endpoint{Name: fmt.Sprint("e", i), Weight: w}
	}
	return eps
}

// randomWeights returns n weights in [lo, hi] from a fixed seed.
func randomWeights(seed uint64, n, lo, hi int) []int {
	r := rand.New(rand.NewPCG(seed, seed))
	w := make([]int, n)
	for i := range w {
		w[i] = lo + r.IntN(hi-lo+1)
	}
	return w
}

// nginxOrder is the reference: nginx's smooth weighted round-robin
// (ngx_http_upstream_get_peer) as the balancer ran it on every pick before
// it kept a table, over picks picks with every endpoint eligible.
func nginxOrder(weights []int, picks int) []int {
	cur := make([]int, len(weights))
	order := make([]int, picks)
	for k := range order {
		best, total := -1, 0
		for i, w := range weights {
			w = max(w, 1) // weight 0 means 1
			cur[i] += w
			total += w
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		order[k] = best
	}
	return order
}

// pickIndices picks n times with exclude and returns the indices of the
// endpoints picked in eps.
func pickIndices(t testing.TB, b *Balancer, eps []sturdy.Endpoint, n int, exclude ...string) []int {
	t.Helper()
	index := make(map[string]int, len(eps))
	for i := range eps {
		index[eps[i].Name] = i
	}
	got := make([]int, n)
	for k := range got {
		got[k] = index[pickName(t, b, exclude...)]
	}
	return got
}

// effective returns the weights with 0 read as 1, as Endpoint reads it.
func effective(weights []int) []int {
	eff := make([]int, len(weights))
	for i, w := range weights {
		eff[i] = max(w, 1)
	}
	return eff
}

func sum(weights []int) int {
	s := 0
	for _, w := range effective(weights) {
		s += w
	}
	return s
}

// windowSpread returns, over the picks in order, the largest amount by
// which any endpoint's count in a window of consecutive picks differs from
// its share of the window, window×w/Σw, for weights w taken as they are
// (0 is no share). With lag(t) = count in the first t picks − t·w/Σw, a
// window (s, t] differs by lag(t) − lag(s), so the largest difference is
// the range of lag over t.
func windowSpread(order []int, weights []int) float64 {
	total := 0.0
	for _, w := range weights {
		total += float64(w)
	}
	lo := make([]float64, len(weights))
	hi := make([]float64, len(weights))
	count := make([]int, len(weights))
	for t, i := range order {
		// i's lag is lowest just before its picks and highest just after.
		share := float64(weights[i]) / total
		before := float64(count[i]) - float64(t)*share
		count[i]++
		lo[i] = min(lo[i], before)
		hi[i] = max(hi[i], before+1-share)
	}
	worst := 0.0
	for i, w := range weights {
		// The lag of one not picked since its last pick falls to the end.
		end := float64(count[i]) - float64(len(order))*float64(w)/total
		worst = max(worst, max(hi[i], end)-min(lo[i], end))
	}
	return worst
}

// sharesCases are pools whose cycles are tables of nginx's order (Σw over
// gcd ≤ maxTable) and pools whose cycles are too long for one.
var sharesCases = []struct {
	name    string
	weights []int
	long    bool // the cycle is longer than maxTable
}{
	{"1 2 7", []int{1, 2, 7}, false},
	{"5 1 1", []int{5, 1, 1}, false},
	{"one endpoint", []int{9}, false},
	{"weights with a common divisor", []int{6, 4, 10, 2}, false},
	{"zeros and equal weights", []int{0, 3, 3, 0, 1, 3}, false},
	{"1000 endpoints, weights 1 to 10", randomWeights(1, 1000, 1, 10), false},
	{"1000 endpoints, weights 1 to 65", randomWeights(2, 1000, 1, 65), false},
	{"long cycle, 2 endpoints", []int{40000, 30001}, true},
	{"long cycle, 5 endpoints", randomWeights(3, 5, 13000, 17000), true},
	{"long cycle, 1000 endpoints", randomWeights(4, 1000, 60, 80), true},
}

func TestWeightedRoundRobinCasesHaveTheirCycle(t *testing.T) {
	for _, tt := range sharesCases {
		sc := newSchedule(weightedPool(tt.weights...))
		if long := sc.table == nil; long != tt.long {
			t.Errorf("%s: cycle of %d turns; long = %v, want %v", tt.name, sc.turns, long, tt.long)
		}
	}
}

func TestWeightedRoundRobinIsNginxOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	var pools [][]int
	for range 200 {
		n := 1 + r.IntN(12)
		w := make([]int, n)
		for i := range w {
			w[i] = r.IntN(1 + r.IntN(30)) // many equal weights and zeros
		}
		pools = append(pools, w)
	}
	pools = append(pools, randomWeights(5, 1000, 0, 10), []int{65535, 1}, []int{1, 1, 2, 65532})
	for k, weights := range pools {
		eps := weightedPool(weights...)
		b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin})
		picks := 2 * sum(weights)
		if got, want := pickIndices(t, b, eps, picks), nginxOrder(weights, picks); !slices.Equal(got, want) {
			at := 0
			for got[at] == want[at] {
				at++
			}
			t.Fatalf("pool %d (weights %v): pick %d of two cycles is e%d, nginx's order has e%d",
				k, weights, at, got[at], want[at])
		}
	}
}

func TestWeightedRoundRobinExactSharesPerCycle(t *testing.T) {
	for _, tt := range sharesCases {
		t.Run(tt.name, func(t *testing.T) {
			eps := weightedPool(tt.weights...)
			b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin})
			cycle := sum(tt.weights)
			for c := range 2 {
				count := make([]int, len(eps))
				for _, i := range pickIndices(t, b, eps, cycle) {
					count[i]++
				}
				for i := range eps {
					if want := eps[i].EffectiveWeight(); count[i] != want {
						t.Fatalf("cycle %d: e%d (weight %d) picked %d times in %d picks, want %d",
							c, i, eps[i].Weight, count[i], cycle, want)
					}
				}
			}
		})
	}
}

// Smooth means interleaved: in every window of consecutive picks, within
// a cycle or across two, each endpoint's count differs from its share of
// the window (window×w/Σw) by less than 2 in nginx's order (its running
// weights stay within ±Σw) and by less than 6 in long cycles (measured:
// at most 1.96 and 4.84 in these pools). So an
// endpoint with weight w takes fewer than 2·Σw/(Σw−w) (6·Σw/(Σw−w)) picks
// in a row: in 1 2 7, at most 6 (nginx's order has at most 3).
func TestWeightedRoundRobinIsSmooth(t *testing.T) {
	for _, tt := range sharesCases {
		t.Run(tt.name, func(t *testing.T) {
			eps := weightedPool(tt.weights...)
			b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin})
			order := pickIndices(t, b, eps, 2*sum(tt.weights))
			limit := 2.0
			if tt.long {
				limit = 6
			}
			if got := windowSpread(order, effective(tt.weights)); got >= limit {
				t.Errorf("an endpoint's count in a window strays %.3f from its share, want < %v", got, limit)
			}
		})
	}
}

func TestWeightedRoundRobinSkipsRejectedKeepingTheOrder(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		excluded []string // by the call
		ejected  []string // by health
	}{
		{"heaviest tried", []int{1, 2, 7}, []string{"e2"}, nil},
		{"lightest tried", []int{1, 2, 7}, []string{"e0"}, nil},
		{"one ejected", []int{3, 1, 4, 1, 5}, nil, []string{"e2"}},
		{"tried and ejected", []int{3, 1, 4, 1, 5, 9, 2, 6}, []string{"e5"}, []string{"e0", "e7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := weightedPool(tt.weights...)
			tr := newTracker(t)
			b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin, Health: tr})
			eject(t, tr, tt.ejected...)
			// The picks are nginx's order with the rejected endpoints'
			// turns left out: the others keep their shares exactly and
			// their interleaving.
			var want []int
			for _, i := range nginxOrder(tt.weights, 3*sum(tt.weights)) {
				if name := eps[i].Name; !slices.Contains(tt.excluded, name) && !slices.Contains(tt.ejected, name) {
					want = append(want, i)
				}
			}
			if got := pickIndices(t, b, eps, len(want), tt.excluded...); !slices.Equal(got, want) {
				t.Errorf("picks = %v\nwant    %v", got, want)
			}
		})
	}
}

// When the endpoints rejected hold most of the weight, a pick may find no
// eligible turn among the scanTurns it looks at and spreads instead; the
// eligible endpoints still share the picks in proportion to their
// weights (within 3 picks), interleaved: the picks come in two streams,
// the order's and spread's, each smooth as nginx's, and in every window an
// endpoint's count strays less than 4 from its share of the window
// (measured: at most 2.4 in these pools).
func TestWeightedRoundRobinSpreadsWhenMostWeightIsRejected(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		excluded []string
		ejected  []string
	}{
		{"heavy one ejected", []int{100, 1, 1, 1}, nil, []string{"e0"}},
		{"heavy one tried", []int{1, 2, 3, 200}, []string{"e3"}, nil},
		{"heavy ones ejected", []int{50, 60, 1, 2, 3, 4}, nil, []string{"e0", "e1"}},
		{"long cycle, heavy one tried", []int{100000, 1, 2}, []string{"e0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := weightedPool(tt.weights...)
			tr := newTracker(t)
			b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin, Health: tr})
			eject(t, tr, tt.ejected...)
			shares := slices.Clone(tt.weights) // what the eligible ones should get
			for i := range eps {
				if slices.Contains(tt.excluded, eps[i].Name) || slices.Contains(tt.ejected, eps[i].Name) {
					shares[i] = 0
				}
			}
			// Some scans must give up: scanTurns turns in a row are the
			// rejected endpoints'.
			sc, run, longest := b.snap.Load().wrr, 0, 0
			for t := range 2 * sc.turns {
				if run++; shares[sc.at(t%sc.turns)] > 0 {
					run = 0
				}
				longest = max(longest, run)
			}
			if longest < scanTurns {
				t.Fatalf("the rejected endpoints' longest run of turns is %d, under scanTurns: no pick spreads", longest)
			}
			total := 0
			for _, w := range shares {
				total += w
			}
			picks := 300 * total
			order := pickIndices(t, b, eps, picks, tt.excluded...)
			count := make([]int, len(eps))
			for _, i := range order {
				count[i]++
			}
			for i := range eps {
				if want := picks * shares[i] / total; count[i] < want-3 || count[i] > want+3 {
					t.Errorf("e%d (weight %d) picked %d times in %d picks, want %d ± 3", i, tt.weights[i], count[i], picks, want)
				}
			}
			if got := windowSpread(order, shares); got >= 4 {
				t.Errorf("an endpoint's count in a window strays %.3f from its share of the eligible weight, want < 4", got)
			}
		})
	}
}

func TestWeightedRoundRobinNothingEligible(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
	}{
		{"cycle shorter than a scan", []int{1, 2, 3}},
		{"cycle longer than a scan", []int{10, 20, 30}},
		{"long cycle", []int{70000, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := weightedPool(tt.weights...)
			tr := newTracker(t)
			b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin, Health: tr, PanicThreshold: -1})
			all := names(eps)
			for range 3 {
				if _, _, err := b.Pick(context.Background(), all); !errors.Is(err, ErrNoEndpoint) {
					t.Fatalf("every endpoint tried: err = %v, want ErrNoEndpoint", err)
				}
			}
			eject(t, tr, all[1:]...)
			if _, _, err := b.Pick(context.Background(), all[:1]); !errors.Is(err, ErrNoEndpoint) {
				t.Fatalf("one tried, the others ejected: err = %v, want ErrNoEndpoint", err)
			}
			if got := pickNames(t, b, 5); !slices.Equal(got, slices.Repeat(all[:1], 5)) {
				t.Errorf("picks with only e0 allowed = %v", got)
			}
		})
	}
}

func TestWeightedRoundRobinUpdateStartsANewCycle(t *testing.T) {
	eps := weightedPool(5, 1, 1)
	b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin})
	pickNames(t, b, 3) // part way through a cycle: e0 e0 e1

	// New weights for the same names take effect at once, from the start
	// of nginx's order for them.
	next := weightedPool(1, 1, 5)
	if err := b.Update(next); err != nil {
		t.Fatal(err)
	}
	want := nginxOrder([]int{1, 1, 5}, 14)
	if got := pickIndices(t, b, next, 14); !slices.Equal(got, want) {
		t.Errorf("after Update to weights 1 1 5: picks = %v, want %v", got, want)
	}

	// Endpoints added and removed: the new set's order, whole cycles exact.
	next = append(weightedPool(4, 0, 2, 3)[1:], sturdy.Endpoint{Name: "new", Weight: 6})
	if err := b.Update(next); err != nil {
		t.Fatal(err)
	}
	weights := []int{0, 2, 3, 6}
	want = nginxOrder(weights, 3*sum(weights))
	if got := pickIndices(t, b, next, len(want)); !slices.Equal(got, want) {
		t.Errorf("after Update to %v: picks = %v, want %v", names(next), got, want)
	}

	// From a table to a long cycle and back.
	long := weightedPool(70000, 3)
	if err := b.Update(long); err != nil {
		t.Fatal(err)
	}
	count := make([]int, 2)
	for _, i := range pickIndices(t, b, long, 70003) {
		count[i]++
	}
	if count[0] != 70000 || count[1] != 3 {
		t.Errorf("a cycle of weights 70000 3 after Update picked them %v times", count)
	}
	if err := b.Update(eps); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(pickNames(t, b, 7), " "), "e0 e0 e1 e0 e2 e0 e0"; got != want {
		t.Errorf("back to weights 5 1 1: picks = %s, want %s", got, want)
	}
}

// Every pick takes a turn of its own from the shared position, so
// concurrent picks that exclude nothing still take every endpoint exactly
// its weight's times per cycle, all together.
func TestWeightedRoundRobinConcurrentPicksShareCycles(t *testing.T) {
	tests := []struct {
		weights []int
		cycles  int
	}{
		{[]int{1, 2, 7}, 400},
		{randomWeights(6, 100, 1, 20), 8},
		{[]int{65600, 1, 3}, 2},
	}
	for _, tt := range tests {
		weights, cycles := tt.weights, tt.cycles
		t.Run(fmt.Sprint(len(weights), " endpoints"), func(t *testing.T) {
			eps := weightedPool(weights...)
			index := make(map[string]int, len(eps))
			for i := range eps {
				index[eps[i].Name] = i
			}
			b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin})
			const workers = 4
			total := sum(weights)
			counts := make([][]int, workers)
			var wg sync.WaitGroup
			for g := range workers {
				counts[g] = make([]int, len(eps))
				wg.Go(func() {
					for range cycles * total / workers {
						ep, done, err := b.Pick(context.Background(), nil)
						if err != nil {
							t.Error(err)
							return
						}
						counts[g][index[ep.Name]]++
						done(sturdy.Outcome{Class: sturdy.Success})
					}
				})
			}
			wg.Wait()
			if cycles*total%workers != 0 {
				t.Fatalf("test picks %d cycles of %d over %d workers unevenly", cycles, total, workers)
			}
			for i := range eps {
				got := 0
				for g := range workers {
					got += counts[g][i]
				}
				if want := cycles * eps[i].EffectiveWeight(); got != want {
					t.Errorf("e%d (weight %d) picked %d times in %d cycles, want %d", i, weights[i], got, cycles, want)
				}
			}
		})
	}
}

// Concurrent picks with different exclusions, some of which spread, and an
// Update halfway: no pick returns an endpoint its call excluded.
func TestWeightedRoundRobinConcurrentExclusions(t *testing.T) {
	eps := weightedPool(100, 1, 2, 3, 50)
	b := mustNew(t, Config{Endpoints: eps, Policy: WeightedRoundRobin})
	var wg sync.WaitGroup
	for g := range 4 {
		exclude := []string{eps[g].Name, eps[(g+1)%len(eps)].Name}
		if g == 3 {
			exclude = []string{"e0", "e4"} // most of the weight: picks spread
		}
		wg.Go(func() {
			for k := range 5000 {
				ep, done, err := b.Pick(context.Background(), exclude)
				if err != nil {
					t.Error(err)
					return
				}
				if slices.Contains(exclude, ep.Name) {
					t.Errorf("pick %d excluding %v returned %s", k, exclude, ep.Name)
					return
				}
				done(sturdy.Outcome{})
			}
		})
	}
	if err := b.Update(weightedPool(1, 100, 2, 3, 50)); err != nil {
		t.Error(err)
	}
	wg.Wait()
}

func TestWeightedRoundRobinPicksDoNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	tests := []struct {
		name    string
		weights []int
		exclude []string
	}{
		{"table", []int{5, 1, 1}, []string{"e1"}},
		{"long cycle", []int{70000, 1, 2}, []string{"e1"}},
		{"spread", []int{100, 1, 1}, []string{"e0"}},
		{"long cycle, spread", []int{70000, 1, 2}, []string{"e0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, Config{Endpoints: weightedPool(tt.weights...), Policy: WeightedRoundRobin})
			ctx := context.Background()
			allocs := testing.AllocsPerRun(1000, func() {
				_, done, err := b.Pick(ctx, tt.exclude)
				if err != nil {
					t.Fatal(err)
				}
				done(sturdy.Outcome{})
			})
			if allocs != 0 {
				t.Errorf("Pick+done allocates %v times, want 0", allocs)
			}
		})
	}
}

// The Fibonacci-hashing step visits every turn (coprime with the cycle)
// and falls evenly: the partial quotients of turns/mul stay small (5 is
// the least some cycles allow, Zaremba's bound).
func TestFibonacciStep(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	cycles := []uint64{1, 2, 3, 4, 5, 6, 54, 150, maxTable + 1, 1<<31 - 1, 1 << 30}
	for range 2000 {
		cycles = append(cycles, maxTable+1+r.Uint64N(1<<31-maxTable-1))
	}
	for n := uint64(7); n < 3000; n++ {
		cycles = append(cycles, n)
	}
	for _, n := range cycles {
		m := fibonacciStep(n)
		if n == 1 {
			if m != 0 {
				t.Errorf("fibonacciStep(1) = %d, want 0", m)
			}
			continue
		}
		q, coprime := maxQuotient(n, m)
		if m == 0 || m >= n || !coprime || q > 5 {
			t.Errorf("fibonacciStep(%d) = %d: coprime %v, largest partial quotient %d; want a coprime step below %d with quotients ≤ 5", n, m, coprime, q, n)
		}
	}
}
