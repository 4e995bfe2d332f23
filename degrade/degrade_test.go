package degrade

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	"github.com/sturdyai/sturdy/internal/fakepick"
	"github.com/sturdyai/sturdy/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

func mustChain(t *testing.T, cfg Config) *Chain {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRetry(t *testing.T, cfg failover.Config) *failover.Policy {
	p, err := failover.New(cfg)
	require.NoError(t, err)
	return p
}

func retry(t *testing.T) *failover.Policy {
	p, err := failover.New(failover.Config{MaxAttempts: 2, BaseBackoff: -1, BudgetRatio: -1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func run(c *Chain, b *backend, call Call[string]) (string, int, error) {
	call.Fn = b.fn
	v, s, err := Run(context.Background(), c, &call)
	s.Release(-1)
	return v, s.Tier, err
}

func TestNewValidates(t *testing.T) {
	p := fakepick.New("a")
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Tiers is empty"},
		{Config{Tiers: []Tier{{Name: "x"}}}, "no Picker"},
		{Config{Tiers: []Tier{{Name: "x", Picker: p}, {Name: "x", Picker: p}}}, "used twice"},
		{Config{Tiers: []Tier{{Picker: p, Quality: 1.5}}}, "Quality"},
		{Config{Tiers: []Tier{{Picker: p, ContextWindow: -1}}}, "ContextWindow"},
		{Config{Tiers: []Tier{{Picker: p}}, MaxWait: -1}, "MaxWait"},
	}
	for _, tc := range tests {
		_, err := New(tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "degrade: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error about %s", tc.cfg, err, tc.want)
		}
	}
}

func TestPrimaryServes(t *testing.T) {
	b := &backend{}
	c := mustChain(t, Config{Tiers: []Tier{{Name: "primary", Picker: fakepick.New("p1")}, {Name: "fallback", Picker: fakepick.New("f1")}}})
	v, tier, err := run(c, b, Call[string]{})
	if err != nil || v != "tier0/p1" || tier != 0 {
		t.Fatalf("v=%q tier=%d err=%v", v, tier, err)
	}
}

func TestFallbackWhenFailoverExhausted(t *testing.T) {
	b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Unavailable}, "p2": {Class: sturdy.Timeout}}}
	var fb []Fallback
	c := mustChain(t, Config{
		Tiers:      []Tier{{Name: "primary", Picker: fakepick.New("p1", "p2")}, {Name: "fallback", Picker: fakepick.New("f1")}},
		Retry:      retry(t),
		OnFallback: func(f Fallback) { fb = append(fb, f) },
	})
	v, tier, err := run(c, b, Call[string]{})
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
		_, tier, err := run(c, b, Call[string]{})
		if err != nil || tier != 1 || primary.Picks() != 0 {
			t.Fatalf("tier=%d err=%v picks on primary=%d", tier, err, primary.Picks())
		}
	})
	t.Run("limited tier is skipped without an attempt", func(t *testing.T) {
		b := &backend{}
		lim, _ := ratelimit.New(ratelimit.Config{Default: ratelimit.Limit{RequestsPerSecond: 1, Burst: 1}})
		primary := fakepick.New("p1")
		c := mustChain(t, Config{Tiers: []Tier{{Picker: primary, Limiter: lim}, {Picker: fakepick.New("f1")}}})
		_, t1, _ := run(c, b, Call[string]{})
		_, t2, err := run(c, b, Call[string]{})
		if t1 != 0 || t2 != 1 || err != nil || primary.Picks() != 1 {
			t.Fatalf("tiers %d,%d err=%v primary picks=%d", t1, t2, err, primary.Picks())
		}
	})
	t.Run("prompt larger than the window skips the tier", func(t *testing.T) {
		b := &backend{}
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("small"), ContextWindow: 8000}, {Picker: fakepick.New("big"), ContextWindow: 128000}}})
		_, tier, err := run(c, b, Call[string]{PromptTokens: 20000})
		if err != nil || tier != 1 {
			t.Fatalf("tier=%d err=%v", tier, err)
		}
	})
	t.Run("the last tier is tried even if it looks unhealthy", func(t *testing.T) {
		b := &backend{}
		only := fakepick.New("p1")
		only.SetReady(false)
		c := mustChain(t, Config{Tiers: []Tier{{Picker: only}}})
		if _, _, err := run(c, b, Call[string]{}); err != nil {
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
	v, tier, err := run(c, b, Call[string]{})
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
			c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1", "p2")}, {Picker: fakepick.New("f1")}}, Retry: retry(t)})
			v, _, err := run(c, b, Call[string]{Once: tc.once})
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
	v, _, err := Run(context.Background(), c, &call)
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
		lim, _ := ratelimit.New(ratelimit.Config{Default: ratelimit.Limit{RequestsPerSecond: 1, Burst: 1}})
		c := mustChain(t, Config{Tiers: []Tier{{Name: "a", Picker: fakepick.New("a1"), Limiter: lim}, {Name: "b", Picker: fakepick.New("b1"), Limiter: lim}}})
		b := &backend{}
		run(c, b, Call[string]{}) // spends a's burst
		run(c, b, Call[string]{}) // spends b's burst
		_, _, err := run(c, b, Call[string]{})
		if !errors.Is(err, sturdy.ErrOverloaded) || !errors.Is(err, ratelimit.ErrLimited) {
			t.Fatalf("err = %v", err)
		}
		se, _ := errors.AsType[*sturdy.Error](err)
		if se.RetryAfter <= 0 || se.RetryAfter > time.Second {
			t.Fatalf("RetryAfter = %v, want when a tier frees up", se.RetryAfter)
		}
		// With MaxWait, the call waits for the soonest tier instead.
		c2 := mustChain(t, Config{MaxWait: 2 * time.Second, Tiers: []Tier{{Name: "a", Picker: fakepick.New("a1"), Limiter: lim}, {Name: "b", Picker: fakepick.New("b1"), Limiter: lim}}})
		start := time.Now()
		if _, _, err := run(c2, b, Call[string]{}); err != nil {
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
		lim, _ := ratelimit.New(ratelimit.Config{})
		primary := fakepick.New("p1")
		c := mustChain(t, Config{Tiers: []Tier{{Picker: primary, Limiter: lim}, {Picker: fakepick.New("f1")}}})
		if _, tier, err := run(c, b, Call[string]{}); err != nil || tier != 1 {
			t.Fatalf("tier=%d err=%v", tier, err)
		}
		b.mu.Lock()
		delete(b.by, "p1") // the primary recovers
		b.mu.Unlock()
		if _, tier, _ := run(c, b, Call[string]{}); tier != 1 || primary.Picks() != 1 {
			t.Fatalf("tier=%d picks=%d: the paused primary was tried", tier, primary.Picks())
		}
		time.Sleep(2 * time.Second)
		if _, tier, _ := run(c, b, Call[string]{}); tier != 0 {
			t.Fatalf("tier=%d: the call did not go back to the primary after its Retry-After", tier)
		}
	})
}

func TestSlowTierYields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{delay: map[string]time.Duration{"p1": time.Hour, "f1": 10 * time.Millisecond}}
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1"), Timeout: 200 * time.Millisecond}, {Picker: fakepick.New("f1")}}})
		start := time.Now()
		_, tier, err := run(c, b, Call[string]{})
		if err != nil || tier != 1 {
			t.Fatalf("tier=%d err=%v", tier, err)
		}
		if got := time.Since(start); got != 210*time.Millisecond {
			t.Fatalf("took %v, want 210ms", got)
		}
	})
}

func TestStatsAndExpectedQuality(t *testing.T) {
	if got := ExpectedQuality([]float64{0.95, 0.05}, []float64{0.95, 0.90}); math.Abs(got-0.9475) > 1e-12 {
		t.Fatalf("ExpectedQuality = %v, want 0.9475 (the seed document's example)", got)
	}
	b := &backend{}
	primary := fakepick.New("p1")
	c := mustChain(t, Config{Tiers: []Tier{{Picker: primary, Quality: 0.95}, {Picker: fakepick.New("f1"), Quality: 0.90}}})
	for i := range 100 {
		primary.SetReady(i%20 != 0) // 5 of 100 calls find the primary down
		if _, _, err := run(c, b, Call[string]{}); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Stats()
	if s.Served[0] != 95 || s.Served[1] != 5 || math.Abs(s.ExpectedQuality-0.9475) > 1e-12 || s.Fallbacks != 5 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDo(t *testing.T) {
	c := mustChain(t, Config{Tiers: []Tier{{Name: "gpt", Model: "gpt-4o", Picker: fakepick.New("a")}}})
	got, err := Do(context.Background(), c, func(_ context.Context, tier Tier, ep *sturdy.Endpoint) (string, error) {
		return tier.Model + "@" + ep.Name, nil
	})
	if err != nil || got != "gpt-4o@a" {
		t.Fatalf("got %q err %v", got, err)
	}
}

func TestNoRetryAfterWaitWhenALaterTierCanServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backend{by: map[string]sturdy.Outcome{"p1": {Class: sturdy.Overloaded, RetryAfter: 500 * time.Millisecond}}}
		wait, err := failover.New(failover.Config{MaxAttempts: 3, BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1")}, {Picker: fakepick.New("f1")}}, Retry: wait})
		start := time.Now()
		if _, tier, err := run(c, b, Call[string]{}); err != nil || tier != 1 {
			t.Fatalf("tier=%d err=%v", tier, err)
		}
		if got := time.Since(start); got != 0 {
			t.Fatalf("waited %v for the primary's Retry-After although the fallback could serve", got)
		}
		// The last tier still waits when the wait is short enough: twice
		// 500ms, before its second and third attempts.
		only := mustChain(t, Config{Tiers: []Tier{{Picker: fakepick.New("p1")}}, Retry: wait})
		start = time.Now()
		run(only, b, Call[string]{})
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
	v, s, err := Run(context.Background(), c, call)
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
// for a server's Retry-After (TestNoRetryAfterWaitWhenALaterTierCanServe);
// when the later tier cannot take the call (its limit is spent), the call
// comes back to the first after the wait.
func TestRetryAfterWaitComesBackWhenNoLaterTierServes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		wait := mustRetry(t, failover.Config{MaxAttempts: 3, BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: time.Second})
		lim, err := ratelimit.New(ratelimit.Config{Default: ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1}})
		require.NoError(t, err)
		var fell []Fallback
		c := mustChain(t, Config{Tiers: []Tier{{Name: "p", Picker: fakepick.New("p1")}, {Name: "fb", Picker: fakepick.New("f1"), Limiter: lim}},
			Retry: wait, OnFallback: func(f Fallback) { fell = append(fell, f) }})
		spend(t, lim, "fb")
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
		wait := mustRetry(t, failover.Config{MaxAttempts: 3, BaseBackoff: -1, BudgetRatio: -1, MaxRetryAfterWait: time.Second})
		lim, err := ratelimit.New(ratelimit.Config{
			Overrides: map[string]ratelimit.Limit{"p": {RequestsPerSecond: 1, Burst: 1}},
			Default:   ratelimit.Limit{RequestsPerSecond: 0.001, Burst: 1},
		})
		require.NoError(t, err)
		c := mustChain(t, Config{MaxWait: 2 * time.Second, Retry: wait, Tiers: []Tier{
			{Name: "p", Picker: fakepick.New("p1"), Limiter: lim}, {Name: "fb", Picker: fakepick.New("f1"), Limiter: lim}}})
		spend(t, lim, "p", "fb")
		v, tier, n, took := runOverloadedOnce(t, c)
		assert.Equal(t, "p1", v)
		assert.Equal(t, 0, tier)
		assert.EqualValues(t, 2, n)
		assert.Equal(t, 1500*time.Millisecond, took, "1s for p's limit, then 500ms for its Retry-After")
	})
}
