package ratelimit

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
)

func newLimiter(t *testing.T, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	require.NoError(t, err)
	return l
}

// refusal asserts err is a *LimitedError for key with reason and returns it.
func refusal(t *testing.T, err error, key string, reason Cause) *LimitedError {
	t.Helper()
	le, ok := errors.AsType[*LimitedError](err)
	require.True(t, ok, "want *LimitedError, got %v", err)
	assert.Equal(t, key, le.Key)
	assert.Equal(t, reason, le.Cause)
	return le
}

func TestNewRejectsValuesThatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative rps", Config{Default: Limit{RequestsPerSecond: -1}}, "ratelimit: Default.RequestsPerSecond"},
		{"infinite rps", Config{Default: Limit{RequestsPerSecond: math.Inf(1)}}, "ratelimit: Default.RequestsPerSecond"},
		{"negative burst", Config{Default: Limit{RequestsPerSecond: 1, Burst: -1}}, "ratelimit: Default.Burst"},
		{"negative tpm", Config{Default: Limit{TokensPerMinute: -1}}, "ratelimit: Default.TokensPerMinute"},
		{"negative token burst", Config{Default: Limit{TokensPerMinute: 1, TokenBurst: -5}}, "ratelimit: Default.TokenBurst"},
		{"bad override", Config{Overrides: map[string]Limit{"gpt": {TokensPerMinute: -1}}}, `ratelimit: Overrides["gpt"].TokensPerMinute`},
		{"negative max keys", Config{MaxKeys: -1}, "ratelimit: MaxKeys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), err.Error())
		})
	}
	_, err := New(Config{})
	assert.NoError(t, err, "the zero Config works")
}

func TestRequestsAdmittedAtBurstPlusRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lim   Limit
		span  time.Duration
		admit int
	}{
		{"burst 5 then 10/s", Limit{RequestsPerSecond: 10, Burst: 5}, 1050 * time.Millisecond, 5 + 10},
		{"default burst ceil(2)", Limit{RequestsPerSecond: 2}, 3050 * time.Millisecond, 2 + 6},
		{"default burst 1 under 1/s", Limit{RequestsPerSecond: 0.5}, 10050 * time.Millisecond, 1 + 5},
		{"fractional rate", Limit{RequestsPerSecond: 3, Burst: 1}, 2050 * time.Millisecond, 1 + 6},
		{"unlimited", Limit{}, 100 * time.Millisecond, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiter(t, Config{Default: tc.lim})
				start := time.Now()
				admitted := 0
				for time.Since(start) < tc.span {
					if _, err := l.Allow(t.Context(), "k", 0); err == nil {
						admitted++
					} else {
						refusal(t, err, "k", CauseRequests)
					}
					time.Sleep(time.Millisecond)
				}
				assert.Equal(t, tc.admit, admitted)
			})
		})
	}
}

func TestRefusalSaysWhenToComeBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{Default: Limit{RequestsPerSecond: 4, Burst: 2}})
		for range 2 {
			_, err := l.Allow(t.Context(), "k", 0)
			require.NoError(t, err)
		}
		_, err := l.Allow(t.Context(), "k", 0)
		le := refusal(t, err, "k", CauseRequests)
		assert.Equal(t, 250*time.Millisecond, le.RetryAfter)
		assert.Equal(t, time.Now().Add(250*time.Millisecond), le.At)

		assert.ErrorIs(t, err, ErrLimited)
		assert.ErrorIs(t, err, sturdy.ErrOverloaded)
		assert.Equal(t, sturdy.Overloaded, sturdy.ClassOf(err))
		assert.Equal(t, `ratelimit: key "k" limited by requests (retry after 250ms)`, err.Error())

		time.Sleep(le.RetryAfter - time.Nanosecond)
		_, err = l.Allow(t.Context(), "k", 0)
		require.Error(t, err, "one nanosecond early")
		time.Sleep(time.Nanosecond)
		_, err = l.Allow(t.Context(), "k", 0)
		assert.NoError(t, err, "at RetryAfter")
	})
}

func TestTokenEstimateCorrected(t *testing.T) {
	// 6000 tokens/min refill 100 tokens/s; the bucket holds 1000.
	lim := Limit{TokensPerMinute: 6000, TokenBurst: 1000}
	for _, tc := range []struct {
		name      string
		est       int64
		actual    int64
		next      int64         // the next call's estimate
		nextAfter time.Duration // how long the next call must wait
	}{
		{"give back lets more in", 1000, 200, 800, 0},
		{"give back only what was unused", 1000, 200, 801, 10 * time.Millisecond},
		{"exact estimate changes nothing", 600, 600, 400, 0},
		{"unknown usage keeps the estimate", 1000, -1, 1, 10 * time.Millisecond},
		{"take more delays", 100, 1500, 100, 6 * time.Second},                               // 500 in debt + 100 needed at 100/s
		{"over the burst leaves debt", 3000, -1, 10, 20*time.Second + 100*time.Millisecond}, // admitted full, 2000 in debt
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiter(t, Config{Default: lim})
				p, err := l.Allow(t.Context(), "m", tc.est)
				require.NoError(t, err)
				p.Done(tc.actual)

				_, err = l.Allow(t.Context(), "m", tc.next)
				if tc.nextAfter == 0 {
					require.NoError(t, err)
					return
				}
				le := refusal(t, err, "m", CauseTokens)
				assert.Equal(t, tc.nextAfter, le.RetryAfter)

				start := time.Now()
				_, err = l.Wait(t.Context(), "m", tc.next, time.Minute)
				require.NoError(t, err)
				assert.Equal(t, tc.nextAfter, time.Since(start), "Wait waits exactly as long as the refusal said")
			})
		})
	}
}

func TestLargestWaitNamesTheCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{Default: Limit{RequestsPerSecond: 1, TokensPerMinute: 60}})
		_, err := l.Allow(t.Context(), "k", 60)
		require.NoError(t, err)
		_, err = l.Allow(t.Context(), "k", 30)
		le := refusal(t, err, "k", CauseTokens)
		assert.Equal(t, 30*time.Second, le.RetryAfter, "tokens need 30s, requests only 1s")

		l.Cooldown("k", time.Now().Add(time.Minute))
		_, err = l.Allow(t.Context(), "k", 30)
		le = refusal(t, err, "k", CauseCooldown)
		assert.Equal(t, time.Minute, le.RetryAfter)
	})
}

func TestCooldownFromOverloadedOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{})
		l.Observe("a", sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: 2 * time.Second})

		_, err := l.Allow(t.Context(), "a", 0)
		le := refusal(t, err, "a", CauseCooldown)
		assert.Equal(t, 2*time.Second, le.RetryAfter)
		assert.Equal(t, time.Now().Add(2*time.Second), le.At)

		_, err = l.Allow(t.Context(), "b", 0)
		assert.NoError(t, err, "other keys are not paused")

		start := time.Now()
		_, err = l.Wait(t.Context(), "a", 0, time.Second)
		le = refusal(t, err, "a", CauseCooldown)
		assert.Equal(t, 2*time.Second, le.RetryAfter)
		assert.Zero(t, time.Since(start), "a wait longer than maxWait is refused at once")

		_, err = l.Wait(t.Context(), "a", 0, 5*time.Second)
		require.NoError(t, err)
		assert.Equal(t, 2*time.Second, time.Since(start), "admitted when the cooldown ends")

		_, err = l.Allow(t.Context(), "a", 0)
		assert.NoError(t, err, "the cooldown is over")
	})
}

func TestObserveIgnoresWhatIsNotAServerPause(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    sturdy.Outcome
	}{
		{"success", sturdy.Outcome{Class: sturdy.Success, RetryAfter: time.Second}},
		{"unavailable", sturdy.Outcome{Class: sturdy.Unavailable, RetryAfter: time.Second}},
		{"overloaded without a hint", sturdy.Outcome{Class: sturdy.Overloaded}},
		{"our own refusal", sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: time.Second,
			Err: &LimitedError{Key: "a", Cause: CauseRequests, RetryAfter: time.Second}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLimiter(t, Config{})
				l.Observe("a", tc.o)
				_, err := l.Allow(t.Context(), "a", 0)
				assert.NoError(t, err)
			})
		})
	}
}

func TestCooldownNeverShortens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{})
		l.Cooldown("a", time.Now().Add(10*time.Second))
		l.Observe("a", sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: time.Second})
		l.Cooldown("a", time.Now().Add(-time.Second))
		_, err := l.Allow(t.Context(), "a", 0)
		assert.Equal(t, 10*time.Second, refusal(t, err, "a", CauseCooldown).RetryAfter)
	})
}

func TestWaitRespectsContext(t *testing.T) {
	lim := Limit{RequestsPerSecond: 1, Burst: 1, TokensPerMinute: 600, TokenBurst: 100}

	t.Run("deadline shorter than the wait refuses at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiter(t, Config{Default: lim})
			_, err := l.Allow(t.Context(), "k", 100)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err = l.Wait(ctx, "k", 20, 0)
			le := refusal(t, err, "k", CauseTokens)
			assert.Equal(t, 2*time.Second, le.RetryAfter, "20 tokens at 10/s")
			assert.Zero(t, time.Since(start))

			// Nothing was charged: at 2s the buckets allow exactly this call.
			time.Sleep(2 * time.Second)
			_, err = l.Allow(t.Context(), "k", 20)
			assert.NoError(t, err)
		})
	})

	t.Run("done context", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiter(t, Config{Default: lim})
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := l.Wait(ctx, "k", 0, time.Second)
			assert.ErrorIs(t, err, context.Canceled)
		})
	})

	t.Run("cancel while waiting gives the admission back", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiter(t, Config{Default: lim})
			_, err := l.Allow(t.Context(), "k", 100)
			require.NoError(t, err)

			ctx, cancel := context.WithCancel(t.Context())
			var werr error
			var wg sync.WaitGroup
			wg.Go(func() { _, werr = l.Wait(ctx, "k", 100, 0) })
			time.Sleep(300 * time.Millisecond)
			cancel()
			wg.Wait()
			assert.ErrorIs(t, werr, context.Canceled)

			// Had the waiter kept its request and 100 tokens, nothing would
			// be admitted before 2s (requests) and 20s (tokens).
			time.Sleep(10*time.Second - 300*time.Millisecond)
			_, err = l.Allow(t.Context(), "k", 100)
			assert.NoError(t, err)
		})
	})
}

func TestPermitCancelGivesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{Default: Limit{RequestsPerSecond: 1, TokensPerMinute: 60}})
		p, err := l.Allow(t.Context(), "k", 60)
		require.NoError(t, err)
		assert.Equal(t, "k", p.Key())
		_, err = l.Allow(t.Context(), "k", 1)
		require.Error(t, err)

		p.Cancel()
		_, err = l.Allow(t.Context(), "k", 60)
		assert.NoError(t, err, "the request and the 60 tokens came back")

		var zero Permit
		zero.Done(10) // no-ops
		zero.Cancel()
	})
}

func TestOverridesAndLimitFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{
			Default:   Limit{RequestsPerSecond: 1},
			Overrides: map[string]Limit{"big": {RequestsPerSecond: 3}, "free": {}},
			LimitFunc: func(key string) (Limit, bool) {
				switch {
				case strings.HasPrefix(key, "pro/"):
					return Limit{RequestsPerSecond: 2}, true
				case key == "broken":
					return Limit{RequestsPerSecond: -1}, true
				}
				return Limit{}, false
			},
		})
		burst := func(key string) int {
			n := 0
			for range 10 {
				if _, err := l.Allow(t.Context(), key, 0); err == nil {
					n++
				}
			}
			return n
		}
		assert.Equal(t, 1, burst("other"))
		assert.Equal(t, 3, burst("big"))
		assert.Equal(t, 10, burst("free"))
		assert.Equal(t, 2, burst("pro/acme"))

		_, err := l.Allow(t.Context(), "broken", 0)
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrLimited)
		assert.Contains(t, err.Error(), `ratelimit: LimitFunc("broken").RequestsPerSecond`)
	})
}

func TestKeysBounded(t *testing.T) {
	t.Run("idle keys go first", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiter(t, Config{Default: Limit{RequestsPerSecond: 1}, MaxKeys: 64})
			l.Cooldown("vip", time.Now().Add(time.Hour))
			for i := range 5000 {
				_, err := l.Allow(t.Context(), "tenant-"+strconv.Itoa(i), 0)
				require.NoError(t, err)
				assert.LessOrEqual(t, l.mem.n.Load(), int64(64))
				time.Sleep(100 * time.Millisecond) // keys become idle after 1s
			}
			_, err := l.Allow(t.Context(), "vip", 0)
			refusal(t, err, "vip", CauseCooldown)
		})
	})

	t.Run("least recently used go when none is idle", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newLimiter(t, Config{Default: Limit{RequestsPerSecond: 1}, MaxKeys: 64})
			for i := range 5000 {
				_, err := l.Allow(t.Context(), "tenant-"+strconv.Itoa(i), 0)
				require.NoError(t, err)
				assert.LessOrEqual(t, l.mem.n.Load(), int64(64))
				time.Sleep(time.Microsecond)
			}
			_, err := l.Allow(t.Context(), "tenant-4999", 0)
			require.Error(t, err, "the most recent key kept its state")
			_, err = l.Allow(t.Context(), "tenant-0", 0)
			assert.NoError(t, err, "the oldest key was forgotten")
		})
	})

	t.Run("unlimited keys keep no state", func(t *testing.T) {
		l := newLimiter(t, Config{})
		for i := range 1000 {
			_, err := l.Allow(t.Context(), "tenant-"+strconv.Itoa(i), 100)
			require.NoError(t, err)
		}
		assert.Zero(t, l.mem.n.Load())
	})
}

// concurrentAdmissions has 8 goroutines call Allow 200 times each over 8
// keys, with no time passing, and returns how many were admitted.
func concurrentAdmissions(t *testing.T, maxKeys int) int {
	l := newLimiter(t, Config{Default: Limit{RequestsPerSecond: 1, Burst: 50}, MaxKeys: maxKeys})
	var total atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := l.Allow(context.Background(), "k"+strconv.Itoa((g+i)%8), 0); err == nil {
					total.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(total.Load())
}

func TestConcurrentAdmissionsNeverExceedTheBurst(t *testing.T) {
	t.Run("every key kept", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// 1600 calls, 200 per key: exactly one burst each is admitted.
			assert.Equal(t, 8*50, concurrentAdmissions(t, 8))
		})
	})
	t.Run("keys evicted under load", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// 8 keys over a bound of 4: eviction may forget a key's
			// charges (a new burst), but concurrency breaks nothing.
			assert.Positive(t, concurrentAdmissions(t, 4))
		})
	})
}

func TestDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{Default: Limit{TokensPerMinute: 600}})

		v, err := Do(t.Context(), l, "m", 100, 0, func(context.Context) (string, int64, error) {
			return "ok", 500, nil
		})
		require.NoError(t, err)
		assert.Equal(t, "ok", v)
		_, err = l.Allow(t.Context(), "m", 101)
		// 600 − 500 leaves 100: one token short, 100ms at 10/s. Had only the
		// estimate been charged, 500 would be left.
		assert.Equal(t, 100*time.Millisecond, refusal(t, err, "m", CauseTokens).RetryAfter)

		busy := &sturdy.Error{Class: sturdy.Overloaded, RetryAfter: 30 * time.Second, Op: "test"}
		_, err = Do(t.Context(), l, "n", 0, 0, func(context.Context) (int, int64, error) { return 0, -1, busy })
		assert.ErrorIs(t, err, busy)
		ran := false
		_, err = Do(t.Context(), l, "n", 0, time.Second, func(context.Context) (int, int64, error) {
			ran = true
			return 1, 0, nil
		})
		assert.Equal(t, 30*time.Second, refusal(t, err, "n", CauseCooldown).RetryAfter)
		assert.False(t, ran, "a refused call does not run")
	})
}

// countingStore is a Store that is not the in-process one, so the Limiter
// goes through the interface.
type countingStore struct {
	inner                     *memStore
	takes, adjusts, cooldowns int
	fail                      error
}

func (s *countingStore) Take(ctx context.Context, key string, lim Limit, tokens int64, now time.Time, maxWait time.Duration) (Decision, error) {
	s.takes++
	if s.fail != nil {
		return Decision{}, s.fail
	}
	return s.inner.Take(ctx, key, lim, tokens, now, maxWait)
}

func (s *countingStore) Adjust(ctx context.Context, key string, lim Limit, requests, tokens int64, now time.Time) error {
	s.adjusts++
	return s.inner.Adjust(ctx, key, lim, requests, tokens, now)
}

func (s *countingStore) SetCooldown(ctx context.Context, key string, until time.Time) error {
	s.cooldowns++
	return s.inner.SetCooldown(ctx, key, until)
}

func TestCustomStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &countingStore{inner: newMemStore(0)}
		l := newLimiter(t, Config{Default: Limit{RequestsPerSecond: 1, TokensPerMinute: 1000}, Store: s})
		assert.Nil(t, l.mem)

		p, err := l.Allow(t.Context(), "k", 100)
		require.NoError(t, err)
		p.Done(50)
		_, err = l.Allow(t.Context(), "k", 100)
		refusal(t, err, "k", CauseRequests)
		l.Observe("k", sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: time.Minute})
		_, err = l.Allow(t.Context(), "k", 0)
		refusal(t, err, "k", CauseCooldown)
		assert.Equal(t, []int{3, 1, 1}, []int{s.takes, s.adjusts, s.cooldowns})

		s.fail = errors.New("redis: connection refused")
		_, err = l.Allow(t.Context(), "k", 0)
		assert.ErrorIs(t, err, s.fail)
		assert.NotErrorIs(t, err, ErrLimited)
		assert.True(t, strings.HasPrefix(err.Error(), "ratelimit: store: "))
	})
}
