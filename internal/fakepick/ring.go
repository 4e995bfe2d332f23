package fakepick

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/sturdyai/sturdy"
)

// Ring picks its endpoints in turn, skipping the excluded ones.
type Ring struct {
	mu       sync.Mutex
	eps      []*sturdy.Endpoint
	next     int
	down     bool
	picks    int
	open     int
	reported map[string][]sturdy.Class
}

// New returns a Ring over endpoints with the given names.
func New(names ...string) *Ring {
	r := &Ring{reported: map[string][]sturdy.Class{}}
	for _, n := range names {
		r.eps = append(r.eps, &sturdy.Endpoint{Name: n})
	}
	return r
}

// Pick returns the next endpoint not in exclude, or an Unavailable
// *sturdy.Error when every endpoint is excluded.
func (r *Ring) Pick(_ context.Context, exclude []string) (*sturdy.Endpoint, func(sturdy.Outcome), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range r.eps {
		ep := r.eps[r.next%len(r.eps)]
		r.next++
		if slices.Contains(exclude, ep.Name) {
			continue
		}
		r.picks++
		r.open++
		return ep, func(o sturdy.Outcome) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.reported[ep.Name] = append(r.reported[ep.Name], o.Class)
			r.open--
		}, nil
	}
	return nil, nil, &sturdy.Error{Op: "fakepick", Class: sturdy.Unavailable, Err: errors.New("every endpoint tried")}
}

// Ready reports what SetReady set (true at first).
func (r *Ring) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.down
}

// SetReady sets what Ready reports.
func (r *Ring) SetReady(ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = !ready
}

// Picks returns how many picks succeeded.
func (r *Ring) Picks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.picks
}

// Open returns how many picks have not been reported yet.
func (r *Ring) Open() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open
}

// Reported returns the classes reported for an endpoint, in order.
func (r *Ring) Reported(name string) []sturdy.Class {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reported[name])
}

// Len returns the number of endpoints, as balancer.Balancer's does.
func (r *Ring) Len() int { return len(r.eps) }
