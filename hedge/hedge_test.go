package hedge

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{{Delay: -1}, {Quantile: 1.5}, {Quantile: -0.1}, {MaxHedges: -1}, {MinDelay: -1}} {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "hedge: ") {
			t.Errorf("New(%+v) = %v, want a hedge error", cfg, err)
		}
	}
}

func TestAdaptiveDelayNeedsSamplesThenFollowsQuantile(t *testing.T) {
	p, err := New(Config{MinSamples: 100, Quantile: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 99 {
		p.p.Observe(time.Duration(i+1) * time.Millisecond)
	}
	if _, ok := p.Delay(); ok {
		t.Fatal("hedging before MinSamples latencies were seen")
	}
	p.p.Observe(100 * time.Millisecond)
	if _, ok := p.Delay(); !ok {
		t.Fatal("not hedging once MinSamples latencies were seen")
	}
	for i := range 1000 {
		p.p.Observe(time.Duration(i%100+1) * time.Millisecond)
	}
	d, ok := p.Delay()
	if !ok || d < 88*time.Millisecond || d > 96*time.Millisecond {
		t.Fatalf("Delay() = %v, %v; want about the p90 of 1..100ms", d, ok)
	}
}

func TestMinDelayFloorsTheAdaptiveDelay(t *testing.T) {
	p, _ := New(Config{MinDelay: 5 * time.Millisecond})
	for range 100 {
		p.p.Observe(10 * time.Microsecond)
	}
	if d, _ := p.Delay(); d != 5*time.Millisecond {
		t.Fatalf("Delay() = %v, want the 5ms floor", d)
	}
}

func TestBudgetCapsHedgeShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := New(Config{Delay: 10 * time.Millisecond, BudgetRatio: 0.05, BudgetMinPerSecond: -1})
		pk := fakepick.New("a", "b")
		calls, attempts := 0, 0
		var mu sync.Mutex
		for range 2000 {
			calls++
			_, err := Do(context.Background(), p, pk, func(ctx context.Context, ep *sturdy.Endpoint) (int, error) {
				mu.Lock()
				attempts++
				mu.Unlock()
				select { // every attempt is slow: each call would hedge
				case <-time.After(50 * time.Millisecond):
					return 1, nil
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
		}
		share := float64(attempts-calls) / float64(calls)
		if share > 0.05+0.001 || share < 0.04 {
			t.Fatalf("hedge share %.4f, want about the 5%% budget", share)
		}
		if s := p.Stats(); s.Hedges != uint64(attempts-calls) || s.BudgetRefusals == 0 {
			t.Fatalf("stats %+v disagree with %d hedges", s, attempts-calls)
		}
	})
}

func TestDoFirstSuccessWinsAndLoserIsCleaned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := New(Config{Delay: 20 * time.Millisecond, BudgetRatio: -1})
		var mu sync.Mutex
		var cleaned []string
		start := time.Now()
		v, err := Do(context.Background(), p, fakepick.New("slow", "fast"), func(ctx context.Context, ep *sturdy.Endpoint) (string, error) {
			d := 5 * time.Millisecond
			if ep.Name == "slow" {
				d = time.Second
			}
			select {
			case <-time.After(d):
				return ep.Name, nil
			case <-ctx.Done():
				return ep.Name + " (cancelled)", ctx.Err()
			}
		}, func(v string) {
			mu.Lock()
			defer mu.Unlock()
			cleaned = append(cleaned, v)
		})
		if err != nil || v != "fast" {
			t.Fatalf("v=%q err=%v", v, err)
		}
		if got := time.Since(start); got != 25*time.Millisecond {
			t.Fatalf("took %v, want 25ms (20ms delay + 5ms)", got)
		}
		if !slices.Equal(cleaned, []string{"slow (cancelled)"}) {
			t.Fatalf("cleaned = %v", cleaned)
		}
	})
}
