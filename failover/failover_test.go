package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"negative attempts", Config{MaxAttempts: -1}, "MaxAttempts"},
		{"negative max backoff", Config{MaxBackoff: -time.Second}, "MaxBackoff"},
		{"attempt timeout quantile of 1", Config{AttemptTimeoutQuantile: 1}, "AttemptTimeoutQuantile"},
		{"attempt timeout multiplier under 1", Config{AttemptTimeoutMultiplier: 0.5}, "AttemptTimeoutMultiplier"},
		{"negative attempt timeout samples", Config{AttemptTimeoutMinSamples: -1}, "AttemptTimeoutMinSamples"},
		{"negative attempt timeout floor", Config{MinAttemptTimeout: -1}, "MinAttemptTimeout"},
		{"negative budget ceiling", Config{BudgetMaxRatio: -1}, "BudgetMaxRatio"},
		{"negative window", Config{BudgetWindow: -1}, "BudgetWindow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.HasPrefix(err.Error(), "failover: ") {
				t.Fatalf("err = %v, want a failover error naming %s", err, tc.field)
			}
		})
	}
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxAttempts() != 3 || p.MaxRetryAfterWait() != time.Second || p.AttemptTimeout() != 0 {
		t.Fatalf("defaults: attempts %d, wait %v, timeout %v", p.MaxAttempts(), p.MaxRetryAfterWait(), p.AttemptTimeout())
	}
}

func TestBackoffIsFullJitterAndCapped(t *testing.T) {
	p, _ := New(Config{BaseBackoff: 25 * time.Millisecond, MaxBackoff: time.Second})
	for n, ceil := range map[int]time.Duration{1: 25 * time.Millisecond, 2: 50 * time.Millisecond, 3: 100 * time.Millisecond, 7: time.Second, 60: time.Second} {
		var maxSeen time.Duration
		for range 2000 {
			d := p.p.Backoff(n)
			if d < 0 || d >= ceil {
				t.Fatalf("Backoff(%d) = %v outside [0, %v)", n, d, ceil)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceil*8/10 {
			t.Fatalf("Backoff(%d) never came near its ceiling %v (max %v): not full jitter", n, ceil, maxSeen)
		}
	}
	none, _ := New(Config{BaseBackoff: -1})
	if none.p.Backoff(3) != 0 {
		t.Fatal("negative BaseBackoff must disable backoff")
	}
}

func TestRetryableClasses(t *testing.T) {
	p, _ := New(Config{})
	for c := sturdy.Success; c <= sturdy.Canceled; c++ {
		if got, want := p.Retryable(c), c.RetryElsewhere(); got != want {
			t.Errorf("Retryable(%v) = %v, want %v", c, got, want)
		}
	}
	only503, _ := New(Config{Retryable: func(c sturdy.Class) bool { return c == sturdy.Unavailable }})
	if only503.Retryable(sturdy.Overloaded) || !only503.Retryable(sturdy.Unavailable) {
		t.Fatal("custom Retryable not used")
	}
}

// TestBudgetBoundsAmplification pins the SRE book's claim for the fixed
// budget (BudgetRatio 0.1, the default before the learning budget): with
// every endpoint failing, three attempts per call become about 1.1.
func TestBudgetBoundsAmplification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const floor = 3.0
		const ratePerSecond = 100
		p, err := New(Config{MaxAttempts: 3, BaseBackoff: -1, BudgetRatio: 0.1, BudgetMinPerSecond: floor})
		if err != nil {
			t.Fatal(err)
		}
		pk := fakepick.New("a", "b", "c")
		calls, attempts := 0, 0
		for range 60 * ratePerSecond { // 60 s of a total outage at 100 calls/s
			calls++
			_, err := Do(context.Background(), p, pk, func(context.Context, *sturdy.Endpoint) (int, error) {
				attempts++
				return 0, sturdy.ErrUnavailable
			})
			if !errors.Is(err, sturdy.ErrUnavailable) {
				t.Fatalf("err = %v", err)
			}
			time.Sleep(time.Second / ratePerSecond)
		}
		amp := float64(attempts) / float64(calls)
		limit := 1.1 + floor/ratePerSecond
		t.Logf("attempts/calls = %.3f (limit %.3f); stats %+v", amp, limit, p.Stats())
		if amp > limit {
			t.Fatalf("amplification %.3f exceeds %.3f", amp, limit)
		}
		if amp < 1.05 {
			t.Fatalf("amplification %.3f: the budget allowed almost no retries", amp)
		}
		if p.Stats().BudgetRefusals == 0 {
			t.Fatal("no refusals counted")
		}
	})
}

func TestDoListsEveryAttempt(t *testing.T) {
	p, _ := New(Config{MaxAttempts: 3, BaseBackoff: -1})
	_, err := Do(context.Background(), p, fakepick.New("a", "b", "c"), func(_ context.Context, ep *sturdy.Endpoint) (string, error) {
		return "", &sturdy.Error{Class: sturdy.Unavailable, Endpoint: ep.Name, Err: fmt.Errorf("%s: 503", ep.Name)}
	})
	var se *sturdy.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, a := range se.Attempts {
		got = append(got, a.Endpoint+"/"+a.Kind.String()+"/"+a.Class.String())
	}
	want := []string{"a/first/unavailable", "b/retry/unavailable", "c/retry/unavailable"}
	if !slices.Equal(got, want) {
		t.Fatalf("attempts = %v, want %v", got, want)
	}
	for _, name := range []string{"a: 503", "b: 503", "c: 503"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("message %q lacks %q", err, name)
		}
	}
}

func TestDoHonoursRetryAfterOfSturdyError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := New(Config{MaxAttempts: 2, BaseBackoff: -1, MaxRetryAfterWait: time.Second})
		n := 0
		start := time.Now()
		v, err := Do(context.Background(), p, fakepick.New("only"), func(context.Context, *sturdy.Endpoint) (int, error) {
			n++
			if n == 1 {
				return 0, &sturdy.Error{Class: sturdy.Overloaded, RetryAfter: 300 * time.Millisecond}
			}
			return n, nil
		})
		if err != nil || v != 2 {
			t.Fatalf("v=%d err=%v", v, err)
		}
		if got := time.Since(start); got != 300*time.Millisecond {
			t.Fatalf("waited %v, want the server's 300ms", got)
		}
	})
}
