package redisstore

import (
	"context"
	"maps"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxPending bounds the cooldowns remembered while Redis is unreachable.
const maxPending = 1024

// remember keeps a cooldown that Redis missed. When maxPending are kept,
// ended ones are dropped, and if none has ended the new one is only local.
func (s *Store) remember(key string, until time.Time) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.pending == nil {
		s.pending = make(map[string]time.Time)
	}
	if cur, ok := s.pending[key]; ok {
		if until.After(cur) {
			s.pending[key] = until
		}
		return
	}
	if len(s.pending) >= maxPending {
		now := time.Now()
		for k, u := range s.pending {
			if !u.After(now) {
				delete(s.pending, k)
			}
		}
	}
	if len(s.pending) < maxPending {
		s.pending[key] = until
	}
	s.npending.Store(int32(len(s.pending)))
}

func (s *Store) hasPending() bool { return s.npending.Load() > 0 }

// isPending reports whether key has a cooldown Redis missed and that has
// not ended. It costs an atomic load when there are none.
func (s *Store) isPending(key string) bool {
	if s.npending.Load() == 0 {
		return false
	}
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	u, ok := s.pending[key]
	return ok && time.Now().Before(u)
}

// flush writes the cooldowns Redis missed, in one pipelined round trip
// bounded by the timeout, and forgets those it wrote. They stay pending
// until then, so that Take keeps them in force meanwhile.
func (s *Store) flush() {
	s.pendingMu.Lock()
	pending := maps.Clone(s.pending)
	s.pendingMu.Unlock()
	now := time.Now()
	var err error
	if c, ok := s.client.(interface{ Pipeline() redis.Pipeliner }); ok {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		p := c.Pipeline()
		for k, u := range pending {
			if d := u.Sub(now); d > 0 {
				cooldownScript.Eval(ctx, p, s.names(k)[:1], max(micros(d), 1))
			}
		}
		_, err = p.Exec(ctx)
	} else {
		for k, u := range pending {
			if d := u.Sub(now); d > 0 && err == nil {
				err = s.cooldown(context.Background(), k, d)
			}
		}
	}
	if err != nil {
		s.failed(false, err)
		return
	}
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	for k, u := range pending {
		if cur, ok := s.pending[k]; ok && !cur.After(u) {
			delete(s.pending, k)
		}
	}
	s.npending.Store(int32(len(s.pending)))
}
