package balancer

import (
	"context"
	"math"
	"sync/atomic"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/prefix"
)

// PrefixAffinity maps a key to replicas in four steps (the package doc
// says why):
//
//  1. Rendezvous hashing: the key's anchor (its Affinity.MinBlocks-th
//     block, or the session) falls in one of 2^16 slots, and each slot
//     ranks the endpoints by a hash of the slot and the endpoint's name.
//     The first in that order takes the key if the filter and the load
//     bound allow; a warm key's first replica has a looser bound, a hot
//     key's replicas a tighter one (affinityPick.bound).
//  2. Otherwise the index of recent prompts: if this process sent a
//     prompt that this key extends (its last block is one of the key's
//     blocks, the deepest found wins), the endpoint it went to, if it may
//     take one more.
//  3. Otherwise the first of the slot's other candidates that can.
//  4. If none can, the whole pool in the same order; if the bound leaves
//     none, the least loaded allowed.
//
// Slots rather than the anchor itself make steps 1 and 3 a table lookup for
// large pools: the order of a slot depends only on the endpoint names, so
// a snapshot computes it on first use and keeps it. Two keys share a slot
// with probability 2^-16, and then only share their replicas.
//
// slotBits, the seeds below and internal/prefix's hash are what clients
// agree on: changing any of them moves every key until all clients of a
// pool run the same version.
const (
	slotBits = 16
	// candidates is how much of a slot's order the table keeps: enough for
	// a call's first attempt, its failovers and hedges, and a bound that
	// passes over a busy first choice or two.
	candidates = 4
	// tableMin is the pool size from which a snapshot keeps a table of
	// candidates per slot (512 KiB) rather than ranking the pool on every
	// pick: ranking 10 endpoints took 150 ns a pick on the machine
	// BenchmarkPickDoneKey ran on, the table 80 ns.
	tableMin = 8
	// maxAffinityIndex bounds Config.Affinity.Index (16 MiB of index).
	maxAffinityIndex = 1 << 20
)

// rendezvous is a snapshot's state for PrefixAffinity.
type rendezvous struct {
	names  []uint64       // prefix.Sum64 of each entry's name
	byName map[uint64]int // names[i] → i, for the index; nil without one
	// table holds, per slot, its candidates packed 16 bits each (entry
	// index + 1), 0 until first computed; nil for pools under tableMin or
	// over 65534 endpoints.
	table []atomic.Uint64
}

func newRendezvous(entries []sturdy.Endpoint, index bool) *rendezvous {
	rv := &rendezvous{names: make([]uint64, len(entries))}
	for i := range entries {
		rv.names[i] = prefix.Sum64(nameSeed, entries[i].Name)
	}
	if index {
		rv.byName = make(map[uint64]int, len(entries))
		for i, h := range rv.names {
			rv.byName[h] = i
		}
	}
	if n := len(entries); n >= tableMin && n < 1<<16-1 {
		rv.table = make([]atomic.Uint64, 1<<slotBits)
	}
	return rv
}

const (
	nameSeed = 0x6e61_6d65_6e61_6d65
	slotSeed = 0x736c_6f74_736c_6f74
)

// order is the start of a slot's ranking: entry indexes, best first.
type order struct {
	idx [candidates]int
	n   int
}

// top returns slot's first candidates; sk is the slot's hash.
func (rv *rendezvous) top(slot int, sk uint64) order {
	if rv.table == nil {
		return rv.rank(sk)
	}
	if v := rv.table[slot].Load(); v != 0 {
		var o order
		for ; o.n < candidates && v&0xffff != 0; v >>= 16 {
			o.idx[o.n] = int(v&0xffff) - 1
			o.n++
		}
		return o
	}
	// Concurrent first picks of a slot may both rank it; they store the
	// same value.
	o := rv.rank(sk)
	var v uint64
	for j := o.n - 1; j >= 0; j-- {
		v = v<<16 | uint64(o.idx[j]+1)
	}
	rv.table[slot].Store(v)
	return o
}

// rank scores every endpoint for the slot whose hash is sk and keeps the
// best candidates, best first.
func (rv *rendezvous) rank(sk uint64) order {
	var o order
	var sc [candidates]uint64
	for i, h := range rv.names {
		x := score(sk, h)
		if o.n == candidates && x <= sc[candidates-1] {
			continue
		}
		j := min(o.n, candidates-1)
		for j > 0 && sc[j-1] < x {
			sc[j], o.idx[j] = sc[j-1], o.idx[j-1]
			j--
		}
		sc[j], o.idx[j] = x, i
		o.n = min(o.n+1, candidates)
	}
	return o
}

// score is the rendezvous weight of the endpoint whose name hashes to name
// for the slot whose hash is sk.
func score(sk, name uint64) uint64 {
	return prefix.Mix(sk, name)
}

// pickAffinity is PrefixAffinity's pick. It counts the attempt on the
// endpoint it returns (Pick does not).
func (b *Balancer) pickAffinity(ctx context.Context, s *snapshot, f *filter) int {
	k := keyOf(ctx)
	var one [1]uint64
	var keys []uint64 // the key's hashes from the anchor on
	switch {
	case k.kind == sessionKey:
		one[0] = k.session
		keys = one[:]
	case k.kind == prefixKey && len(k.blocks) >= b.p.minBlocks:
		keys = k.blocks[b.p.minBlocks-1:]
	default:
		i := b.pickP2C(s, f)
		if i >= 0 {
			s.lds[i].take()
		}
		return i
	}
	if len(s.entries) == 0 {
		return -1
	}
	slot := keys[0] >> (64 - slotBits)
	// The filter is copied: a pointer to Pick's would make it escape, as the
	// atomic loads under bound leak what a points to.
	a := affinityPick{s: s, f: *f, slot: int(slot), sk: prefix.Mix(slot, slotSeed), n: len(s.entries)}
	if f.health {
		a.n = s.view.Load().allowed
	}
	a.heat = s.p.heat.observe(keys[0], s.p.total.picks.Add(1), a.n)
	o := s.rv.top(a.slot, a.sk)
	i := -1
	if o.n > 0 && a.take(o.idx[0], true) {
		i = o.idx[0]
	}
	if i < 0 && b.recent != nil {
		i = a.recalled(b.recent, keys)
	}
	if i < 0 {
		i = a.ranked(o)
	}
	if i < 0 {
		i = a.scanned()
	}
	if i >= 0 && b.recent != nil {
		b.recent.put(keys[len(keys)-1], s.rv.names[i])
	}
	return i
}

// affinityPick is one PrefixAffinity pick, with a method per way of
// choosing; each returns -1 if it chose nothing.
type affinityPick struct {
	s    *snapshot
	f    filter
	slot int
	sk   uint64 // the slot's hash
	heat heat   // the key's, as this pick found it
	n    int    // the endpoints the bound shares the load among
	mean float64
}

// bound returns how many attempts in flight an endpoint may hold and
// still take this pick's key; first says whether it is the key's first
// replica. It is the bound of consistent hashing with bounded loads
// (Mirrokni, Thorup and Zadimoghaddam): ⌈(1+ε)·m/n⌉, m the pool's
// attempts in flight with this one and n the endpoints that take
// traffic, with an ε that depends on what moving the key costs:
//
//   - A hot key is held to ⌈m/n⌉ (ε = 0) on every replica. It takes at
//     least half of a replica's share of the traffic, so with the other
//     keys of its first replica it must spread, and every replica it
//     spreads to caches its prefix: after the first, moving it costs
//     nothing, while letting it pile onto its first replicas is what
//     bounded loads exist to prevent.
//   - A warm key's first replica has WarmLoadBound. Its prefix is cached
//     there and, most likely, nowhere else: moving it costs a whole
//     prefill and a second copy, which evicts other prefixes. The
//     replicas that pass the default bound are most often not those
//     with a burst of work but those that hashing gave more keys than
//     the others (a binomial share: 1.4–1.6× the mean for 150 keys
//     over 8), and moving a share of every one of their keys' requests
//     makes each of those keys cached twice.
//   - Any other key, or replica, has LoadBound: nothing says where the
//     key is cached, so the bound balances load.
//
// The last two add one attempt of slack, as SGLang's router tolerates an
// absolute imbalance (its balance_abs_threshold, 32 requests by default)
// before it routes by load: when a client has a few attempts in flight
// per endpoint, ⌈(1+ε)·m/n⌉ is 1 or 2, and a single attempt would turn
// a key away from its cache. Some endpoint always has fewer than ⌈m/n⌉
// when all n may be picked (the m-1 attempts in flight cannot fill n
// endpoints to ⌈m/n⌉ each); exclusions can leave only busier ones. The
// bound is at least 1, and infinite when LoadBound is negative.
func (a *affinityPick) bound(first bool) int64 {
	p := a.s.p
	switch {
	case p.loadFactor <= 0:
		return math.MaxInt64
	case a.heat == hot:
		return a.limit(1, 0)
	case a.heat == warm && first:
		return a.limit(p.warmFactor, 1)
	}
	return a.limit(p.loadFactor, 1)
}

// limit returns ⌈factor·m/n⌉ + slack, no bound for a factor ≤ 0 or too
// large to count. It reads the pool's count the first time it is needed:
// an idle endpoint is within any bound, so most picks of a lightly loaded
// pool never need it.
func (a *affinityPick) limit(factor float64, slack int64) int64 {
	if factor <= 0 {
		return math.MaxInt64
	}
	if a.mean == 0 {
		m := max(a.s.p.total.Load(), 0) + 1
		a.mean = float64(m) / float64(max(a.n, 1))
	}
	x := math.Ceil(factor * a.mean)
	if !(x < 1<<62) {
		return math.MaxInt64
	}
	return int64(x) + slack
}

// take counts the attempt on endpoint i if the filter allows i and i is
// within the bound; first says whether i is the key's first replica. The
// check and the count are one step, so that concurrent picks cannot all
// pass the bound on the same count.
func (a *affinityPick) take(i int, first bool) bool {
	if !a.f.ok(a.s, i) {
		return false
	}
	l := a.s.lds[i]
	for {
		o := l.outstanding.Load()
		if o > 0 && o >= a.bound(first) {
			return false
		}
		if l.outstanding.CompareAndSwap(o, o+1) {
			l.p.total.Add(1)
			return true
		}
	}
}

// recalled looks up the key's blocks in the index, deepest first, and
// takes the endpoint of the first one found, if it can.
func (a *affinityPick) recalled(r *recentIndex, keys []uint64) int {
	for j := len(keys) - 1; j >= 0; j-- {
		name, ok := r.get(keys[j])
		if !ok {
			continue
		}
		if i, ok := a.s.rv.byName[name]; ok && a.take(i, false) {
			return i
		}
		return -1
	}
	return -1
}

// ranked takes the first of the slot's candidates it can.
func (a *affinityPick) ranked(o order) int {
	for _, i := range o.idx[:o.n] {
		if a.take(i, false) {
			return i
		}
	}
	return -1
}

// scanned ranks the whole pool, allowed endpoints only: the first within
// the bound, or else the least loaded (the first in the order on ties).
func (a *affinityPick) scanned() int {
	s := a.s
	best, least := -1, -1
	var bestScore, leastScore uint64
	var leastLoad int64
	for i, h := range s.rv.names {
		if !a.f.ok(s, i) {
			continue
		}
		x := score(a.sk, h)
		l := s.lds[i].inflight()
		if (l == 0 || l < a.bound(false)) && (best < 0 || x > bestScore) {
			best, bestScore = i, x
		}
		if least < 0 || l < leastLoad || (l == leastLoad && x > leastScore) {
			least, leastLoad, leastScore = i, l, x
		}
	}
	if best >= 0 && a.take(best, false) {
		return best
	}
	if least >= 0 {
		s.lds[least].take()
	}
	return least
}

// recentIndex is PrefixAffinity's index of recent prompts: a hash table
// from the last block of each prompt routed to the endpoint it went to
// (by name hash), so that endpoints that come and go do not confuse it. It
// is direct-mapped: a newer prompt whose block lands on the same entry
// replaces the older, an approximation of least-recently-used eviction
// that needs no lock and no allocation.
//
// An entry is two words written one after the other; name holds the name
// hash xor the block, so that a reader that sees the block of one write
// and the name of another gets a name hash that matches no endpoint,
// which counts as not found.
type recentIndex struct {
	mask    uint64
	entries []recentEntry
}

type recentEntry struct {
	block atomic.Uint64
	name  atomic.Uint64
}

func newRecentIndex(size int) *recentIndex {
	return &recentIndex{mask: uint64(size - 1), entries: make([]recentEntry, size)}
}

func (r *recentIndex) get(block uint64) (name uint64, ok bool) {
	e := &r.entries[block&r.mask]
	if e.block.Load() != block {
		return 0, false
	}
	return e.name.Load() ^ block, true
}

func (r *recentIndex) put(block, name uint64) {
	e := &r.entries[block&r.mask]
	if e.block.Load() == block && e.name.Load() == name^block {
		return // most picks of a hot prompt: do not take the line from other cores
	}
	e.block.Store(block)
	e.name.Store(name ^ block)
}
