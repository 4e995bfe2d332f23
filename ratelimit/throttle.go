package ratelimit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/window"
)

const throttleBuckets = 20 // ring slots per window: a 2-minute window slides every 6s

// ThrottleConfig configures a Throttle. Every zero field means its
// documented default.
type ThrottleConfig struct {
	// K is how many requests per accepted one the client may send before
	// it starts rejecting locally. Zero means 2, the SRE book's value;
	// lower is more aggressive. It must be at least 1: below 1 the client
	// would reject requests even when the backend accepts all of them.
	K float64
	// Window is how far back requests and accepts are counted. Zero means
	// 2 minutes.
	Window time.Duration
	// Seed seeds the random choice of which requests to reject, for
	// reproducible tests. Zero means a random seed.
	Seed uint64
}

// Throttle is client-side adaptive throttling as in Google's SRE book
// ("Handling Overload"): over a sliding window it counts the requests the
// client attempted and those the backend accepted, and rejects a new
// request locally with probability max(0, (requests − K·accepts) /
// (requests + 1)). While the backend accepts everything nothing is
// rejected; when it rejects, the client sends only about K times what the
// backend accepts and fails the rest without a network round trip.
//
// Allow decides; after each allowed request call Record (or Observe) once
// with whether the backend accepted it. A request counts when its fate is
// known, when Allow rejects it or when it is recorded, so requests still in
// flight do not count as rejections; otherwise a burst of slow calls (LLM
// streams last seconds) would trigger throttling on a healthy backend.
//
// A Throttle is safe for concurrent use.
type Throttle struct {
	mu   sync.Mutex
	k    float64
	base time.Time
	ring window.Ring // requests (A) and accepts (B)
	rng  rand.PCG
}

// errThrottled is the error of every throttle rejection; it carries
// nothing that varies, so rejecting does not allocate.
var errThrottled = &LimitedError{Cause: CauseThrottle}

// NewThrottle returns a Throttle configured by cfg. It fails only for
// values that cannot work.
func NewThrottle(cfg ThrottleConfig) (*Throttle, error) {
	switch {
	case cfg.K == 0:
		cfg.K = 2
	case math.IsNaN(cfg.K) || math.IsInf(cfg.K, 0) || cfg.K < 1:
		return nil, fmt.Errorf("ratelimit: ThrottleConfig.K must be finite and ≥ 1 (0 = 2), got %v; below 1 the client rejects requests a healthy backend would accept", cfg.K)
	}
	switch {
	case cfg.Window == 0:
		cfg.Window = 2 * time.Minute
	case cfg.Window < throttleBuckets:
		return nil, fmt.Errorf("ratelimit: ThrottleConfig.Window must be at least %v (0 = 2m), got %v", time.Duration(throttleBuckets), cfg.Window)
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	t := &Throttle{k: cfg.K, base: time.Now(), ring: window.New(int64(cfg.Window), throttleBuckets)}
	t.rng.Seed(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)
	return t, nil
}

// probability is the rejection probability at now. t.mu must be held.
func (t *Throttle) probability(now int64) float64 {
	c := t.ring.Sum(now)
	r := float64(c.A)
	return max(0, (r-t.k*float64(c.B))/(r+1))
}

// Allow reports whether a request may be sent. It rejects with
// probability max(0, (requests − K·accepts)/(requests + 1)), returning a
// *LimitedError with Cause "throttle" that matches ErrLimited and
// sturdy.ErrOverloaded (shared by every rejection: do not modify it); a
// rejected request counts as a request. After a nil error, call Record or
// Observe once.
func (t *Throttle) Allow() error {
	now := int64(time.Since(t.base))
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.probability(now)
	if p == 0 || float64(t.rng.Uint64()>>11)/(1<<53) >= p {
		return nil
	}
	t.ring.Add(now, 1, 0)
	return errThrottled
}

// Record counts a request Allow let through, and whether the backend
// accepted it (served it rather than rejecting it for overload).
func (t *Throttle) Record(accepted bool) {
	var a int64
	if accepted {
		a = 1
	}
	now := int64(time.Since(t.base))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ring.Add(now, 1, a)
}

// Observe records o for a request Allow let through: Overloaded,
// Unavailable and Timeout mean the backend did not serve it; any other
// class (including Canceled, e.g. a hedge that lost) counts as accepted.
func (t *Throttle) Observe(o sturdy.Outcome) {
	switch o.Class {
	case sturdy.Overloaded, sturdy.Unavailable, sturdy.Timeout:
		t.Record(false)
	default:
		t.Record(true)
	}
}

// Probability returns the probability with which Allow would reject a
// request now.
func (t *Throttle) Probability() float64 {
	now := int64(time.Since(t.base))
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.probability(now)
}
