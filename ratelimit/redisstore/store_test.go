package redisstore

import (
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/ratelimit"
)

// replica is one process of a fleet: its own Redis client, Store and
// Limiter, sharing the Redis server with the others.
type replica struct {
	store *Store
	lim   *ratelimit.Limiter

	mu      sync.Mutex
	changes []State
}

func (r *replica) states() []State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]State(nil), r.changes...)
}

func newReplica(t testing.TB, addr string, lim ratelimit.Limit, cfg Config) *replica {
	return newLearningReplica(t, addr, lim, cfg, ratelimit.LearnConfig{})
}

func newLearningReplica(t testing.TB, addr string, lim ratelimit.Limit, cfg Config, learn ratelimit.LearnConfig) *replica {
	t.Helper()
	r := &replica{}
	cfg.Client = newClient(t, addr)
	cfg.OnStateChange = func(to State, _ error) {
		r.mu.Lock()
		r.changes = append(r.changes, to)
		r.mu.Unlock()
	}
	var err error
	r.store, err = New(cfg)
	require.NoError(t, err)
	r.lim, err = ratelimit.New(ratelimit.Config{Default: lim, Store: r.store, Learn: learn})
	require.NoError(t, err)
	return r
}

func newFleet(t testing.TB, addr string, n int, lim ratelimit.Limit, cfg Config) []*replica {
	fleet := make([]*replica, n)
	for i := range fleet {
		fleet[i] = newReplica(t, addr, lim, cfg)
	}
	return fleet
}

// refusal asserts err is a *ratelimit.LimitedError with reason.
func refusal(t *testing.T, err error, reason ratelimit.Cause) *ratelimit.LimitedError {
	t.Helper()
	le, ok := errors.AsType[*ratelimit.LimitedError](err)
	require.True(t, ok, "want *ratelimit.LimitedError, got %v", err)
	assert.Equal(t, reason, le.Cause)
	return le
}

func TestNewRejectsValuesThatCannotWork(t *testing.T) {
	ok := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer ok.Close()
	noDeadlines := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer noDeadlines.Close()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{}, "redisstore: Config.Client is required"},
		{"client ignores deadlines", Config{Client: noDeadlines}, "redisstore: the client's Options.ContextTimeoutEnabled"},
		{"brace in prefix", Config{Client: ok, Prefix: "a{b"}, "redisstore: Config.Prefix"},
		{"negative timeout", Config{Client: ok, Timeout: -1}, "redisstore: Config.Timeout"},
		{"share above 1", Config{Client: ok, Share: 1.5}, "redisstore: Config.Share"},
		{"negative share", Config{Client: ok, Share: -0.5}, "redisstore: Config.Share"},
		{"NaN share", Config{Client: ok, Share: math.NaN()}, "redisstore: Config.Share"},
		{"negative probe interval", Config{Client: ok, ProbeInterval: -1}, "redisstore: Config.ProbeInterval"},
		{"negative max keys", Config{Client: ok, MaxKeys: -1}, "redisstore: Config.MaxKeys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), err.Error())
		})
	}
	_, err := New(Config{Client: ok})
	assert.NoError(t, err, "a client alone is enough")
}

// slot is Redis Cluster's key slot: CRC16 (XMODEM) of the hash tag, or of
// the whole key if it has none, modulo 16384.
func slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// A real Redis Cluster is not started; the test pins the names and that
// Cluster's slot rule puts one key's three names in one slot, then checks
// that those are the names a script writes.
func TestKeysShareOneClusterSlotUnderThePrefix(t *testing.T) {
	assert.Equal(t, 12182, slot("foo"), "slot matches the Redis Cluster spec's example")
	s, err := New(Config{Client: newClient(t, "127.0.0.1:1"), Prefix: "billing"})
	require.NoError(t, err)
	for _, key := range []string{"openai/gpt-4o", "", "a}b", "tenant:{42}"} {
		n := s.names(key)
		cool, req, tok := n[0], n[1], n[2]
		assert.Equal(t, "{billing:"+key+"}:req", req)
		assert.Equal(t, "{billing:"+key+"}:tok", tok)
		assert.Equal(t, "{billing:"+key+"}:cool", cool)
		assert.Same(t, n, s.names(key), "cached")
		assert.Equal(t, slot(req), slot(tok), key)
		assert.Equal(t, slot(req), slot(cool), key)
	}

	srv := startRedis(t)
	r := newReplica(t, srv.Addr(), ratelimit.Limit{RequestsPerSecond: 1, TokensPerMinute: 60}, Config{Prefix: "billing"})
	_, err = r.lim.Allow(t.Context(), "gpt", 10)
	require.NoError(t, err)
	r.lim.Cooldown("gpt", time.Now().Add(time.Minute))
	rdb := newClient(t, srv.Addr())
	keys, err := rdb.Keys(t.Context(), "*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"{billing:gpt}:req", "{billing:gpt}:tok", "{billing:gpt}:cool"}, keys)
	for _, k := range keys {
		ttl, err := rdb.PTTL(t.Context(), k).Result()
		require.NoError(t, err)
		assert.Positive(t, ttl, "%s expires", k)
	}
}

// Three replicas hammer one key for a bounded window; together they admit
// what one limiter would (burst + rate × elapsed), not three times it.
func TestReplicasTogetherAdmitTheLimitNotThreeTimesIt(t *testing.T) {
	srv := startRedis(t)
	for _, tc := range []struct {
		name   string
		lim    ratelimit.Limit
		est    int64 // tokens reserved per call
		used   int64 // tokens reported by Done
		unit   int64 // what a call consumes of the limited bucket
		rate   float64
		burst  float64
		window time.Duration
	}{
		{"requests", ratelimit.Limit{RequestsPerSecond: 200, Burst: 20}, 0, -1, 1, 200, 20, time.Second},
		// Each call reserves 20 tokens and corrects to 10: the bucket is
		// spent by the corrected amounts.
		{"tokens reserve then correct", ratelimit.Limit{TokensPerMinute: 60000, TokenBurst: 200}, 20, 10, 10, 1000, 200, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fleet := newFleet(t, srv.Addr(), 3, tc.lim, Config{Prefix: t.Name()})
			var total atomic.Int64
			per := make([]int64, len(fleet))
			var wg sync.WaitGroup
			start := time.Now()
			for i, r := range fleet {
				wg.Go(func() {
					for time.Since(start) < tc.window {
						p, err := r.lim.Allow(t.Context(), "k", tc.est)
						if err == nil {
							p.Done(tc.used)
							per[i]++
							total.Add(tc.unit)
						} else if _, ok := errors.AsType[*ratelimit.LimitedError](err); !ok {
							t.Errorf("replica %d: %v", i, err)
							return
						}
						time.Sleep(200 * time.Microsecond) // demand far above the limit, without spinning
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start).Seconds()
			want := tc.burst + tc.rate*elapsed
			got := float64(total.Load())
			t.Logf("admitted %v units (per replica calls %v) in %.3fs; one limiter allows %.0f", got, per, elapsed, want)
			assert.LessOrEqual(t, got, want*1.03+float64(tc.unit), "no more than the limit, within 3%")
			assert.GreaterOrEqual(t, got, want*0.85, "the replicas can use the whole limit")
			for i, n := range per {
				assert.Positive(t, n, "replica %d was admitted too", i)
			}
			for _, r := range fleet {
				assert.Equal(t, StateShared, r.store.State())
			}
		})
	}
}

func TestWaitWaitsOnTheSharedBucket(t *testing.T) {
	srv := startRedis(t)
	fleet := newFleet(t, srv.Addr(), 2, ratelimit.Limit{RequestsPerSecond: 10, Burst: 1}, Config{})
	_, err := fleet[0].lim.Allow(t.Context(), "k", 0)
	require.NoError(t, err)

	_, err = fleet[1].lim.Allow(t.Context(), "k", 0)
	le := refusal(t, err, ratelimit.CauseRequests)
	assert.InDelta(t, 100*time.Millisecond, le.RetryAfter, float64(20*time.Millisecond))

	start := time.Now()
	_, err = fleet[1].lim.Wait(t.Context(), "k", 0, time.Second)
	require.NoError(t, err)
	assert.InDelta(t, 100*time.Millisecond, time.Since(start), float64(40*time.Millisecond))

	_, err = fleet[0].lim.Wait(t.Context(), "k", 0, 10*time.Millisecond)
	refusal(t, err, ratelimit.CauseRequests) // needs ~100ms, more than maxWait: refused at once
}

// The reserve-then-correct flow across replicas: an estimate holds tokens
// fleet-wide until its Done gives back what the call did not use.
func TestTokenEstimateIsReservedThenCorrectedForTheFleet(t *testing.T) {
	srv := startRedis(t)
	fleet := newFleet(t, srv.Addr(), 2, ratelimit.Limit{TokensPerMinute: 600, TokenBurst: 1000}, Config{})
	a, b := fleet[0], fleet[1]

	pa, err := a.lim.Allow(t.Context(), "gpt", 1000)
	require.NoError(t, err)
	_, err = b.lim.Allow(t.Context(), "gpt", 500)
	le := refusal(t, err, ratelimit.CauseTokens)
	assert.InDelta(t, 50*time.Second, le.RetryAfter, float64(time.Second), "500 tokens at 10/s")

	pa.Done(200) // the call used 200: 800 come back
	pb, err := b.lim.Allow(t.Context(), "gpt", 500)
	require.NoError(t, err)
	_, err = a.lim.Allow(t.Context(), "gpt", 500)
	refusal(t, err, ratelimit.CauseTokens)

	pb.Cancel() // never sent: all 500 come back
	_, err = a.lim.Allow(t.Context(), "gpt", 500)
	assert.NoError(t, err)

	pc, err := b.lim.Allow(t.Context(), "gpt", 0)
	require.NoError(t, err)
	pc.Done(5000) // more than estimated: the bucket goes into debt for everyone
	_, err = a.lim.Allow(t.Context(), "gpt", 1)
	le = refusal(t, err, ratelimit.CauseTokens)
	assert.Greater(t, le.RetryAfter, 7*time.Minute, "4500 tokens of debt at 10/s")
}

func TestCooldownSetByOneReplicaIsSeenByAll(t *testing.T) {
	srv := startRedis(t)
	// Cooldowns alone: the learned pacing a refusal also starts on a key
	// with no configured rate is learn_test.go's subject.
	var fleet []*replica
	for range 3 {
		fleet = append(fleet, newLearningReplica(t, srv.Addr(), ratelimit.Limit{}, Config{}, ratelimit.LearnConfig{Off: true}))
	}
	fleet[0].lim.Observe("gpt", sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: 300 * time.Millisecond})
	for _, r := range fleet {
		_, err := r.lim.Allow(t.Context(), "gpt", 0)
		le := refusal(t, err, ratelimit.CauseCooldown)
		assert.InDelta(t, 300*time.Millisecond, le.RetryAfter, float64(50*time.Millisecond))
	}
	_, err := fleet[1].lim.Allow(t.Context(), "other", 0)
	assert.NoError(t, err, "only that key pauses")

	fleet[2].lim.Cooldown("gpt", time.Now().Add(50*time.Millisecond)) // shorter: ignored
	_, err = fleet[0].lim.Allow(t.Context(), "gpt", 0)
	le := refusal(t, err, ratelimit.CauseCooldown)
	assert.Greater(t, le.RetryAfter, 200*time.Millisecond, "a cooldown is never shortened")

	time.Sleep(le.RetryAfter + 20*time.Millisecond)
	for _, r := range fleet {
		_, err := r.lim.Allow(t.Context(), "gpt", 0)
		assert.NoError(t, err, "every replica resumes when the cooldown ends")
	}
}

// Redis is killed while three replicas are busy: no call fails or blocks
// longer than the timeout, each replica keeps to its share, and all return
// to the shared limit once Redis is back.
func TestRedisDownFallsBackToLocalShareAndRecovers(t *testing.T) {
	srv := startRedis(t)
	const timeout, probe = 50 * time.Millisecond, 150 * time.Millisecond
	lim := ratelimit.Limit{RequestsPerSecond: 300, Burst: 30}
	fleet := newFleet(t, srv.Addr(), 3, lim, Config{Timeout: timeout, ProbeInterval: probe, Share: 1.0 / 3})

	// run drives every replica for d and returns what each admitted, the
	// slowest admission decision and how many decisions there were in all.
	run := func(d time.Duration) (per []int, slowest time.Duration, asked int) {
		per = make([]int, len(fleet))
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for i, r := range fleet {
			wg.Go(func() {
				for time.Since(start) < d {
					t0 := time.Now()
					_, err := r.lim.Allow(t.Context(), "k", 0)
					took := time.Since(t0)
					mu.Lock()
					slowest = max(slowest, took)
					asked++
					mu.Unlock()
					if err == nil {
						per[i]++
					} else if _, ok := errors.AsType[*ratelimit.LimitedError](err); !ok {
						t.Errorf("replica %d: call failed: %v", i, err)
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
			})
		}
		wg.Wait()
		return per, slowest, asked
	}
	sum := func(per []int) (n int) {
		for _, v := range per {
			n += v
		}
		return n
	}

	// The shared limit admits its burst and 0.3 s of its rate, and no
	// more; it admits that much when asked for more (each decision is a
	// Redis round trip: on a loaded machine the replicas may ask less).
	per, _, asked := run(300 * time.Millisecond)
	const shared = 30 + 300*3/10 // burst + 0.3 s at 300/s
	assert.LessOrEqual(t, sum(per), shared+20, "shared: %v of %d", per, asked)
	assert.GreaterOrEqual(t, sum(per), min(asked, shared)-20, "shared: %v of %d", per, asked)

	srv.Stop()
	per, slowest, _ := run(600 * time.Millisecond)
	t.Logf("Redis down: admitted %v, slowest decision %v", per, slowest)
	assert.LessOrEqual(t, slowest, timeout+50*time.Millisecond, "no call waits much longer than the timeout")
	for i, r := range fleet {
		assert.Equal(t, StateLocal, r.store.State(), "replica %d", i)
		// A third of the limit: burst 10 + 100/s over 0.6s, plus what the
		// first failing round trip let through.
		assert.LessOrEqual(t, per[i], 10+60+3, "replica %d keeps to its share", i)
		assert.GreaterOrEqual(t, per[i], 50, "replica %d keeps admitting", i)
	}

	srv.Restart()
	require.Eventually(t, func() bool {
		_, _, _ = run(20 * time.Millisecond)
		for _, r := range fleet {
			if r.store.State() != StateShared {
				return false
			}
		}
		return true
	}, 3*time.Second, 10*time.Millisecond, "every replica returns to Redis")
	for i, r := range fleet {
		assert.Equal(t, []State{StateLocal, StateShared}, r.states(), "replica %d", i)
	}
	rdb := newClient(t, srv.Addr())
	n, err := rdb.Exists(t.Context(), "{sturdy:k}:req").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "admissions go through Redis again")
}

// A Redis that accepts connections but does not answer (SIGSTOP) costs a
// call at most the timeout, and then nothing until the next probe.
func TestHungRedisCostsAtMostTheTimeout(t *testing.T) {
	srv := startRedis(t)
	const timeout = 40 * time.Millisecond
	r := newReplica(t, srv.Addr(), ratelimit.Limit{RequestsPerSecond: 1000}, Config{Timeout: timeout, ProbeInterval: 100 * time.Millisecond})
	_, err := r.lim.Allow(t.Context(), "k", 0)
	require.NoError(t, err)

	srv.Pause()
	defer srv.Resume()
	var slow int
	start := time.Now()
	for time.Since(start) < 350*time.Millisecond {
		t0 := time.Now()
		_, err := r.lim.Allow(t.Context(), "k", 0)
		took := time.Since(t0)
		require.NoError(t, err)
		assert.Less(t, took, timeout+30*time.Millisecond)
		if took > timeout/2 {
			slow++
		}
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, StateLocal, r.store.State())
	assert.LessOrEqual(t, slow, 5, "only the first call and one probe per interval pay the timeout")

	srv.Resume()
	require.Eventually(t, func() bool {
		_, err := r.lim.Allow(t.Context(), "k", 0)
		return err == nil && r.store.State() == StateShared
	}, 3*time.Second, 10*time.Millisecond)
}

// A cooldown seen while Redis is down holds locally at once, and reaches
// the other replicas once Redis is back.
func TestCooldownDuringOutageReachesTheFleetWhenRedisReturns(t *testing.T) {
	srv := startRedis(t)
	fleet := newFleet(t, srv.Addr(), 2, ratelimit.Limit{}, Config{ProbeInterval: 50 * time.Millisecond})
	a, b := fleet[0], fleet[1]
	srv.Stop()

	a.lim.Observe("gpt", sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: 5 * time.Second})
	_, err := a.lim.Allow(t.Context(), "gpt", 0)
	refusal(t, err, ratelimit.CauseCooldown)
	assert.Equal(t, StateLocal, a.store.State())

	srv.Restart()
	require.Eventually(t, func() bool {
		_, err := a.lim.Allow(t.Context(), "other", 0) // a call that probes Redis
		return err == nil && a.store.State() == StateShared
	}, 3*time.Second, 10*time.Millisecond)
	_, err = a.lim.Allow(t.Context(), "gpt", 0)
	refusal(t, err, ratelimit.CauseCooldown) // still in force on a, now from Redis or locally
	require.Eventually(t, func() bool {
		_, err := b.lim.Allow(t.Context(), "gpt", 0)
		le, ok := errors.AsType[*ratelimit.LimitedError](err)
		return ok && le.Cause == ratelimit.CauseCooldown && le.RetryAfter > 4*time.Second
	}, time.Second, 10*time.Millisecond, "the other replica learns of the cooldown")
}

func TestLocalFallbackIsTheConfiguredShare(t *testing.T) {
	s, err := New(Config{Client: newClient(t, "127.0.0.1:1"), Share: 0.25})
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		lim, got ratelimit.Limit
	}{
		{"quarter", ratelimit.Limit{RequestsPerSecond: 100, Burst: 40, TokensPerMinute: 1000, TokenBurst: 400},
			ratelimit.Limit{RequestsPerSecond: 25, Burst: 10, TokensPerMinute: 250, TokenBurst: 100}},
		{"never below one", ratelimit.Limit{RequestsPerSecond: 1, Burst: 1, TokensPerMinute: 2, TokenBurst: 2},
			ratelimit.Limit{RequestsPerSecond: 0.25, Burst: 1, TokensPerMinute: 1, TokenBurst: 1}},
		{"unlimited stays unlimited", ratelimit.Limit{}, ratelimit.Limit{}},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.got, s.scaled(tc.lim)) })
	}
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "shared", StateShared.String())
	assert.Equal(t, "local", StateLocal.String())
	assert.Equal(t, "State(7)", State(7).String())
}
