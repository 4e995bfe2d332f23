package balancer

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/prefix"
)

// keys returns n prefix keys of the given number of blocks, all distinct
// from their first block on.
func keys(seed uint64, n, blocks int) []Key {
	r := rand.New(rand.NewPCG(seed, seed))
	out := make([]Key, n)
	for i := range out {
		b := make([]uint64, blocks)
		for j := range b {
			b[j] = r.Uint64()
		}
		out[i] = PrefixKey(b)
	}
	return out
}

// extend returns k's blocks followed by more distinct ones: the key of a
// longer prompt that starts with k's.
func extend(k Key, more int, seed uint64) Key {
	r := rand.New(rand.NewPCG(seed, 7))
	b := slices.Clone(k.blocks)
	for range more {
		b = append(b, r.Uint64())
	}
	return PrefixKey(b)
}

func endpointNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("vllm-%d", i)
	}
	return out
}

func affinity(t testing.TB, names []string, cfg Config) *Balancer {
	t.Helper()
	cfg.Endpoints = pool(names...)
	cfg.Policy = PrefixAffinity
	return mustNew(t, cfg)
}

// pickKey picks for k, reports success at once and returns the name.
func pickKey(t testing.TB, b *Balancer, k Key, exclude ...string) string {
	t.Helper()
	ep, done, err := b.Pick(WithKey(context.Background(), k), exclude)
	if err != nil {
		t.Fatalf("Pick(exclude %v): %v", exclude, err)
	}
	done(sturdy.Outcome{Class: sturdy.Success})
	return ep.Name
}

func TestAffinityClientsAgree(t *testing.T) {
	names := endpointNames(7)
	shuffled := slices.Clone(names)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	// Two processes: built apart, endpoints listed in another order,
	// different seeds for their random choices.
	a := affinity(t, names, Config{Seed: 1})
	b := affinity(t, shuffled, Config{Seed: 2})
	for i, k := range keys(3, 500, DefaultAffinityMinBlocks+2) {
		if x, y := pickKey(t, a, k), pickKey(t, b, k); x != y {
			t.Fatalf("key %d: client a picked %s, client b %s", i, x, y)
		}
	}
	for i := range 500 {
		k := SessionKey(fmt.Sprint("conversation-", i))
		if x, y := pickKey(t, a, k), pickKey(t, b, k); x != y {
			t.Fatalf("session %d: client a picked %s, client b %s", i, x, y)
		}
	}
}

func TestAffinitySameKeySameReplica(t *testing.T) {
	b := affinity(t, endpointNames(5), Config{})
	for _, k := range keys(4, 50, DefaultAffinityMinBlocks+1) {
		first := pickKey(t, b, k)
		for range 20 {
			if got := pickKey(t, b, k); got != first {
				t.Fatalf("key went to %s, then %s", first, got)
			}
		}
	}
}

func TestAffinitySharedPrefixSharesReplica(t *testing.T) {
	// Prompts that share their first Affinity.MinBlocks blocks (a system
	// prompt) agree whatever follows; ones that differ earlier need not.
	b := affinity(t, endpointNames(8), Config{Affinity: Affinity{MinBlocks: 3, Index: -1}})
	for i, base := range keys(5, 100, 3) {
		want := pickKey(t, b, base)
		for j := range 5 {
			if got := pickKey(t, b, extend(base, 1+j, uint64(i*10+j))); got != want {
				t.Fatalf("prompt %d extended by %d blocks went to %s, its prefix to %s", i, 1+j, got, want)
			}
		}
	}
}

func TestAffinitySpreadsKeys(t *testing.T) {
	for _, n := range []int{3, 10, 40} { // 3: ranked on each pick; 10, 40: from the table
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			names := endpointNames(n)
			b := affinity(t, names, Config{})
			counts := map[string]int{}
			const keyCount = 20000
			for _, k := range keys(6, keyCount, DefaultAffinityMinBlocks) {
				counts[pickKey(t, b, k)]++
			}
			want := keyCount / n
			for _, name := range names {
				if c := counts[name]; math.Abs(float64(c-want)) > 6*math.Sqrt(float64(want)) {
					t.Errorf("%s got %d of %d keys, want about %d", name, c, keyCount, want)
				}
			}
		})
	}
}

func TestAffinityStableWhenPoolChanges(t *testing.T) {
	const n, keyCount = 10, 10000
	names := endpointNames(n)
	ks := keys(7, keyCount, DefaultAffinityMinBlocks)
	route := func(names []string) []string {
		b := affinity(t, names, Config{Affinity: Affinity{Index: -1}}) // hashing alone
		out := make([]string, len(ks))
		for i, k := range ks {
			out[i] = pickKey(t, b, k)
		}
		return out
	}
	before := route(names)

	t.Run("removed", func(t *testing.T) {
		gone := names[3]
		after := route(slices.Delete(slices.Clone(names), 3, 4))
		moved := 0
		for i := range ks {
			switch {
			case before[i] == gone:
				moved++
			case after[i] != before[i]:
				t.Fatalf("key %d moved from %s to %s though %s was removed", i, before[i], after[i], gone)
			}
		}
		if share := float64(moved) / keyCount; math.Abs(share-1.0/n) > 0.02 {
			t.Errorf("%.3f of keys moved, want about 1/%d", share, n)
		}
	})
	t.Run("added", func(t *testing.T) {
		after := route(append(slices.Clone(names), "vllm-new"))
		moved := 0
		for i := range ks {
			if after[i] == before[i] {
				continue
			}
			if after[i] != "vllm-new" {
				t.Fatalf("key %d moved from %s to %s, not to the new endpoint", i, before[i], after[i])
			}
			moved++
		}
		if share := float64(moved) / keyCount; math.Abs(share-1.0/(n+1)) > 0.02 {
			t.Errorf("%.3f of keys moved, want about 1/%d", share, n+1)
		}
	})
	t.Run("updated", func(t *testing.T) {
		// Update gives the same routes as a Balancer built anew.
		b := affinity(t, names, Config{Affinity: Affinity{Index: -1}})
		next := slices.Delete(slices.Clone(names), 3, 4)
		if err := b.Update(pool(next...)); err != nil {
			t.Fatal(err)
		}
		want := route(next)
		for i, k := range ks[:1000] {
			if got := pickKey(t, b, k); got != want[i] {
				t.Fatalf("key %d: %s after Update, %s from a new Balancer", i, got, want[i])
			}
		}
	})
}

// boundOK reports whether every endpoint's attempts in flight are within
// (1+ε)·mean + slack.
func boundOK(b *Balancer, eps, slack float64) (ok bool, loads []int64, total int64) {
	s := b.snap.Load()
	for _, l := range s.lds {
		loads = append(loads, l.inflight())
		total += l.inflight()
	}
	mean := float64(total) / float64(len(loads))
	for _, l := range loads {
		if float64(l) > (1+eps)*mean+slack {
			return false, loads, total
		}
	}
	return true, loads, total
}

// TestAffinitySpreadsAHotKey pins what a key that takes every pick does to
// the pool: warm for its first picks, it may load its first replica up to
// the warm bound (⌈(1+ε_w)·m/n⌉ + 1, within (1+ε_w)·mean + 2); hot once
// its picks are close enough, it goes wherever an endpoint holds fewer
// than ⌈m/n⌉, so that 300 attempts in flight end up 60 on each of 5
// endpoints, whatever LoadBound.
func TestAffinitySpreadsAHotKey(t *testing.T) {
	for _, eps := range []float64{0, 0.1, 1} {
		t.Run(fmt.Sprint(eps), func(t *testing.T) {
			b := affinity(t, endpointNames(5), Config{Affinity: Affinity{LoadBound: eps}})
			hot := keys(8, 1, DefaultAffinityMinBlocks+2)[0]
			var held []func(sturdy.Outcome)
			for i := range 300 {
				_, done, err := b.Pick(WithKey(context.Background(), hot), nil)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, done)
				if ok, loads, _ := boundOK(b, DefaultAffinityWarmLoadBound, 2); !ok {
					t.Fatalf("after %d picks in flight: loads %v exceed (1+%v)·mean+2", i+1, loads, DefaultAffinityWarmLoadBound)
				}
			}
			for _, l := range b.snap.Load().lds {
				if got := l.inflight(); got != 60 {
					t.Errorf("300 attempts of a hot key in flight on 5 endpoints: one holds %d, want 60 on each", got)
				}
			}
			for _, done := range held {
				done(sturdy.Outcome{Class: sturdy.Success})
			}
			if got := b.p.total.Load(); got != 0 {
				t.Errorf("pool total after every attempt ended = %d, want 0", got)
			}
		})
	}
}

// hold puts n attempts in flight on the named endpoint, with no key (P2C
// with every other endpoint excluded), and returns their done funcs.
func hold(t *testing.T, b *Balancer, name string, n int) []func(sturdy.Outcome) {
	t.Helper()
	var others []string
	for _, e := range b.snap.Load().entries {
		if e.Name != name {
			others = append(others, e.Name)
		}
	}
	var out []func(sturdy.Outcome)
	for range n {
		ep, done, err := b.Pick(context.Background(), others)
		if err != nil || ep.Name != name {
			t.Fatalf("Pick excluding all but %s = %v, %v", name, ep, err)
		}
		out = append(out, done)
	}
	return out
}

// TestAffinityBoundDependsOnHeat pins the three bounds on a key's first
// replica F, on 8 endpoints each holding 4 attempts and F more:
//
//   - cold (never picked): ⌈1.25·m/n⌉ + 1, so with F at 7 (m = 36 with
//     the pick, bound 7) the key goes elsewhere, and at 6 (bound 7) to F;
//   - warm (picked once before): ⌈2·m/n⌉ + 1 = 10 at F = 7 or 9, so the key
//     stays on F; at F = 10 (m = 39, bound 11) still, at 11 (bound 11) not;
//   - hot (picked on every other pick): ⌈m/n⌉, so at F = 5 (m = 34,
//     bound 5) the key goes elsewhere where a cold key would stay.
func TestAffinityBoundDependsOnHeat(t *testing.T) {
	names := endpointNames(8)
	k := keys(21, 1, DefaultAffinityMinBlocks)[0]
	other := keys(22, 1, DefaultAffinityMinBlocks)[0]
	first := pickKey(t, affinity(t, names, Config{}), k)
	cases := []struct {
		name string
		heat heat
		f    int // attempts in flight on F
		want bool
	}{
		{"cold under the bound", cold, 6, true},
		{"cold at the bound", cold, 7, false},
		{"warm past the cold bound", warm, 7, true},
		{"warm under its bound", warm, 10, true},
		{"warm at its bound", warm, 11, false},
		{"hot at the mean", hot, 5, false},
		{"hot under the mean", hot, 4, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := affinity(t, names, Config{Affinity: Affinity{Index: -1}})
			switch c.heat {
			case warm:
				pickKey(t, b, k)
			case hot:
				for range 40 {
					pickKey(t, b, k)
					pickKey(t, b, other)
				}
			}
			var held []func(sturdy.Outcome)
			for _, n := range names {
				extra := 4
				if n == first {
					extra = c.f
				}
				held = append(held, hold(t, b, n, extra)...)
			}
			e := b.p.heat.entries[k.blocks[DefaultAffinityMinBlocks-1]&(heatEntries-1)].Load()
			ep, done, err := b.Pick(WithKey(context.Background(), k), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := ep.Name == first; got != c.want {
				t.Errorf("with %d in flight on the first replica %s and 4 on the others, the key went to %s (heat entry %#x); want first replica: %v", c.f, first, ep.Name, e, c.want)
			}
			done(sturdy.Outcome{})
			for _, d := range held {
				d(sturdy.Outcome{})
			}
		})
	}
}

// TestAffinityBoundHasOneAttemptOfSlack pins the slack: with one attempt
// in flight in a pool of 8, ⌈1.25·m/n⌉ is 1, and without the slack a new
// key would leave its first replica for an idle one.
func TestAffinityBoundHasOneAttemptOfSlack(t *testing.T) {
	names := endpointNames(8)
	k := keys(23, 1, DefaultAffinityMinBlocks)[0]
	first := pickKey(t, affinity(t, names, Config{}), k)
	b := affinity(t, names, Config{})
	held := hold(t, b, first, 1)
	if got := pickKey(t, b, k); got != first {
		t.Errorf("with one attempt in flight on %s, a new key went to %s; want %s", first, got, first)
	}
	held = append(held, hold(t, b, first, 1)...)
	if got := pickKey(t, b, k); got == first {
		t.Errorf("with two attempts in flight on %s and none elsewhere (bound ⌈1.25·3/8⌉ + 1 = 2), the key still went there", first)
	}
	for _, d := range held {
		d(sturdy.Outcome{})
	}
}

func TestHeatTable(t *testing.T) {
	const n = 8
	window := uint64(warmWindow * n)
	cases := []struct {
		name  string
		ticks []uint64 // picks of the key
		want  heat     // heat at the last
	}{
		{"first pick", []uint64{5}, cold},
		{"picked again at once", []uint64{5, 6}, warm},
		{"picked again at the window's end", []uint64{5, 5 + window}, warm},
		{"picked again past the window", []uint64{5, 6 + window}, cold},
		{"every other pick for a while", every(1, 2, 40), hot},
		{"every other pick, a few times", every(1, 2, 10), warm},
		{"every n picks", every(1, n, 60), hot},
		{"every 2n-2 picks", every(1, 2*n-2, 60), hot},
		{"every 3n picks", every(1, 3*n, 60), warm},
		{"hot, then quiet for a window", append(every(1, 2, 40), 80+window), cold},
		{"across the counter's wrap", []uint64{1<<32 - 3, 1<<32 + 2}, warm},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHeatTable()
			var got heat
			for _, tick := range c.ticks {
				got = h.observe(0xfeed, tick, n)
			}
			if got != c.want {
				t.Errorf("heat after picks at %v = %d, want %d", c.ticks, got, c.want)
			}
			if other := h.observe(0xbeef, c.ticks[len(c.ticks)-1]+1, n); other != cold {
				t.Errorf("another key's first pick = %d, want cold", other)
			}
		})
	}
}

// every returns count ticks from start, step apart.
func every(start, step uint64, count int) []uint64 {
	out := make([]uint64, count)
	for i := range out {
		out[i] = start + uint64(i)*step
	}
	return out
}

func TestAffinityBoundsConcurrentPicks(t *testing.T) {
	b := affinity(t, endpointNames(6), Config{})
	hot := SessionKey("everyone")
	ctx := WithKey(context.Background(), hot)
	var mu sync.Mutex
	var held []func(sturdy.Outcome)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, done, err := b.Pick(ctx, nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				held = append(held, done)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok, loads, total := boundOK(b, DefaultAffinityLoadBound, 1); !ok || total != 800 {
		t.Errorf("800 concurrent picks of one key left loads %v (total %d); want each within 1.25·mean+1", loads, total)
	}
	for _, done := range held {
		done(sturdy.Outcome{})
	}
}

// TestAffinityUnbounded pins the bounds' off switches: a negative
// LoadBound lifts every bound, hot keys' too (50 picks of one key in flight
// stay on one replica); a negative or infinite WarmLoadBound lifts the warm
// bound alone (a warm key, not yet hot after 12 picks, stays on its
// replica, where the default bound moves it after 3, to the replica the
// index says it went to last).
func TestAffinityUnbounded(t *testing.T) {
	cases := []struct {
		name     string
		aff      Affinity
		picks    int
		replicas int
	}{
		{"negative LoadBound", Affinity{LoadBound: -1}, 50, 1},
		{"negative WarmLoadBound", Affinity{WarmLoadBound: -1}, 12, 1},
		{"infinite WarmLoadBound", Affinity{WarmLoadBound: math.Inf(1)}, 12, 1},
		{"infinite bounds", Affinity{LoadBound: math.Inf(1), WarmLoadBound: math.Inf(1)}, 12, 1},
		{"default bounds", Affinity{}, 12, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := affinity(t, endpointNames(4), Config{Affinity: c.aff})
			k := SessionKey("everyone")
			seen := map[string]int{}
			var held []func(sturdy.Outcome)
			for range c.picks {
				ep, done, err := b.Pick(WithKey(context.Background(), k), nil)
				if err != nil {
					t.Fatal(err)
				}
				seen[ep.Name]++
				held = append(held, done)
			}
			if len(seen) != c.replicas {
				t.Errorf("%d picks in flight of one key went to %v, want %d replicas", c.picks, seen, c.replicas)
			}
			for _, done := range held {
				done(sturdy.Outcome{})
			}
		})
	}
}

func TestAffinityFallsBackToP2C(t *testing.T) {
	short := keys(9, 1, DefaultAffinityMinBlocks-1)[0]
	for name, k := range map[string]Key{"no key": {}, "short key": short, "empty session": SessionKey("")} {
		t.Run(name, func(t *testing.T) {
			// In a bubble with one seed, PrefixAffinity without a usable
			// key picks exactly as P2CPeakEWMA does, latencies and all.
			run := func(p Policy) (got []string) {
				synctest.Test(t, func(t *testing.T) {
					eps := pool("a", "b", "c", "d", "e")
					b := mustNew(t, Config{Endpoints: eps, Policy: p, Seed: 42})
					for i := range 200 {
						ep, done, err := b.Pick(WithKey(context.Background(), k), nil)
						if err != nil {
							t.Fatal(err)
						}
						got = append(got, ep.Name)
						done(sturdy.Outcome{Class: sturdy.Success, Latency: time.Millisecond * time.Duration(1+int(ep.Name[0]-'a')*(i%3))})
					}
				})
				return got
			}
			if a, p2c := run(PrefixAffinity), run(P2CPeakEWMA); !slices.Equal(a, p2c) {
				t.Errorf("picks differ from P2C Peak-EWMA's:\n%v\n%v", a, p2c)
			}
		})
	}
}

// hrwOrder is the full rendezvous order of names for k, computed here from
// the definition.
func hrwOrder(k Key, minBlocks int, names []string) []string {
	anchor := k.session
	if k.kind == prefixKey {
		anchor = k.blocks[minBlocks-1]
	}
	slot := anchor >> (64 - slotBits)
	sk := prefix.Mix(slot, slotSeed)
	out := slices.Clone(names)
	slices.SortFunc(out, func(x, y string) int {
		sx, sy := score(sk, prefix.Sum64(nameSeed, x)), score(sk, prefix.Sum64(nameSeed, y))
		switch {
		case sx > sy:
			return -1
		case sx < sy:
			return 1
		}
		return 0
	})
	return out
}

func TestAffinityFailoverFollowsTheOrder(t *testing.T) {
	names := endpointNames(40) // beyond the 4 cached candidates too
	b := affinity(t, names, Config{Affinity: Affinity{Index: -1}})
	for _, k := range append(keys(10, 20, DefaultAffinityMinBlocks), SessionKey("s1"), SessionKey("s2")) {
		want := hrwOrder(k, DefaultAffinityMinBlocks, names)
		var tried []string
		for range 8 {
			tried = append(tried, pickKey(t, b, k, tried...))
		}
		if !slices.Equal(tried, want[:8]) {
			t.Fatalf("attempts went to %v, want the key's order %v", tried, want[:8])
		}
	}
}

func TestAffinityHealth(t *testing.T) {
	names := endpointNames(6)
	tr := newTracker(t)
	b := affinity(t, names, Config{Health: tr, Affinity: Affinity{Index: -1}})
	k := keys(11, 1, DefaultAffinityMinBlocks)[0]
	want := hrwOrder(k, DefaultAffinityMinBlocks, names)
	eject(t, tr, want[0])
	if got := pickKey(t, b, k); got != want[1] {
		t.Errorf("with %s ejected the key went to %s, want the next in its order, %s", want[0], got, want[1])
	}
	if got := pickKey(t, b, k, want[1]); got != want[2] {
		t.Errorf("with %s ejected and %s tried: %s, want %s", want[0], want[1], got, want[2])
	}
	eject(t, tr, want[1:4]...) // 4 of 6 ejected: panic mode, health ignored
	if got := pickKey(t, b, k); got != want[0] {
		t.Errorf("in panic mode the key went to %s, want its first replica %s", got, want[0])
	}
}

// The index sends a conversation's next turn where its last turn went
// when the key's first replica cannot take it; when the first can, the
// turn goes there, as it does from every client.
func TestAffinityIndexFollowsTheConversation(t *testing.T) {
	names := endpointNames(6)
	turn1 := keys(12, 1, DefaultAffinityMinBlocks+2)[0]
	turn2 := extend(turn1, 4, 1) // the next turn: turn 1's prompt and more
	order := hrwOrder(turn1, DefaultAffinityMinBlocks, names)

	// remembered returns a Balancer whose index holds turn 1 on order[2]:
	// turn 1 failed over from its first two replicas.
	remembered := func(t *testing.T) *Balancer {
		b := affinity(t, names, Config{})
		if got := pickKey(t, b, turn1, order[0], order[1]); got != order[2] {
			t.Fatalf("turn 1 went to %s, want %s", got, order[2])
		}
		return b
	}
	b := remembered(t)
	if got := pickKey(t, b, turn2, order[0]); got != order[2] {
		t.Errorf("with %s excluded turn 2 went to %s; want %s, where turn 1 went", order[0], got, order[2])
	}
	if got := pickKey(t, b, turn2); got != order[0] {
		t.Errorf("turn 2 went to %s; want the key's first replica %s", got, order[0])
	}
	// Without the index, hashing sends it to the key's next replica.
	noIndex := affinity(t, names, Config{Affinity: Affinity{Index: -1}})
	pickKey(t, noIndex, turn1, order[0], order[1])
	if got := pickKey(t, noIndex, turn2, order[0]); got != order[1] {
		t.Errorf("without the index turn 2 went to %s, want %s", got, order[1])
	}

	t.Run("replica removed", func(t *testing.T) {
		b := remembered(t)
		next := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == order[2] })
		if err := b.Update(pool(next...)); err != nil {
			t.Fatal(err)
		}
		if got := pickKey(t, b, turn2, order[0]); got != order[1] {
			t.Errorf("after %s was removed turn 2 went to %s, want the key's next replica %s", order[2], got, order[1])
		}
	})
	t.Run("replica too busy", func(t *testing.T) {
		b := remembered(t)
		// Load order[2] past the bound with attempts of other requests.
		var held []func(sturdy.Outcome)
		for range 3 {
			ep, done, err := b.Pick(context.Background(), except(names, order[2]))
			if err != nil || ep.Name != order[2] {
				t.Fatalf("setup: picked %v, %v", ep, err)
			}
			held = append(held, done)
		}
		if got := pickKey(t, b, turn2, order[0]); got != order[1] {
			t.Errorf("with %s holding 3 of 4 attempts turn 2 went to %s, want %s", order[2], got, order[1])
		}
		for _, done := range held {
			done(sturdy.Outcome{})
		}
	})
}

// except returns names without keep: an exclusion list that leaves only
// keep.
func except(names []string, keep string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == keep })
}

func TestAffinityUpdateWithAttemptsInFlight(t *testing.T) {
	b := affinity(t, endpointNames(4), Config{})
	var held []func(sturdy.Outcome)
	for _, k := range keys(13, 20, DefaultAffinityMinBlocks) {
		_, done, err := b.Pick(WithKey(context.Background(), k), nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, done)
	}
	if err := b.Update(pool("vllm-0", "other")); err != nil {
		t.Fatal(err)
	}
	for _, done := range held {
		done(sturdy.Outcome{Class: sturdy.Success})
	}
	if got := b.p.total.Load(); got != 0 {
		t.Errorf("pool total after all attempts ended = %d, want 0", got)
	}
}

func TestAffinityConcurrentWithUpdate(t *testing.T) {
	sets := [][]string{endpointNames(3), endpointNames(40), {"vllm-2"}}
	b := affinity(t, sets[0], Config{})
	ks := append(keys(14, 64, DefaultAffinityMinBlocks+2), SessionKey("a"), SessionKey("b"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, done, err := b.Pick(WithKey(context.Background(), ks[(i+w)%len(ks)]), []string{"vllm-1"})
				if err == nil {
					done(sturdy.Outcome{Class: sturdy.Success})
				}
			}
		})
	}
	for i := range 300 {
		if err := b.Update(pool(sets[i%len(sets)]...)); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if got := b.p.total.Load(); got != 0 {
		t.Errorf("pool total after all attempts ended = %d, want 0", got)
	}
}

func TestKeyConstructors(t *testing.T) {
	if k := PrefixKey(nil); k.kind != noKey {
		t.Error("PrefixKey(nil) is a key")
	}
	if k := SessionKey(""); k.kind != noKey {
		t.Error(`SessionKey("") is a key`)
	}
	long := make([]uint64, 100)
	if k := PrefixKey(long); len(k.blocks) != maxKeyBlocks {
		t.Errorf("PrefixKey of 100 blocks keeps %d, want %d", len(k.blocks), maxKeyBlocks)
	}
	if SessionKey("a").session == SessionKey("b").session {
		t.Error("two sessions hash alike")
	}
	if got := keyOf(WithKey(context.Background(), SessionKey("a"))); got.kind != sessionKey || got.session != SessionKey("a").session {
		t.Errorf("keyOf(WithKey(k)) = %v, want k", got)
	}
}

func TestAffinityPickDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	for _, n := range []int{5, 40} {
		for name, k := range map[string]Key{"prefix": keys(15, 1, DefaultAffinityMinBlocks+8)[0], "session": SessionKey("s"), "none": {}} {
			t.Run(fmt.Sprint(name, "/", n), func(t *testing.T) {
				b := affinity(t, endpointNames(n), Config{})
				ctx := WithKey(context.Background(), k)
				exclude := []string{"vllm-1"}
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
}

// An Update that keeps the names in their order keeps the snapshot's
// rankings (the 512 KiB table of a large pool), since they depend on the
// names alone; one that changes them ranks afresh.
func TestAffinityUpdateKeepsRankingsOfTheSameNames(t *testing.T) {
	names := endpointNames(16)
	b := affinity(t, names, Config{})
	k := keys(16, 1, DefaultAffinityMinBlocks)[0]
	first := pickKey(t, b, k)
	rv := b.snap.Load().rv
	if rv.table == nil {
		t.Fatal("a pool of 16 has no table")
	}
	moved := pool(names...)
	for i := range moved {
		moved[i].Address = "http://10.0.0.1:" + strconv.Itoa(8000+i)
	}
	if err := b.Update(moved); err != nil {
		t.Fatal(err)
	}
	if b.snap.Load().rv != rv {
		t.Error("an Update of addresses alone ranked the pool afresh")
	}
	if got := pickKey(t, b, k); got != first {
		t.Errorf("key moved from %s to %s on an Update of addresses", first, got)
	}
	reversed := slices.Clone(names)
	slices.Reverse(reversed)
	if err := b.Update(pool(reversed...)); err != nil {
		t.Fatal(err)
	}
	if b.snap.Load().rv == rv {
		t.Error("an Update that reordered the names kept the old rankings")
	}
	if got := pickKey(t, b, k); got != first {
		t.Errorf("key moved from %s to %s when the names were reordered", first, got)
	}
}
