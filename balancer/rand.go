package balancer

import (
	"math/rand/v2"
	"sync"
)

// source is the Balancer's randomness: the runtime's lock-free generator,
// or, when Config.Seed is set, a PCG under a mutex so that runs repeat.
type source struct {
	mu  sync.Mutex
	rng *rand.Rand // nil: use the global generator
}

func newSource(seed uint64) *source {
	if seed == 0 {
		return &source{}
	}
	return &source{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// intn returns a uniform int in [0, n); n > 0.
func (s *source) intn(n int) int {
	if s.rng == nil {
		return rand.IntN(n)
	}
	s.mu.Lock()
	i := s.rng.IntN(n)
	s.mu.Unlock()
	return i
}

// pair returns two distinct uniform ints in [0, n), n ≥ 2, from one
// 64-bit draw: each half is scaled by multiply-shift (Lemire), whose bias
// of at most n/2³² is far below anything a balancer could notice.
func (s *source) pair(n int) (int, int) {
	var r uint64
	if s.rng == nil {
		r = rand.Uint64()
	} else {
		s.mu.Lock()
		r = s.rng.Uint64()
		s.mu.Unlock()
	}
	i := int((r >> 32) * uint64(n) >> 32)
	j := int((r & 0xffffffff) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	return i, j
}
