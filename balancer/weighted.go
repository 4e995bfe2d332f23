package balancer

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sturdyai/sturdy"
)

// maxTable is the longest cycle WeightedRoundRobin keeps as a table of
// nginx's order: 128 KiB of uint16 turns, and at most about √(2·maxTable)
// distinct weights to compare per turn while building it (nginxTable).
// Every endpoint has at least one turn, so the endpoints of a tabled
// snapshot number at most maxTable and their indices fit a uint16.
const maxTable = 1 << 16

// scanTurns is how many turns a pick looks at for an endpoint the filter
// accepts before it falls back to spread. In nginx's order a run of one
// endpoint's turns is shorter than 2·Σw/(Σw−w), so the scan only gives up
// when the endpoints the filter rejects hold most of the weight.
const scanTurns = 16

// golden is 1/φ, the fraction of the cycle that Fibonacci hashing steps by.
const golden = 0.6180339887498949

// schedule is WeightedRoundRobin's order for one snapshot: a cycle of
// turns in which endpoint i has w[i] turns, its weight over the weights'
// greatest common divisor, so that every Σweights picks (whole cycles)
// take each endpoint exactly its weight's times when all are eligible. A
// pick takes the next turn from one atomic position, as RoundRobin takes
// the next endpoint: no lock, no allocation, and the same cost at 3 as at
// 1000 endpoints (BenchmarkPickDone and BenchmarkPickDoneSerial,
// weighted_round_robin/3 against /1000), where running nginx's algorithm
// on every pick scans them all. A new snapshot starts a new cycle.
//
// The model is nginx's smooth weighted round-robin
// (ngx_http_upstream_get_peer), computed ahead. A cycle of up to maxTable
// turns (weights that, over their greatest common divisor, sum to at most
// 65536) is a table of nginx's order, exactly: weights 5,1,1 give
// a a b a c a a, and in every window of consecutive picks an endpoint's
// count is within 2 of window×w/Σw. A longer cycle would need too large a
// table: turn t goes to the endpoint whose share of [0, turns) holds
// t·mul mod turns, a permutation of the cycle that steps through the
// shares by the golden ratio (Fibonacci hashing, Knuth, TAOCP vol. 3,
// §6.4), found by binary search over the shares, O(log n). That is as
// exact per cycle but not nginx's order, and a little less smooth: in the
// tests' pools windows stray less than 6 from the share, and the bound
// grows with log(turns).
//
// An endpoint the filter rejects (tried by this call, or not allowed by
// health) loses its turn to the next turn in the order, and the position
// moves past the turns skipped, as in pickRoundRobin: while the same
// endpoints are rejected, the picks are the order without their turns, so
// the others keep exactly their relative shares and their interleaving.
// When all scanTurns turns from the position are rejected endpoints'
// (those hold most of the weight), the pick falls back to spread, nginx's
// algorithm over the eligible endpoints, O(n) under a lock.
type schedule struct {
	turns uint64   // length of the cycle, Σw
	w     []uint32 // turns per cycle of each endpoint: its weight over the weights' gcd
	table []uint16 // nginx's order, when turns ≤ maxTable
	bound []uint32 // otherwise: bound[i] = w[0] + … + w[i],
	mul   uint64   // and the Fibonacci-hashing step, coprime with turns

	// The next turn, counted from the cycle's start. Padding it onto a
	// cache line of its own, as Balancer.rr is, made no difference in
	// BenchmarkPickDone/weighted_round_robin (2 cores).
	pos atomic.Uint64

	// spread's running weights (nginx's current_weight).
	mu  sync.Mutex
	cur []int64
}

// newSchedule returns the order of eps, or nil for an empty pool.
func newSchedule(eps []sturdy.Endpoint) *schedule {
	if len(eps) == 0 {
		return nil
	}
	g := 0
	for i := range eps {
		g = gcd(g, eps[i].EffectiveWeight())
	}
	sc := &schedule{w: make([]uint32, len(eps)), cur: make([]int64, len(eps))}
	for i := range eps {
		sc.w[i] = uint32(eps[i].EffectiveWeight() / g)
		sc.turns += uint64(sc.w[i])
	}
	if sc.turns <= maxTable {
		sc.table = nginxTable(sc.w, sc.turns)
		return sc
	}
	sc.bound = make([]uint32, len(eps))
	var sum uint32
	for i, w := range sc.w {
		sum += w // validate keeps the total weight within MaxInt32
		sc.bound[i] = sum
	}
	sc.mul = fibonacciStep(sc.turns)
	return sc
}

// pickWeighted takes the next turn of s's schedule that f accepts.
func (s *snapshot) pickWeighted(f *filter) int {
	if s.wrr == nil {
		return -1 // empty pool
	}
	return s.wrr.pick(s, f)
}

// pick returns the endpoint of the next turn f accepts, or -1 if f
// accepts none of s.
func (sc *schedule) pick(s *snapshot, f *filter) int {
	base := sc.pos.Add(1) - 1
	t := base % sc.turns
	rejected := -1 // a run of one endpoint's turns asks f once
	for k := range min(scanTurns, sc.turns) {
		i := sc.at(t)
		if i != rejected {
			if f.ok(s, i) {
				if k > 0 {
					sc.pos.Add(k)
				}
				return i
			}
			rejected = i
		}
		if t++; t == sc.turns {
			t = 0
		}
	}
	if sc.turns <= scanTurns {
		return -1 // the scan saw the whole cycle, so every endpoint
	}
	sc.pos.Add(scanTurns - 1) // the turns scanned are gone too
	return sc.spread(s, f)
}

// at returns the endpoint of turn t, t < turns.
func (sc *schedule) at(t uint64) int {
	if sc.table != nil {
		return int(sc.table[t])
	}
	// The first endpoint whose share ends after the hashed turn.
	i, _ := slices.BinarySearch(sc.bound, uint32(sc.hash(t))+1)
	return i
}

// hash is turn t's place in the Fibonacci-hashed permutation of the cycle.
func (sc *schedule) hash(t uint64) uint64 {
	return t * sc.mul % sc.turns // both below 2³¹: no overflow
}

// spread picks when the scanTurns turns from the position all belong to
// endpoints f rejects, that is when those hold most of the weight: it runs
// nginx's algorithm itself over the eligible endpoints, with running
// weights of its own that only spread picks move, so that these picks too
// go to the eligible endpoints in proportion to their weights,
// interleaved, and a rejected endpoint's running weight does not grow.
// It asks f about every endpoint and takes a lock, O(n), as every pick
// did before the schedule.
func (sc *schedule) spread(s *snapshot, f *filter) int {
	n := len(sc.w)
	// Ask health and the exclusion list before taking the lock:
	// Member.Allowed may report a state change to user code.
	var buf [16]uint64 // a bitset on the stack for up to 1024 endpoints
	var ok []uint64
	if words := (n + 63) / 64; words <= len(buf) {
		ok = buf[:words]
	} else {
		ok = make([]uint64, words)
	}
	found := false
	for i := range n {
		if f.ok(s, i) {
			ok[i/64] |= 1 << (i % 64)
			found = true
		}
	}
	if !found {
		return -1
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	best, total := -1, int64(0)
	for i := range n {
		if ok[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		w := int64(sc.w[i])
		sc.cur[i] += w
		total += w
		if best < 0 || sc.cur[i] > sc.cur[best] {
			best = i
		}
	}
	sc.cur[best] -= total
	return best
}

// nginxTable is one cycle of nginx's smooth weighted round-robin over
// weights w summing to turns: before turn t (from 1) endpoint i's running
// weight is t·w[i] − turns·(its turns so far), and the largest wins, the
// first on ties. Endpoints of equal weight have parallel running weights,
// so they win in index order: each weight is a round-robin queue, and a
// turn compares only the k queues' heads, O(turns·k) with k ≤ √(2·turns)
// distinct weights, rather than all n endpoints. The slowest table to
// build, BenchmarkNewSchedule/distinct (361 weights), takes about 30 ms;
// BenchmarkPickDone's pool of 1000 endpoints, about 60 µs.
func nginxTable(w []uint32, turns uint64) []uint16 {
	type queue struct {
		w       int64
		members []uint16 // in index order
		next    int      // members[next] is the head
		rounds  int64    // turns each member has had, the head's
	}
	idx := make([]uint16, len(w))
	for i := range idx {
		idx[i] = uint16(i)
	}
	slices.SortStableFunc(idx, func(a, b uint16) int { return int(w[a]) - int(w[b]) })
	var qs []queue
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && w[idx[end]] == w[idx[start]] {
			end++
		}
		qs = append(qs, queue{w: int64(w[idx[start]]), members: idx[start:end]})
		start = end
	}
	table := make([]uint16, turns)
	total := int64(turns)
	for t := int64(1); t <= total; t++ {
		best, bestV, bestI := 0, int64(0), uint16(0)
		for j := range qs {
			q := &qs[j]
			v, head := q.w*t-total*q.rounds, q.members[q.next]
			if j == 0 || v > bestV || v == bestV && head < bestI {
				best, bestV, bestI = j, v, head
			}
		}
		table[t-1] = bestI
		q := &qs[best]
		if q.next++; q.next == len(q.members) {
			q.next = 0
			q.rounds++
		}
	}
	return table
}

// fibonacciStep returns the multiplier that steps through a cycle of n
// turns by about n/φ at a time, adjusted so that it is coprime with n
// (the steps then visit every turn once a cycle) and that the partial
// quotients of n/mul are small: the multiples of mul/n fall unevenly in
// proportion to the sum of those quotients (their discrepancy), and a
// rounded n/φ can end in a large one. It tries about a thousand
// candidates around n/φ, O(log n) each, and stops at quotients ≤ 3.
func fibonacciStep(n uint64) uint64 {
	if n < 3 {
		return 1 % n
	}
	c := uint64(float64(n)*golden + 0.5)
	best, bestQ := uint64(1), n // n/1 has the quotient n
	for d := uint64(0); d <= 512 && bestQ > 3; d++ {
		for _, m := range [2]uint64{c + d, c - d} {
			if m == 0 || m >= n {
				continue // c − d wrapped below zero, or past the cycle
			}
			if q, coprime := maxQuotient(n, m); coprime && q < bestQ {
				best, bestQ = m, q
			}
		}
	}
	return best
}

// maxQuotient returns the largest partial quotient of the continued
// fraction of a/b and whether a and b are coprime.
func maxQuotient(a, b uint64) (q uint64, coprime bool) {
	for b != 0 {
		q = max(q, a/b)
		a, b = b, a%b
	}
	return q, a == 1
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
