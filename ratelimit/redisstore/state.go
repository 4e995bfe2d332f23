package redisstore

import (
	"fmt"
	"time"
)

// State is where a Store admits calls.
type State int32

const (
	// StateShared: on the fleet-wide limits in Redis.
	StateShared State = iota
	// StateLocal: on this replica's share of the limits, because Redis
	// failed or was slower than Config.Timeout.
	StateLocal
)

func (s State) String() string {
	switch s {
	case StateShared:
		return "shared"
	case StateLocal:
		return "local"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// State reports whether the Store is on the shared limits or on local
// ones.
func (s *Store) State() State {
	if s.retryAt.Load() == 0 {
		return StateShared
	}
	return StateLocal
}

// turn reports whether an operation goes to Redis, and whether it is the
// one probe of a Store on local limits.
func (s *Store) turn() (use, probe bool) {
	r := s.retryAt.Load()
	if r == 0 {
		return true, false
	}
	if time.Now().UnixNano() < r || !s.probing.CompareAndSwap(false, true) {
		return false, false
	}
	return true, true
}

// succeeded records a Redis round trip that worked: a probe's success
// returns the Store to the shared limits; any success writes cooldowns
// that Redis missed.
func (s *Store) succeeded(probe bool) {
	if probe {
		s.retryAt.Store(0)
		s.probing.Store(false)
	}
	if s.hasPending() && s.flushing.CompareAndSwap(false, true) {
		go func() {
			defer s.flushing.Store(false)
			s.flush()
		}()
	}
	if probe {
		s.notify(StateShared, nil)
	}
}

// failed records a Redis round trip that failed or timed out: the Store
// goes to local limits (if it was not there), and a probe's failure puts
// the next probe one ProbeInterval away.
func (s *Store) failed(probe bool, err error) {
	next := time.Now().Add(s.probe).UnixNano()
	if probe {
		s.retryAt.Store(next)
		s.probing.Store(false)
		return
	}
	if s.retryAt.CompareAndSwap(0, next) {
		s.notify(StateLocal, err)
	}
}

// abandon ends a probe that proved nothing because its caller gave up.
func (s *Store) abandon(probe bool) {
	if probe {
		s.probing.Store(false)
	}
}

func (s *Store) notify(to State, err error) {
	if s.onChange != nil {
		s.onChange(to, err)
	}
}
