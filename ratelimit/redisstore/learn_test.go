package redisstore

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/ratelimit"
)

func TestLearnKeepsTheDecreaseInForce(t *testing.T) {
	srv := startRedis(t)
	s, err := New(Config{Client: newClient(t, srv.Addr()), Prefix: t.Name()})
	require.NoError(t, err)
	ctx := t.Context()
	got, err := s.Learned(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, ratelimit.Learned{}, got, "nothing learned yet")

	now := time.Now().UnixNano()
	first := ratelimit.Learned{Max: 150.5, Probe: true, Since: now + int64(time.Second)}
	got, err = s.Learn(ctx, "k", first, now)
	require.NoError(t, err)
	assert.InDelta(t, 150.5, got.Max, 1e-9)
	assert.True(t, got.Probe)
	assert.Equal(t, first.Since/1e3*1e3, got.Since, "kept to the µs")

	// Another replica's refusal within that cooldown is the same event.
	other := ratelimit.Learned{Max: 40, Since: now + int64(1100*time.Millisecond)}
	got, err = s.Learn(ctx, "k", other, now+int64(50*time.Millisecond))
	require.NoError(t, err)
	assert.InDelta(t, 150.5, got.Max, 1e-9, "the decrease in force wins")

	// A refusal after the cooldown is a new decrease.
	later := ratelimit.Learned{Max: 140, Since: now + int64(3*time.Second)}
	got, err = s.Learn(ctx, "k", later, now+int64(2*time.Second))
	require.NoError(t, err)
	assert.InDelta(t, 140, got.Max, 1e-9)
	assert.False(t, got.Probe)

	// A told rate is kept from the report that lasts longest, apart from
	// the decrease.
	told := ratelimit.Learned{Told: 190, ToldUntil: now + int64(time.Minute)}
	got, err = s.Learn(ctx, "k", told, 0)
	require.NoError(t, err)
	assert.InDelta(t, 190, got.Told, 1e-9)
	assert.InDelta(t, 140, got.Max, 1e-9, "a told rate is no decrease")
	read, err := s.Learned(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, got, read)
}

// providerBucket is the provider's rate limit the fleet shares: a token
// bucket on the real clock (Redis's TIME is the fleet's clock, so this
// simulation cannot run on a fake one).
type providerBucket struct {
	mu           sync.Mutex
	rps, burst   float64
	tokens       float64
	last         time.Time
	sent, served []int64 // per 100 ms slice of the run
	start        time.Time
}

func (p *providerBucket) take(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = math.Min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rps)
	p.last = now
	i := int(now.Sub(p.start) / (100 * time.Millisecond))
	if i >= 0 && i < len(p.sent) {
		p.sent[i]++
	}
	if p.tokens < 1 {
		return false
	}
	p.tokens--
	if i >= 0 && i < len(p.served) {
		p.served[i]++
	}
	return true
}

// TestFleetLearnsOneKeysLimitTogether is a seeded simulation of three
// client processes (each its own Redis client, Store and Limiter, nothing
// configured) sending together twice what one provider key allows. After
// the first 429s they learn one shared rate, so that together they send no
// more than 1.1× the limit, where without the shared learning each would
// learn its own share only slowly.
func TestFleetLearnsOneKeysLimitTogether(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6-second real-time simulation")
	}
	srv := startRedis(t)
	const (
		capacity   = 100.0
		perReplica = 2 * capacity / 3
		retryAfter = 500 * time.Millisecond
		latency    = 20 * time.Millisecond
		runFor     = 6 * time.Second
	)
	start := time.Now().Add(50 * time.Millisecond)
	slices := int(runFor / (100 * time.Millisecond))
	prov := &providerBucket{rps: capacity, burst: capacity / 10, tokens: capacity / 10, last: start,
		sent: make([]int64, slices), served: make([]int64, slices), start: start}
	var firstRefusal sync.Once
	var refusedAt time.Time
	var wg sync.WaitGroup
	for i := range 3 {
		store, err := New(Config{Client: newClient(t, srv.Addr()), Prefix: t.Name(), Share: 1.0 / 3})
		require.NoError(t, err)
		lim, err := ratelimit.New(ratelimit.Config{Store: store})
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(uint64(i+1), 42))
		wg.Go(func() {
			var calls sync.WaitGroup
			defer calls.Wait()
			next := start
			for {
				next = next.Add(time.Duration(rng.ExpFloat64() / perReplica * float64(time.Second)))
				if next.Sub(start) >= runFor {
					return
				}
				time.Sleep(time.Until(next))
				if _, err := lim.Allow(context.Background(), "provider-key", 0); err != nil {
					continue // paced: a fallback would take it
				}
				ok := prov.take(time.Now())
				calls.Go(func() {
					time.Sleep(latency)
					o := sturdy.Outcome{Class: sturdy.Success, End: time.Now()}
					if !ok {
						o = sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: retryAfter, End: time.Now()}
						firstRefusal.Do(func() { refusedAt = time.Now() })
					}
					lim.Observe("provider-key", o)
				})
			}
		})
	}
	wg.Wait()
	require.False(t, refusedAt.IsZero(), "the storm was refused at least once")
	// After the first refusal and its Retry-After.
	from := int((refusedAt.Sub(start) + retryAfter) / (100 * time.Millisecond))
	var sent, served int64
	for i := from + 1; i < slices; i++ {
		sent += prov.sent[i]
		served += prov.served[i]
	}
	secs := float64(slices-from-1) / 10
	t.Logf("after %.1fs: the fleet sent %.3f× and was served %.3f× the provider's limit over %.1fs",
		float64(from+1)/10, float64(sent)/secs/capacity, float64(served)/secs/capacity, secs)
	assert.LessOrEqual(t, float64(sent)/secs, 1.1*capacity, "together ≤ 1.1× the limit after the first 429s")
	assert.GreaterOrEqual(t, float64(served)/secs, 0.3*capacity, "and still using a good part of it")
}
