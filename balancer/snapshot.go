package balancer

import (
	"sync/atomic"

	"github.com/sturdyai/sturdy"
)

// snapshot is one immutable endpoint set, published with an atomic
// pointer as grpc-go's pickers are: Pick loads it once and never locks for
// it. Only the caches below change, and each is either atomic or guarded.
type snapshot struct {
	entries []sturdy.Endpoint // as Pick hands them out
	// lds is what was learned of entries[i], packed apart from them: a
	// pick reads the learned state of two endpoints out of thousands, and
	// a dense array of pointers keeps that to the loads' own cache lines.
	lds []*load
	p   *params

	// view caches how many endpoints health allows, recomputed when the
	// tracker's epoch moves.
	view atomic.Pointer[healthView]

	// wrr is WeightedRoundRobin's order of turns (nil for other
	// policies and empty pools); a new snapshot starts a new cycle.
	wrr *schedule

	// PrefixAffinity's name hashes and table of candidates.
	rv *rendezvous
}

type healthView struct {
	epoch uint64
	// checking is false in panic mode (too few allowed: pick over all).
	checking bool
	allowed  int // endpoints health allows
}

// checkHealth reports whether this pick must skip endpoints health does
// not allow: there is a tracker and the pool is not in panic mode.
func (s *snapshot) checkHealth() bool {
	t := s.p.health
	if t == nil {
		return false
	}
	e := t.Epoch()
	if v := s.view.Load(); v != nil && v.epoch == e {
		return v.checking
	}
	// O(n), once per epoch. Reading the epoch before the members means a
	// change during the count moves the epoch again, and the next pick
	// recounts.
	allowed := 0
	for i := range s.entries {
		if s.lds[i].member.Allowed() {
			allowed++
		}
	}
	v := &healthView{
		epoch:    e,
		allowed:  allowed,
		checking: s.p.panicShare < 0 || float64(allowed) >= s.p.panicShare*float64(len(s.entries)),
	}
	s.view.Store(v)
	return v.checking
}

// filter says whether one pick may take an endpoint.
type filter struct {
	exclude []string
	health  bool
}

// ok reports whether the pick may take endpoint i of s.
func (f *filter) ok(s *snapshot, i int) bool {
	if len(f.exclude) > 0 && excluded(f.exclude, s.entries[i].Name) {
		return false
	}
	return !f.health || s.lds[i].member.Allowed()
}

// excluded is a linear search: a call tries a handful of endpoints.
func excluded(exclude []string, name string) bool {
	for _, x := range exclude {
		if x == name {
			return true
		}
	}
	return false
}
