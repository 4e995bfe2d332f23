package balancer

import (
	"math"
	"sync/atomic"
)

// heat is what a key's recent picks say about where its prefix is cached,
// and so what moving it off its first replica costs (see
// affinityPick.bound).
type heat uint8

const (
	// cold: not picked by this Balancer within the warm window; if its
	// prefix is cached anywhere, this Balancer does not know where.
	cold heat = iota
	// warm: picked within the window, with less than hotShare of a
	// replica's share of the picks: its prefix is cached on the replica it
	// went to, its first unless that was over the bound.
	warm
	// hot: at least hotShare of a replica's share of the picks: more than
	// its first replica should carry alone.
	hot
)

// The heat of a key is measured in keyed picks of this Balancer, not in
// time, so that it needs no clock and means the same whatever the
// Balancer's rate; n is the number of endpoints that share the load.
const (
	// warmWindow: a key is warm if picked within the last warmWindow·n
	// picks, 64 per endpoint, so that a replica has taken about 64
	// prompts of this client since: at up to 7,000 tokens each, they fit
	// in the KV memory of a Llama 3 8B on one H100 (about 60 GB beside the
	// weights, 128 KiB a token: some 450,000 tokens), so the key's prefix
	// is most likely still there. On bench/kvsim's workload (a) (seeds
	// 1–3) a window of 32 per endpoint kept 94.5% of the oracle's hits,
	// 64 97.9%, 128 98.2%. With K clients sharing a fleet, a replica takes
	// K times as many prompts in one client's window: a window in time
	// would not have that, but would need a clock in the pick and a rate
	// that differs from pool to pool.
	warmWindow = 64
	// hotShare: a key is hot if its picks, on average, are no more than
	// n/hotShare apart, that is if it takes at least half of a
	// replica's share (1/n) of the picks: with the other keys of its
	// replica, about one share on average, it would hold that replica
	// at 1.5 shares or more.
	hotShare = 0.5
	// gapGain is how much of each new gap the mean gap takes in: an
	// exponentially weighted mean over about the last eight picks of the
	// key.
	gapGain = 1.0 / 8
	// heatEntries is the size of the table (32 KiB).
	heatEntries = 4096
)

// heatTable holds, for each key, the pick count at its last pick and the
// mean gap, in picks, between its picks. It is direct-mapped by the key's
// anchor hash with no tag: keys that share an entry share their heat (a
// cold key beside a hot one spreads with it, beside a warm one it may
// load its first replica to the warm bound), which is rare while fewer
// keys than entries are warm. Updates are a load and a store, not a
// compare-and-swap: concurrent picks of one key may lose a gap, which
// only makes the mean less exact.
type heatTable struct {
	entries []atomic.Uint64 // pick count (high 32 bits), mean gap (float32 bits)
}

func newHeatTable() *heatTable {
	return &heatTable{entries: make([]atomic.Uint64, heatEntries)}
}

// observe records a pick of the key whose anchor hashes to key, at pick
// count tick (1 for the first keyed pick), among n endpoints, and returns
// the key's heat as of this pick.
func (h *heatTable) observe(key, tick uint64, n int) heat {
	e := &h.entries[key&(heatEntries-1)]
	v := e.Load()
	t := uint32(tick) // wraps after 2^32 picks; gaps are differences
	window := warmWindow * float64(max(n, 1))
	c := cold
	var g float64
	if v == 0 {
		// The first pick says nothing of the key's rate: start its mean
		// gap at the window, so that it takes several close picks to
		// become hot.
		g = window
	} else {
		gap := float64(t - uint32(v>>32))
		g = float64(math.Float32frombits(uint32(v)))
		g += (gap - g) * gapGain
		switch {
		case g <= float64(max(n, 1))/hotShare:
			c = hot
		case gap <= window:
			c = warm
		}
	}
	e.Store(uint64(t)<<32 | uint64(math.Float32bits(float32(g))))
	return c
}
