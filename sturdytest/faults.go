package sturdytest

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// randoms are the server's seeded random sources, one per purpose so that
// turning one fault on does not shift the draws of another. Guarded by
// Server.mu.
type randoms struct {
	latency, errors, limits *rand.Rand
}

func (r *randoms) seed(seed uint64) {
	r.latency = rand.New(rand.NewPCG(seed, 1))
	r.errors = rand.New(rand.NewPCG(seed, 2))
	r.limits = rand.New(rand.NewPCG(seed, 3))
}

// bucket is the RateLimit.Capacity token bucket. Guarded by Server.mu.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) reset(rl RateLimit, now time.Time) {
	b.tokens = rl.bucketSize()
	b.last = now
}

// take takes a token if there is one; otherwise it returns how long until
// there is one.
func (b *bucket) take(rl RateLimit, now time.Time) (ok bool, wait time.Duration) {
	size := rl.bucketSize()
	b.tokens = min(size, b.tokens+now.Sub(b.last).Seconds()*rl.Capacity)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rl.Capacity * float64(time.Second))
}

// plan is every random or stateful choice for one chat completion, made at
// once under Server.mu.
type plan struct {
	limited    bool
	retryAfter time.Duration
	remaining  int // x-ratelimit-remaining-requests, when Capacity > 0
	latency    time.Duration
	fail       bool
}

func (s *Server) plan(cfg *Config) plan {
	now := time.Now()
	rl := cfg.RateLimit
	s.mu.Lock()
	defer s.mu.Unlock()
	var p plan
	if rl.Always {
		p.limited = true
	}
	if rl.BurstPeriod > 0 && rl.BurstLength > 0 {
		in := now.Sub(s.created) % rl.BurstPeriod
		if in < rl.BurstLength {
			p.limited = true
			p.retryAfter = max(p.retryAfter, rl.BurstLength-in)
		}
	}
	if rl.Share > 0 && s.rnd.limits.Float64() < rl.Share {
		p.limited = true
	}
	if rl.Capacity > 0 && !p.limited {
		ok, wait := s.bucket.take(rl, now)
		p.remaining = int(s.bucket.tokens)
		if !ok {
			p.limited = true
			p.retryAfter = max(p.retryAfter, wait)
		}
	}
	if rl.RetryAfter > 0 {
		p.retryAfter = rl.RetryAfter
	} else if p.retryAfter <= 0 {
		p.retryAfter = time.Second
	}
	if p.limited {
		return p
	}
	p.latency = cfg.Latency.sample(s.rnd.latency)
	if cfg.ErrorRate > 0 && s.rnd.errors.Float64() < cfg.ErrorRate {
		p.fail = true
	}
	return p
}

func (l Latency) sample(r *rand.Rand) time.Duration {
	d := l.Fixed
	if l.Median > 0 {
		d += time.Duration(float64(l.Median) * math.Exp(l.Sigma*r.NormFloat64()))
	}
	if l.Max > 0 {
		d = min(d, l.Max)
	}
	return max(d, 0)
}

// slots is a resizable semaphore for Config.Concurrency. Waiters wake on
// every release (a broadcast); fine at a fake server's scale.
type slots struct {
	mu    sync.Mutex
	cap   int // 0: unlimited
	inUse int
	freed chan struct{}
}

func (sl *slots) init(n int) {
	sl.cap = n
	sl.freed = make(chan struct{})
}

func (sl *slots) setCap(n int) {
	sl.mu.Lock()
	if n != sl.cap {
		sl.cap = n
		sl.broadcastLocked()
	}
	sl.mu.Unlock()
}

func (sl *slots) broadcastLocked() {
	close(sl.freed)
	sl.freed = make(chan struct{})
}

// acquire waits for a slot; it reports false if ctx or done ended first.
func (sl *slots) acquire(ctx context.Context, done <-chan struct{}) bool {
	for {
		sl.mu.Lock()
		if sl.cap <= 0 || sl.inUse < sl.cap {
			sl.inUse++
			sl.mu.Unlock()
			return true
		}
		freed := sl.freed
		sl.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return false
		case <-done:
			return false
		}
	}
}

func (sl *slots) release() {
	sl.mu.Lock()
	sl.inUse--
	sl.broadcastLocked()
	sl.mu.Unlock()
}
