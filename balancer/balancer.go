package balancer

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/health"
)

// Balancer picks an endpoint for each attempt of a call. It is safe for
// concurrent use: Pick never blocks on Update and, for P2CPeakEWMA,
// RoundRobin and WeightedRoundRobin, does constant work whatever the
// pool's size (WeightedRoundRobin: logarithmic in it for weights too large
// for its table, and linear, under a lock, when the endpoints a pick must
// skip hold most of the weight) and allocates nothing (PrefixAffinity: see
// the package doc).
//
// Each Pick returns a done func that must be called exactly once, with the
// attempt's outcome, when the attempt ends. It settles the endpoint's
// outstanding count, feeds the latency to Peak-EWMA and, when
// Config.Health is set, reports the outcome to the endpoint's health
// member.
type Balancer struct {
	p      *params
	rand   *source
	recent *recentIndex // PrefixAffinity's index; nil without one
	snap   atomic.Pointer[snapshot]
	mu     sync.Mutex // serialises Update

	// RoundRobin's position, which every pick writes, on a cache line of
	// its own: beside the fields above it would take them from every other
	// core's cache on each pick. It survives Update.
	_  [cacheLine]byte
	rr atomic.Uint64
	_  [cacheLine - 8]byte
}

// New returns a Balancer over cfg.Endpoints. It fails only for settings
// that cannot work; the message names the offending field.
func New(cfg Config) (*Balancer, error) {
	p, err := newParams(&cfg)
	if err != nil {
		return nil, err
	}
	if err := validate("Config.Endpoints", cfg.Endpoints); err != nil {
		return nil, err
	}
	b := &Balancer{p: p, rand: newSource(cfg.Seed)}
	if p.indexSize > 0 {
		b.recent = newRecentIndex(p.indexSize)
	}
	if cfg.Seed == 0 {
		// Start each process's round-robin somewhere else, so that many
		// clients started together do not all hit the first endpoint.
		b.rr.Store(uint64(b.rand.intn(1 << 30)))
	}
	b.snap.Store(b.build(cfg.Endpoints, nil, nil))
	return b, nil
}

// build makes a snapshot of eps, reusing the learned state in old (a
// name → load map) for endpoints that stay, and what prev (the snapshot
// replaced, nil for none) computed from the names if they are the same.
func (b *Balancer) build(eps []sturdy.Endpoint, old map[string]*load, prev *snapshot) *snapshot {
	s := &snapshot{p: b.p, entries: make([]sturdy.Endpoint, len(eps)), lds: make([]*load, len(eps))}
	now := b.p.now()
	for i := range eps {
		s.entries[i] = cloneEndpoint(eps[i])
		name := s.entries[i].Name
		ld, ok := old[name]
		if !ok {
			var m *health.Member
			if t := b.p.health; t != nil {
				m = t.Add(name)
			}
			ld = newLoad(b.p, m, now)
		}
		s.lds[i] = ld
	}
	if b.p.policy == WeightedRoundRobin {
		s.wrr = newSchedule(s.entries)
	}
	if b.p.policy == PrefixAffinity {
		if prev != nil && sameNames(prev.entries, s.entries) {
			// The rankings depend on the names and their order alone:
			// an Update that changes only addresses, weights or labels
			// keeps the 512 KiB table and what it has filled in.
			s.rv = prev.rv
		} else {
			s.rv = newRendezvous(s.entries, b.recent != nil)
		}
	}
	return s
}

func sameNames(a, b []sturdy.Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

// Pick chooses an endpoint for one attempt: one whose name is not in
// exclude (the endpoints the call has already tried) and, unless the pool
// is in panic mode, that health allows. PrefixAffinity routes on the Key
// ctx carries (WithKey).
//
// Pick never blocks. If ctx is already done it returns ctx's error, as a
// *sturdy.Error, without picking. When nothing can be picked the error is
// a *sturdy.Error of class Unavailable wrapping ErrNoEndpoint.
//
// The returned endpoint points into an immutable snapshot shared by every
// caller: read it, never modify it (including its Labels map).
//
// done must be called exactly once, with the attempt's outcome, whatever
// its class; Outcome.Latency is the caller's measure of the attempt. A
// second call is not detected (that would cost an allocation per pick):
// it undercounts the endpoint's attempts in flight (reads clamp at zero)
// and reports the outcome twice. The package doc says what each outcome
// class teaches Peak-EWMA.
func (b *Balancer) Pick(ctx context.Context, exclude []string) (ep *sturdy.Endpoint, done func(sturdy.Outcome), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, &sturdy.Error{Op: "balancer", Class: sturdy.ClassOf(err), Err: err}
	}
	s := b.snap.Load()
	f := filter{exclude: exclude, health: s.checkHealth()}
	var i int
	switch b.p.policy {
	case RoundRobin:
		i = b.pickRoundRobin(s, &f)
	case WeightedRoundRobin:
		i = s.pickWeighted(&f)
	case LeastOutstanding:
		i = b.pickLeastOutstanding(s, &f)
	case PrefixAffinity:
		i = b.pickAffinity(ctx, s, &f)
	default:
		i = b.pickP2C(s, &f)
	}
	if i < 0 {
		return nil, nil, s.noEndpoint(exclude)
	}
	ld := s.lds[i]
	if b.p.policy == P2CPeakEWMA || b.p.policy == LeastOutstanding {
		ld.outstanding.Add(1)
	}
	return &s.entries[i], ld.done, nil
}

// Len returns the number of endpoints in the pool. The attempt loop reads
// it to know whether a failover could follow an attempt (a pool of one
// cannot fail over, so its attempts are never cut to make room for one).
func (b *Balancer) Len() int { return len(b.snap.Load().entries) }

// Ready reports whether the pool can serve without panic mode: it has
// endpoints and, with Config.Health, health allows at least one of them.
// degrade asks it to skip a tier before spending an attempt on it.
func (b *Balancer) Ready() bool {
	s := b.snap.Load()
	if len(s.entries) == 0 {
		return false
	}
	if s.p.health == nil {
		return true
	}
	s.checkHealth()
	return s.view.Load().allowed > 0
}

// Update replaces the endpoint set. Endpoints whose names stay keep what
// the Balancer learned about them (Peak-EWMA cost, outstanding count,
// health member) even if their other fields change; new ones start fresh;
// dropped ones are removed from Config.Health. Attempts in flight on a
// dropped endpoint may still call done. eps is validated as in New; on
// error nothing changes.
func (b *Balancer) Update(eps []sturdy.Endpoint) error {
	if err := validate("Update: eps", eps); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.snap.Load()
	old := make(map[string]*load, len(cur.entries))
	for i := range cur.entries {
		old[cur.entries[i].Name] = cur.lds[i]
	}
	next := b.build(eps, old, cur)
	b.snap.Store(next)
	if t := b.p.health; t != nil {
		for i := range next.entries {
			delete(old, next.entries[i].Name)
		}
		for name := range old {
			t.Remove(name)
		}
	}
	return nil
}

// Endpoints returns a copy of the current endpoint set, in the order
// given to New or Update.
func (b *Balancer) Endpoints() []sturdy.Endpoint {
	s := b.snap.Load()
	eps := make([]sturdy.Endpoint, len(s.entries))
	for i := range s.entries {
		eps[i] = cloneEndpoint(s.entries[i])
	}
	return eps
}
