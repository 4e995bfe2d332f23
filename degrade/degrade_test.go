package degrade

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/failover"
	"github.com/sturdyai/sturdy/hedge"
	"github.com/sturdyai/sturdy/internal/fakepick"
	"github.com/sturdyai/sturdy/ratelimit"
)

// The chain's behaviour is tested in internal/chain; these tests pin
// degrade's own API over it.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustChain(t *testing.T, cfg Config) *Chain {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

func TestNewNamesEveryBadField(t *testing.T) {
	p := fakepick.New("a")
	_, err := New(Config{
		Tiers: []Tier{
			{Name: "x", Picker: p, Quality: 1.5},
			{Name: "x", Picker: p},
			{Picker: p, Failover: &failover.Config{MaxAttempts: -1}},
			{Picker: p, Limit: ratelimit.Limit{RequestsPerSecond: -1}},
		},
		Hedge:   &hedge.Config{Quantile: 2},
		MaxWait: -1,
	})
	require.Error(t, err)
	for _, want := range []string{
		"degrade: Tiers[0]: Quality is 1.5",
		`degrade: Tiers[1]: Name "x" is used twice`,
		"degrade: Tiers[2]: Failover: failover: MaxAttempts is -1",
		"degrade: Tiers[3]: Limit has a negative field",
		"degrade: Config.Hedge: hedge: Quantile is 2",
		"degrade: Config.MaxWait is -1ns",
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = New(Config{Tiers: []Tier{{Name: "x"}}})
	assert.ErrorContains(t, err, "Tiers[0] has no Picker")
	_, err = New(Config{})
	assert.ErrorContains(t, err, "degrade: no tiers")
}

func TestStatsAndExpectedQuality(t *testing.T) {
	if got := ExpectedQuality([]float64{0.95, 0.05}, []float64{0.95, 0.90}); math.Abs(got-0.9475) > 1e-12 {
		t.Fatalf("ExpectedQuality = %v, want 0.9475", got)
	}
	primary := fakepick.New("p1")
	c := mustChain(t, Config{Tiers: []Tier{{Picker: primary, Quality: 0.95}, {Picker: fakepick.New("f1"), Quality: 0.90}}})
	for i := range 100 {
		primary.SetReady(i%20 != 0) // 5 of 100 calls find the primary down
		_, err := Do(context.Background(), c, func(context.Context, Tier, *sturdy.Endpoint) (int, error) { return 0, nil })
		require.NoError(t, err)
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
	assert.Equal(t, "gpt", c.Tier(0).Name)
	assert.Equal(t, 1, c.Len())
}

// OnAttempt sees every attempt with its tier and number, and OnFallback
// every move between tiers, by name.
func TestHooks(t *testing.T) {
	var attempts []sturdy.Attempt
	var fell []sturdy.Fallback
	c := mustChain(t, Config{
		Tiers:      []Tier{{Name: "big", Picker: fakepick.New("p1", "p2")}, {Name: "small", Picker: fakepick.New("f1")}},
		Failover:   failover.Config{MaxAttempts: 2, BaseBackoff: -1, BudgetRatio: -1},
		OnAttempt:  func(a sturdy.Attempt) { attempts = append(attempts, a) },
		OnFallback: func(f sturdy.Fallback) { fell = append(fell, f) },
	})
	v, err := Do(context.Background(), c, func(_ context.Context, tier Tier, ep *sturdy.Endpoint) (string, error) {
		if tier.Name == "big" {
			return "", sturdy.ErrUnavailable
		}
		return ep.Name, nil
	})
	require.NoError(t, err)
	assert.Equal(t, "f1", v)
	require.Len(t, attempts, 3)
	for i, want := range []struct {
		tier  string
		n     int
		kind  sturdy.AttemptKind
		class sturdy.Class
	}{{"big", 1, sturdy.First, sturdy.Unavailable}, {"big", 2, sturdy.Retry, sturdy.Unavailable}, {"small", 1, sturdy.First, sturdy.Success}} {
		a := attempts[i]
		assert.Equal(t, want.tier, a.Tier, "attempt %d", i)
		assert.Equal(t, want.n, a.N, "attempt %d", i)
		assert.Equal(t, want.kind, a.Kind, "attempt %d", i)
		assert.Equal(t, want.class, a.Class, "attempt %d", i)
	}
	assert.Equal(t, []sturdy.Fallback{{From: "big", To: "small", Reason: sturdy.FallbackFailed}}, fell)
	s := c.Stats()
	assert.Equal(t, []failover.Stats{{Retries: 1}, {}}, s.Failover, "each tier has a policy of its own")
	assert.Equal(t, []hedge.Stats{{}, {}}, s.Hedge)
}

// A tier whose servers keep refusing is throttled locally (Config.Throttle):
// after enough refusals, calls skip it without an attempt.
func TestThrottleSkipsARefusingTier(t *testing.T) {
	primary := fakepick.New("p1")
	c := mustChain(t, Config{
		Tiers:    []Tier{{Name: "p", Picker: primary}, {Name: "f", Picker: fakepick.New("f1")}},
		Failover: failover.Config{MaxAttempts: 1},
		Throttle: &ratelimit.ThrottleConfig{K: 1, Seed: 1},
	})
	const calls = 200
	for range calls {
		_, err := Do(context.Background(), c, func(_ context.Context, tier Tier, _ *sturdy.Endpoint) (int, error) {
			if tier.Name == "p" {
				return 0, sturdy.ErrOverloaded
			}
			return 1, nil
		})
		require.NoError(t, err)
	}
	// Without the throttle every call would try p1 first.
	assert.Less(t, primary.Picks(), calls/2, "the refusing tier was not throttled")
	assert.Positive(t, primary.Picks())
}

// A tier's Hedge with negative MaxHedges opts out of the chain's hedging.
func TestTierOptsOutOfHedging(t *testing.T) {
	c := mustChain(t, Config{
		Tiers: []Tier{{Name: "p", Picker: fakepick.New("p1", "p2"), Hedge: &hedge.Config{MaxHedges: -1}}},
		Hedge: &hedge.Config{Delay: 1},
	})
	assert.False(t, c.c.Hedged(0))
	c2 := mustChain(t, Config{Tiers: []Tier{{Name: "p", Picker: fakepick.New("p1", "p2")}}, Hedge: &hedge.Config{Delay: 1}})
	assert.True(t, c2.c.Hedged(0))
	_, err := New(Config{Tiers: []Tier{{Picker: fakepick.New("a")}}, Hedge: &hedge.Config{MaxHedges: -1}})
	assert.True(t, err != nil && strings.Contains(err.Error(), "Config.Hedge") && !errors.Is(err, sturdy.ErrFatal))
}
