package policy

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/sturdyai/sturdy"
)

func success(d time.Duration) sturdy.Outcome {
	return sturdy.Outcome{Class: sturdy.Success, Latency: d}
}

func mustRetry(t *testing.T, cfg RetryConfig) *Retry {
	t.Helper()
	p, err := NewRetry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdaptiveTimeout(t *testing.T) {
	// 99 successes at 50ms and 1 at 80ms: p99 is the 50ms bucket's upper
	// edge (51.4ms, the sketch overstates by at most 1/16).
	feed := func(p *Retry, n int) {
		for i := range n {
			d := 50 * time.Millisecond
			if i%100 == 99 {
				d = 80 * time.Millisecond
			}
			p.Observe(sturdy.First, success(d))
		}
	}
	tests := []struct {
		name     string
		cfg      RetryConfig
		samples  int
		n        int // attempt number asked about
		min, max time.Duration
	}{
		{"none while warming up", RetryConfig{MinAttemptTimeout: time.Millisecond}, 99, 1, 0, 0},
		{"3 × p99 once warm", RetryConfig{MinAttemptTimeout: time.Millisecond}, 100, 1, 150 * time.Millisecond, 160 * time.Millisecond},
		{"second attempt bounded too", RetryConfig{MinAttemptTimeout: time.Millisecond}, 100, 2, 150 * time.Millisecond, 160 * time.Millisecond},
		{"last attempt runs to the deadline", RetryConfig{}, 1000, 3, 0, 0},
		{"floor (default 250ms)", RetryConfig{}, 100, 1, 250 * time.Millisecond, 250 * time.Millisecond},
		{"own floor", RetryConfig{MinAttemptTimeout: time.Second}, 100, 1, time.Second, time.Second},
		{"own quantile and margin", RetryConfig{AttemptTimeoutQuantile: 0.5, AttemptTimeoutMultiplier: 2, MinAttemptTimeout: time.Millisecond}, 100, 1, 100 * time.Millisecond, 105 * time.Millisecond},
		{"own sample count", RetryConfig{AttemptTimeoutMinSamples: 10, MinAttemptTimeout: time.Millisecond}, 10, 1, 150 * time.Millisecond, 160 * time.Millisecond},
		{"fixed overrides", RetryConfig{AttemptTimeout: 7 * time.Second}, 1000, 1, 7 * time.Second, 7 * time.Second},
		{"fixed bounds the last attempt too", RetryConfig{AttemptTimeout: 7 * time.Second}, 1000, 3, 7 * time.Second, 7 * time.Second},
		{"negative disables", RetryConfig{AttemptTimeout: -1}, 1000, 1, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustRetry(t, tc.cfg)
			feed(p, tc.samples)
			if got := p.AttemptTimeout(tc.n, false); got < tc.min || got > tc.max {
				t.Fatalf("AttemptTimeout(%d) after %d samples = %v, want in [%v, %v]", tc.n, tc.samples, got, tc.min, tc.max)
			}
		})
	}
}

func TestAdaptiveTimeoutFollowsLatencies(t *testing.T) {
	p := mustRetry(t, RetryConfig{MinAttemptTimeout: time.Millisecond})
	for range 2000 {
		p.Observe(sturdy.First, success(50*time.Millisecond))
	}
	before := p.AttemptTimeout(1, false)
	// The tier gets slower: the last attempts, unbounded, succeed at
	// 400ms and teach the timeout the new latencies within two windows.
	for range 2000 {
		p.Observe(sturdy.Retry, success(400*time.Millisecond))
	}
	after := p.AttemptTimeout(1, false)
	if before > 200*time.Millisecond || after < 3*400*time.Millisecond {
		t.Fatalf("timeout %v at 50ms latencies, %v at 400ms; want about 3× each", before, after)
	}
	// Failures and cancelled attempts teach it nothing.
	for range 2000 {
		p.Observe(sturdy.First, sturdy.Outcome{Class: sturdy.Timeout, Latency: time.Hour})
		p.Observe(sturdy.First, sturdy.Outcome{Class: sturdy.Canceled, Latency: time.Hour})
	}
	if got := p.AttemptTimeout(1, false); got != after {
		t.Fatalf("timeout moved to %v on failures; want %v", got, after)
	}
}

func TestRetryBudgetKinds(t *testing.T) {
	tests := []struct {
		name string
		cfg  RetryConfig
		want int // retries allowed after 1000 calls whose retries all succeeded
	}{
		{"learning (default): the ceiling of 1 per call, plus the floor", RetryConfig{}, 1000 + 30},
		{"learning with its own ceiling", RetryConfig{BudgetMaxRatio: 0.5}, 500 + 30},
		{"fixed ratio: the old flat budget", RetryConfig{BudgetRatio: 0.1}, 100 + 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := mustRetry(t, tc.cfg)
				now := time.Now()
				for range 1000 {
					p.Deposit(now)
				}
				// Enough successful retries that the learned ratio is
				// within 0.05% of its ceiling (s = ok / (ok + 1)).
				for range 2000 {
					p.Observe(sturdy.Retry, sturdy.Outcome{Class: sturdy.Success, Latency: time.Millisecond, End: now})
				}
				got := 0
				for p.AllowRetry(now) {
					got++
					if got > 10000 {
						t.Fatal("budget never ran out")
					}
				}
				if got < tc.want-2 || got > tc.want {
					t.Fatalf("retries allowed = %d, want about %d", got, tc.want)
				}
				if s := p.Stats(); s.Retries != uint64(got) || s.BudgetRefusals != 1 {
					t.Fatalf("stats %+v, want %d retries and 1 refusal", s, got)
				}
			})
		})
	}
}

func TestLearningBudgetHearsFailuresAndOverload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustRetry(t, RetryConfig{})
		now := time.Now()
		for range 1000 {
			p.Deposit(now)
		}
		at := func(c sturdy.Class) sturdy.Outcome { return sturdy.Outcome{Class: c, End: now} }
		for range 100 {
			p.Observe(sturdy.Retry, at(sturdy.Success))
		}
		if r := p.learning.Ratio(now); r < 0.98 {
			t.Fatalf("ratio after successful retries = %.2f", r)
		}
		// Fatal and cancelled retries say nothing about the servers;
		// a failed first attempt is not a retry.
		for range 100 {
			p.Observe(sturdy.Retry, at(sturdy.Fatal))
			p.Observe(sturdy.Retry, at(sturdy.Canceled))
			p.Observe(sturdy.First, at(sturdy.Unavailable))
		}
		if r := p.learning.Ratio(now); r < 0.98 {
			t.Fatalf("ratio moved on outcomes that say nothing: %.2f", r)
		}
		for range 900 {
			p.Observe(sturdy.Retry, at(sturdy.Unavailable))
		}
		if r := p.learning.Ratio(now); r > 0.11 {
			t.Fatalf("ratio after failing retries = %.2f, want about 0.1", r)
		}
		q := mustRetry(t, RetryConfig{})
		for range 1000 {
			q.Deposit(now)
		}
		for range 100 {
			q.Observe(sturdy.Retry, at(sturdy.Success))
		}
		for range 10 {
			q.Observe(sturdy.First, at(sturdy.Overloaded))
		}
		if r := q.learning.Ratio(now); r != 0 {
			t.Fatalf("ratio with 1%% of calls overloaded = %.2f, want 0", r)
		}
		// Retries cut by the adaptive attempt timeout say the tier got
		// slower, not that retries fail.
		slow := mustRetry(t, RetryConfig{})
		for range 1000 {
			slow.Deposit(now)
		}
		for range 100 {
			slow.Observe(sturdy.Retry, at(sturdy.Success))
		}
		for range 900 {
			slow.Observe(sturdy.Retry, sturdy.Outcome{Class: sturdy.Timeout, Err: ErrAttemptTimeout, End: now})
		}
		if r := slow.learning.Ratio(now); r < 0.98 {
			t.Fatalf("ratio moved on retries cut by the attempt timeout: %.2f", r)
		}
		// Overload closes the budget even when Retryable does not retry
		// it: the servers said so all the same.
		noOverloadRetry := func(c sturdy.Class) bool { return c == sturdy.Unavailable }
		o := mustRetry(t, RetryConfig{Retryable: noOverloadRetry})
		for range 1000 {
			o.Deposit(now)
		}
		for range 100 {
			o.Observe(sturdy.Retry, at(sturdy.Success))
		}
		for range 10 {
			o.Observe(sturdy.First, at(sturdy.Overloaded))
		}
		if r := o.learning.Ratio(now); r != 0 {
			t.Fatalf("ratio with 1%% of calls overloaded and a Retryable without Overloaded = %.2f, want 0", r)
		}
	})
}
