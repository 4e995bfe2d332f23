package chain

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/internal/attempt"
	"github.com/sturdyai/sturdy/internal/fakepick"
	"github.com/sturdyai/sturdy/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The names these tests were written with, when the chain was degrade's.
type (
	Tier     = TierConfig
	Attempt  = attempt.Info
	Fallback struct {
		From, To int
		Reason   sturdy.FallbackReason
	}
)

const (
	ReasonFailed = sturdy.FallbackFailed
)

var testNames = Names{
	Op:       "degrade",
	Tiers:    "Config.Tiers",
	Tier:     func(i int, _ string) string { return fmt.Sprintf("Tiers[%d]", i) },
	Failover: "Config.Failover", Hedge: "Config.Hedge", Limiter: "Config.Limiter",
	Throttle: "Config.Throttle", MaxWait: "Config.MaxWait",
}

// onFallback collects a chain's fallbacks into *fb.
func onFallback(fb *[]Fallback) func(from, to int, r sturdy.FallbackReason) {
	return func(from, to int, r sturdy.FallbackReason) { *fb = append(*fb, Fallback{from, to, r}) }
}

// perSecond is a limit of one request a second, as the tests' limiters had.
var perSecond = ratelimit.Limit{RequestsPerSecond: 1, Burst: 1}

// backend answers per endpoint name.
type backend struct {
	mu    sync.Mutex
	by    map[string]sturdy.Outcome
	delay map[string]time.Duration
	calls []string
}

func (b *backend) fn(ctx context.Context, a Attempt) (string, sturdy.Outcome) {
	b.mu.Lock()
	o := b.by[a.Endpoint.Name]
	d := b.delay[a.Endpoint.Name]
	b.calls = append(b.calls, a.Endpoint.Name)
	b.mu.Unlock()
	if d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return "", sturdy.Outcome{Class: sturdy.Canceled, Err: ctx.Err()}
		}
	}
	if o.Class != sturdy.Success && o.Err == nil {
		o.Err = fmt.Errorf("%s: %s", a.Endpoint.Name, o.Class)
	}
	return fmt.Sprintf("tier%d/%s", a.Tier, a.Endpoint.Name), o
}

func (b *backend) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// mustChain builds cfg; a Config without Failover makes one attempt per
// tier, as a degrade chain without a Retry policy did.
func mustChain(t *testing.T, cfg Config) *Chain {
	t.Helper()
	cfg.Names = testNames
	if cfg.Failover.MaxAttempts == 0 {
		cfg.Failover.MaxAttempts = 1
	}
	c, err := New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// retry is two attempts per tier, without backoff or budget.
var retry = failover.Config{MaxAttempts: 2, BaseBackoff: -1, BudgetRatio: -1}

// wait is three attempts per tier, waiting up to 1s for a Retry-After.
var wait = failover.Config{MaxAttempts: 3, BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: time.Second}

func runCall(c *Chain, b *backend, call Call[string]) (string, int, error) {
	call.Fn = b.fn
	var s Served
	v, err := Run(context.Background(), c, &call, &s)
	s.Release(-1)
	return v, s.Tier, err
}

func TestNewValidates(t *testing.T) {
	p := fakepick.New("a")
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no tiers"},
		{Config{Tiers: []Tier{{Name: "x"}}}, "no Picker"},
		{Config{Tiers: []Tier{{Name: "x", Picker: p}, {Name: "x", Picker: p}}}, "used twice"},
		{Config{Tiers: []Tier{{Picker: p, Quality: 1.5}}}, "Quality"},
		{Config{Tiers: []Tier{{Picker: p, ContextWindow: -1}}}, "ContextWindow"},
		{Config{Tiers: []Tier{{Picker: p}}, MaxWait: -1}, "MaxWait"},
	}
	for _, tc := range tests {
		tc.cfg.Names = testNames
		_, err := New(&tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "degrade: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
}

func TestPrimaryServes(t *testing.T) {
	b := &backend{}
	c := mustChain(t, Config{Tiers: []Tier{{Name: "primary", Picker: fakepick.New("p1")}, {Name: "fallback", Picker: fakepick.New("f1")}}})
	v, tier, err := runCall(c, b, Call[string]{})
	if err != nil || v != "tier0/p1" || tier != 0 {
		t.Fatalf("v=%q tier=%d err=%v", v, tier, err)
	}
}

func TestFallbackWhenFailoverExhausted(t *testing.T) {
	b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Unavailable}, "p2": {Class: sturdy.Timeout}}}
	var fb []Fallback
	c := mustChain(t, Config{
		Tiers:      []Tier{{Name: "primary", Picker: fakepick.New("p1", "p2")}, {Name: "fallback", Picker: fakepick.New("f1")}},
		Failover:   retry,
		OnFallback: onFallback(&fb),
	})
	v, tier, err := runCall(c, b, Call[string]{})
	if err != nil || v != "tier1/f1" || tier != 1 {
		t.Fatalf("v=%q tier=%d err=%v", v, tier, err)
	}
	if got := b.seen(); !slices.Equal(got, []string{"p1", "p2", "f1"}) {
		t.Fatalf("calls %v", got)
	}
	if !slices.Equal(fb, []Fallback{{From: 0, To: 1, Reason: ReasonFailed}}) {
		t.Fatalf("fallbacks %v", fb)
	}
}

func TestProactiveSkips(t *testing.T) {
	t.Run("unhealthy tier is skipped without an attempt", func(t *testing.T) {
		b := &backend{}
		primary := fakepick.New("p1")
		primary.SetReady(false)
		c := mustChain(t, Config{Tiers: []Tier{{Picker: primary}, {Picker: fakepick.New("f1")}}})
		_, tier, err := runCall(c, b, Call[string]{})
		if err != nil || tier != 1 || primary.Picks() != 0 {
			t.Fatalf("tier=%d err=%v picks on primary=%d", tier, err, primary.Picks())
		}
	})
	t.Run("limited tier is skipped without an attempt", func(t *testing.T) {
		b := &backend{}
		primary := fakepick.New("p1")
		c := mustChain(t, Config{Tiers: []Tier{{Picker: primary, Limit: perSecond}, {Picker: fakepick.New("f1")}}})
		_, t1, _ := runCall(c, b, Call[string]{})
		_, t2, err := runCall(c, b, Call[string]{})
		if t1 != 0 || t2 != 1 || err != nil || primary.Picks() != 1 {
			t.Fatalf("tiers %d,%d err=%v primary picks=%d", t1, t2, err, primary.Picks())
		}
	})
	t.Run("prompt larger than the window skips the tier", func(t *testing.T) {
		b := &backend{}
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("small"), ContextWindow: 8000}, {Picker: fakepick.New("big"), ContextWindow: 128000}}})
		_, tier, err := runCall(c, b, Call[string]{PromptTokens: 20000})
		if err != nil || tier != 1 {
			t.Fatalf("tier=%d err=%v", tier, err)
		}
	})
	t.Run("the last tier is tried even if it looks unhealthy", func(t *testing.T) {
		b := &backend{}
		only := fakepick.New("p1")
		only.SetReady(false)
		c := mustChain(t, Config{Tiers: []Tier{{Picker: only}}})
		if _, _, err := runCall(c, b, Call[string]{}); err != nil {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestTooLargeMovesToLargerWindow(t *testing.T) {
	b := &backend{by: map[string]sturdy.Outcome{"small": {Class: sturdy.TooLarge}}}
	c := mustChain(t, Config{Tiers: []Tier{
		{Name: "small", Picker: fakepick.New("small"), ContextWindow: 8000},
		{Name: "same", Picker: fakepick.New("same"), ContextWindow: 8000},
		{Name: "large", Picker: fakepick.New("large"), ContextWindow: 128000},
	}})
	v, tier, err := runCall(c, b, Call[string]{})
	if err != nil || tier != 2 || v != "tier2/large" {
		t.Fatalf("v=%q tier=%d err=%v", v, tier, err)
	}
	if got := b.seen(); !slices.Equal(got, []string{"small", "large"}) {
		t.Fatalf("calls %v: the same-window tier must be skipped", got)
	}
}

func TestFatalAndOnceDoNotFallBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  sturdy.Outcome
		once bool
		want error
	}{
		{"fatal", sturdy.Outcome{Class: sturdy.Fatal}, false, sturdy.ErrFatal},
		{"unreplayable request", sturdy.Outcome{Class: sturdy.Unavailable}, true, sturdy.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &backend{by: map[string]sturdy.Outcome{"p1": tc.out}}
			c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1", "p2")}, {Picker: fakepick.New("f1")}}, Failover: retry})
			v, _, err := runCall(c, b, Call[string]{Once: tc.once})
			if !errors.Is(err, tc.want) || v != "tier0/p1" {
				t.Fatalf("v=%q err=%v", v, err)
			}
			if got := b.seen(); !slices.Equal(got, []string{"p1"}) {
				t.Fatalf("calls %v", got)
			}
		})
	}
}

func TestAllTiersFailListsEveryAttempt(t *testing.T) {
	var cleaned []string
	b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Unavailable}, "f1": {Class: sturdy.Overloaded}}}
	c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1")}, {Picker: fakepick.New("f1")}}})
	call := Call[string]{Fn: b.fn, Cleanup: func(v string) { cleaned = append(cleaned, v) }}
	v, err := Run(context.Background(), c, &call, new(Served))
	if !errors.Is(err, sturdy.ErrOverloaded) || v != "tier1/f1" {
		t.Fatalf("v=%q err=%v", v, err)
	}
	se, _ := errors.AsType[*sturdy.Error](err)
	if se == nil || len(se.Attempts) != 2 || se.Attempts[0].Endpoint != "p1" || se.Attempts[1].Endpoint != "f1" {
		t.Fatalf("attempts %+v", se)
	}
	if !slices.Equal(cleaned, []string{"tier0/p1"}) {
		t.Fatalf("cleaned %v: the primary's failure must be released when the fallback replaces it", cleaned)
	}
	if s := c.Stats(); s.Failed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNoTierCanServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tiers := []Tier{{Name: "a", Picker: fakepick.New("a1"), Limit: perSecond}, {Name: "b", Picker: fakepick.New("b1"), Limit: perSecond}}
		c := mustChain(t, Config{Tiers: tiers})
		b := &backend{}
		runCall(c, b, Call[string]{}) // spends a's burst
		runCall(c, b, Call[string]{}) // spends b's burst
		_, _, err := runCall(c, b, Call[string]{})
		if !errors.Is(err, sturdy.ErrOverloaded) || !errors.Is(err, ratelimit.ErrLimited) {
			t.Fatalf("err = %v", err)
		}
		se, _ := errors.AsType[*sturdy.Error](err)
		if se.RetryAfter <= 0 || se.RetryAfter > time.Second {
			t.Fatalf("RetryAfter = %v, want when a tier frees up", se.RetryAfter)
		}
		// With MaxWait, the call waits for the soonest tier instead.
		c2 := mustChain(t, Config{MaxWait: 2 * time.Second, Tiers: tiers})
		spend(t, c2.limiter, "a", "b")
		start := time.Now()
		if _, _, err := runCall(c2, b, Call[string]{}); err != nil {
			t.Fatalf("err = %v", err)
		}
		if waited := time.Since(start); waited <= 0 || waited > time.Second {
			t.Fatalf("waited %v", waited)
		}
	})
}

func TestOverloadedTierIsPausedAndPrimaryReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Overloaded, RetryAfter: 2 * time.Second}}}
		primary := fakepick.New("p1")
		c := mustChain(t, Config{Tiers: []Tier{{Picker: primary}, {Picker: fakepick.New("f1")}}})
		if _, tier, err := runCall(c, b, Call[string]{}); err != nil || tier != 1 {
			t.Fatalf("tier=%d err=%v", tier, err)
		}
		b.mu.Lock()
		delete(b.by, "p1") // the primary recovers
		b.mu.Unlock()
		if _, tier, _ := runCall(c, b, Call[string]{}); tier != 1 || primary.Picks() != 1 {
			t.Fatalf("tier=%d picks=%d: the paused primary was tried", tier, primary.Picks())
		}
		time.Sleep(2 * time.Second)
		if _, tier, _ := runCall(c, b, Call[string]{}); tier != 0 {
			t.Fatalf("tier=%d: the call did not go back to the primary after its Retry-After", tier)
		}
	})
}

func TestSlowTierYields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{delay: map[string]time.Duration{"p1": time.Hour, "f1": 10 * time.Millisecond}}
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1"), Timeout: 200 * time.Millisecond}, {Picker: fakepick.New("f1")}}})
		start := time.Now()
		_, tier, err := runCall(c, b, Call[string]{})
		if err != nil || tier != 1 {
			t.Fatalf("tier=%d err=%v", tier, err)
		}
		if got := time.Since(start); got != 210*time.Millisecond {
			t.Fatalf("took %v, want 210ms", got)
		}
	})
}

func TestLaterTierWhenALaterTierCanServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Overloaded, RetryAfter: 500 * time.Millisecond}}}
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1")}, {Picker: fakepick.New("f1")}}, Failover: wait})
		start := time.Now()
		if _, tier, err := runCall(c, b, Call[string]{}); err != nil || tier != 1 {
			t.Fatalf("tier=%d err=%v", tier, err)
		}
		if got := time.Since(start); got != 0 {
			t.Fatalf("waited %v for the primary's Retry-After although the fallback could serve", got)
		}
		// The last tier still waits when the wait is short enough: twice
		// 500ms, before its second and third attempts.
		only := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1")}}, Failover: wait})
		start = time.Now()
		runCall(only, b, Call[string]{})
		if got := time.Since(start); got != time.Second {
			t.Fatalf("the last tier waited %v, want the server's 500ms twice", got)
		}
	})
}

// runOverloadedOnce runs a call through c whose first attempt on p1 is
// answered Overloaded with a Retry-After of 500ms and every other attempt
// is served. It returns the endpoint that served, the tier, the attempts
// on p1 and how long the call took.
func runOverloadedOnce(t *testing.T, c *Chain) (string, int, int32, time.Duration) {
	t.Helper()
	var n atomic.Int32
	call := &Call[string]{Fn: func(ctx context.Context, a Attempt) (string, sturdy.Outcome) {
		if a.Endpoint.Name == "p1" && n.Add(1) == 1 {
			return "", sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: 500 * time.Millisecond, Err: sturdy.ErrOverloaded}
		}
		return a.Endpoint.Name, sturdy.Outcome{}
	}}
	start := time.Now()
	var s Served
	v, err := Run(context.Background(), c, call, &s)
	require.NoError(t, err)
	s.Release(-1)
	return v, s.Tier, n.Load(), time.Since(start)
}

// spend takes the one request each key's burst allows.
func spend(t *testing.T, lim *ratelimit.Limiter, keys ...string) {
	for _, k := range keys {
		p, err := lim.Allow(context.Background(), k, 0)
		require.NoError(t, err)
		p.Done(0)
	}
}

// A tier with a later one behind it falls back at once rather than wait
// for a server's Retry-After (TestLaterTierWhenALaterTierCanServe);
// when the later tier cannot take the call (its limit is spent), the call
// comes back to the first after the wait.
func TestRetryAfterWaitComesBackWhenNoLaterTierServes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fell []Fallback
		c := mustChain(t, Config{Tiers: []Tier{{Name: "p", Picker: fakepick.New("p1")}, {Name: "fb", Picker: fakepick.New("f1"), Limit: ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}}},
			Failover: wait, OnFallback: onFallback(&fell)})
		spend(t, c.limiter, "fb")
		v, tier, n, took := runOverloadedOnce(t, c)
		assert.Equal(t, "p1", v)
		assert.Equal(t, 0, tier)
		assert.EqualValues(t, 2, n, "p1 once, then again after its Retry-After")
		assert.Equal(t, 500*time.Millisecond, took)
		assert.Empty(t, fell, "no tier served but the primary")
	})
}

// A call that waited for the soonest limiter ends on that tier, and so
// waits for a server's Retry-After there as a last tier would.
func TestRetryAfterWaitOnTheTierALimiterWaitChose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustChain(t, Config{MaxWait: 2 * time.Second, Failover: wait, Tiers: []Tier{
			{Name: "p", Picker: fakepick.New("p1"), Limit: perSecond}, {Name: "fb", Picker: fakepick.New("f1"), Limit: ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}}}})
		spend(t, c.limiter, "p", "fb")
		v, tier, n, took := runOverloadedOnce(t, c)
		assert.Equal(t, "p1", v)
		assert.Equal(t, 0, tier)
		assert.EqualValues(t, 2, n)
		assert.Equal(t, 1500*time.Millisecond, took, "1s for p's limit, then 500ms for its Retry-After")
	})
}

// A tier without limits keeps its servers' pauses itself (cooldown.go): a
// call that may wait (MaxWait) waits out the pause, one that may not wait
// that long is refused at once with the time to come back.
func TestLocalCooldownWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Overloaded, RetryAfter: 2 * time.Second}}}
		for _, tc := range []struct {
			maxWait time.Duration
			took    time.Duration
			served  bool
		}{{3 * time.Second, 2 * time.Second, true}, {time.Second, 0, false}} {
			c := mustChain(t, Config{MaxWait: tc.maxWait, Tiers: []Tier{{Name: "p", Picker: fakepick.New("p1")}}})
			require.True(t, c.tiers[0].local)
			_, _, err := runCall(c, b, Call[string]{})
			require.ErrorIs(t, err, sturdy.ErrOverloaded)
			b.mu.Lock()
			delete(b.by, "p1") // the server recovers, but asked for 2s
			b.mu.Unlock()
			start := time.Now()
			_, _, err = runCall(c, b, Call[string]{})
			assert.Equal(t, tc.took, time.Since(start))
			if tc.served {
				assert.NoError(t, err)
			} else {
				se, _ := errors.AsType[*sturdy.Error](err)
				require.NotNil(t, se, "%v", err)
				assert.ErrorIs(t, err, ratelimit.ErrLimited)
				assert.Equal(t, 2*time.Second, se.RetryAfter)
			}
			b.mu.Lock()
			b.by["p1"] = sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: 2 * time.Second}
			b.mu.Unlock()
		}
	})
}

func TestAnEndpointThatSaidWaitCoolsAloneNotItsTier(t *testing.T) {
	for _, learn := range []bool{true, false} {
		t.Run(fmt.Sprintf("learning %v", learn), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Overloaded, RetryAfter: 2 * time.Second}}}
				primary := fakepick.New("p1", "p2")
				c := mustChain(t, Config{
					Tiers:   []Tier{{Picker: primary}, {Picker: fakepick.New("f1")}},
					Limiter: ratelimit.Config{Learn: ratelimit.LearnConfig{Off: !learn}},
				})
				if _, tier, err := runCall(c, b, Call[string]{}); err != nil || tier != 1 {
					t.Fatalf("tier=%d err=%v: p1's 429 sends the first call to the fallback", tier, err)
				}
				served := map[int]int{}
				for range 4 {
					_, tier, err := runCall(c, b, Call[string]{})
					require.NoError(t, err)
					served[tier]++
				}
				if !learn {
					// Without learning, one 429 pauses the whole tier.
					assert.Equal(t, map[int]int{1: 4}, served)
					return
				}
				assert.Equal(t, map[int]int{0: 4}, served, "p2 serves the primary tier while p1 cools down")
				assert.Equal(t, 1, strings.Count(strings.Join(b.seen(), ","), "p1"), "p1 was not tried again during its Retry-After: %v", b.seen())
				assert.Positive(t, c.LearnedRate("p1"), "p1 is paced from now on")
				assert.Zero(t, c.LearnedRate("p2"), "p2 never refused: unpaced")
			})
		})
	}
}

func TestEveryEndpointPacedFallsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Overloaded, RetryAfter: time.Second}}}
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1")}, {Picker: fakepick.New("f1")}}})
		_, tier, err := runCall(c, b, Call[string]{})
		require.NoError(t, err)
		require.Equal(t, 1, tier)
		time.Sleep(time.Second) // the Retry-After is over
		b.mu.Lock()
		delete(b.by, "p1")
		b.mu.Unlock()
		// p1 is paced at a few requests a second after one refusal with
		// nothing served: a burst of calls goes mostly to the fallback,
		// not all to p1 at once.
		served := map[int]int{}
		for range 20 {
			_, tier, err := runCall(c, b, Call[string]{})
			require.NoError(t, err)
			served[tier]++
		}
		assert.Positive(t, served[0], "the primary is back, paced")
		assert.Greater(t, served[1], served[0], "the ramp is paced, not a burst")
	})
}

func TestListenPacesAtTheToldRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1")}}})
		h := http.Header{}
		h.Set("X-Ratelimit-Limit-Requests", "20")
		h.Set("X-Ratelimit-Remaining-Requests", "10")
		h.Set("X-Ratelimit-Reset-Requests", "50ms") // 10 requests refill in 50 ms: 200/s
		c.Listen("p1", h)
		assert.InDelta(t, 0.97*200, c.LearnedRate("p1"), 1e-6)
		c.Listen("other", http.Header{"Content-Type": {"application/json"}})
		assert.Zero(t, c.LearnedRate("other"))
	})
}

func TestAPacedTierIsSkippedAsLimitedEvenForOnceCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Overloaded, RetryAfter: time.Second}}}
		var fb []Fallback
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1")}, {Picker: fakepick.New("f1")}}, OnFallback: onFallback(&fb)})
		_, _, _ = runCall(c, b, Call[string]{}) // p1 says wait: it is paced from now on
		fb = nil
		_, tier, err := runCall(c, b, Call[string]{Once: true})
		require.NoError(t, err, "nothing went out to p1, so a call that cannot be replayed may still fall back")
		assert.Equal(t, 1, tier)
		assert.Equal(t, []Fallback{{0, 1, sturdy.FallbackLimited}}, fb)
	})
}

// Call.Start is when the call's first attempt starts: its latency counts
// from there. A later tier's attempts, and an attempt that waited for
// admission (MaxWait), start when they do.
func TestCallStartIsTheFirstAttemptsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Unavailable}}, delay: map[string]time.Duration{"p1": time.Second, "f1": 2 * time.Second}}
		var lat []time.Duration
		onAttempt := func(a sturdy.Attempt) { lat = append(lat, a.Latency) }
		c := mustChain(t, Config{OnAttempt: onAttempt, Tiers: []Tier{{Picker: fakepick.New("p1")}, {Picker: fakepick.New("f1")}}})
		start := time.Now()
		time.Sleep(500 * time.Millisecond) // the adapter's work before Run
		_, tier, err := runCall(c, b, Call[string]{Start: start})
		require.NoError(t, err)
		require.Equal(t, 1, tier)
		assert.Equal(t, []time.Duration{1500 * time.Millisecond, 2 * time.Second}, lat)

		// Every tier refused: the call waits for the limiter, and its
		// attempt starts after the wait.
		lat = nil
		c = mustChain(t, Config{OnAttempt: onAttempt, MaxWait: 2 * time.Second, Tiers: []Tier{{Picker: fakepick.New("g1"), Limit: perSecond}}})
		_, _, err = runCall(c, b, Call[string]{}) // spends the burst
		require.NoError(t, err)
		start = time.Now()
		_, _, err = runCall(c, b, Call[string]{Start: start})
		require.NoError(t, err)
		assert.Equal(t, time.Second, time.Since(start), "the call waited for the limiter")
		assert.Equal(t, time.Duration(0), lat[1], "the attempt after the wait")
	})
}

// TestATiersEndpointsRefusedTogetherAreLearnedAsOne: Config.Peers names
// each tier's endpoints to the limiter, so two primary endpoints refused
// in one moment are learned as one key (one rate, their sum), while the
// fallback's endpoint, refused in that same moment, keeps its own.
func TestATiersEndpointsRefusedTogetherAreLearnedAsOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := mustChain(t, Config{
			Tiers: []Tier{{Picker: fakepick.New("p1", "p2")}, {Picker: fakepick.New("f1")}},
			Peers: [][]string{{"p1", "p2"}, {"f1"}},
		})
		ok := sturdy.Outcome{Class: sturdy.Success, Latency: 10 * time.Millisecond}
		for range 100 {
			for _, ep := range []string{"p1", "p2", "f1"} {
				c.pacing.observe(ep, ok)
			}
			time.Sleep(10 * time.Millisecond)
		}
		no := sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: time.Second, Latency: 10 * time.Millisecond}
		for _, ep := range []string{"p1", "f1", "p2"} {
			c.pacing.observe(ep, no)
		}
		p1, p2, f1 := c.LearnedRate("p1"), c.LearnedRate("p2"), c.LearnedRate("f1")
		assert.Positive(t, f1)
		assert.Equal(t, p1, p2, "one rate for the primary's two endpoints")
		assert.Greater(t, p1, 1.5*f1, "the primary's rate is the sum of two endpoints' like f1")
	})
}
