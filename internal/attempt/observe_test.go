package attempt

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
	"github.com/sturdyai/sturdy/internal/fakepick"
	"github.com/sturdyai/sturdy/internal/policy"
)

func TestAttemptTimeoutIsPerAttempt(t *testing.T) {
	for _, hedged := range []bool{false, true} {
		name := "sequential"
		if hedged {
			name = "hedged"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Every endpoint takes 3s. The first two attempts are cut
				// at 1s; the last one has no timeout and completes.
				srv := &server{by: map[string]behaviour{"a": {delay: 3 * time.Second}, "b": {delay: 3 * time.Second}, "c": {delay: 3 * time.Second}}}
				r := newRetry(3)
				r.perN = []time.Duration{time.Second, time.Second, 0}
				s := &Spec{Picker: fakepick.New("a", "b", "c"), Retry: r}
				if hedged {
					s.Hedge = &hedgePol{delay: time.Hour, maxH: 1}
				}
				start := time.Now()
				v, w, err := Run(context.Background(), s, srv.fn, srv.cleanup)
				if err != nil || v != "c:success" {
					t.Fatalf("v=%q err=%v", v, err)
				}
				w.Release()
				if got := time.Since(start); got != 5*time.Second {
					t.Errorf("call took %v, want 1s + 1s + 3s", got)
				}
			})
		})
	}
}

func TestLoopObservesSettledAttempts(t *testing.T) {
	tests := []struct {
		name   string
		by     map[string]behaviour
		hedge  bool
		cancel bool
		want   []observation
	}{
		{
			name: "sequential failure then retry success",
			by:   map[string]behaviour{"a": {class: sturdy.Unavailable}},
			want: []observation{{sturdy.First, sturdy.Unavailable}, {sturdy.Retry, sturdy.Success}},
		},
		{
			name: "overloaded then failing retries",
			by:   map[string]behaviour{"a": {class: sturdy.Overloaded}, "b": {class: sturdy.Unavailable}, "c": {class: sturdy.Timeout}},
			want: []observation{{sturdy.First, sturdy.Overloaded}, {sturdy.Retry, sturdy.Unavailable}, {sturdy.Retry, sturdy.Timeout}},
		},
		{
			name:  "a hedge that wins is observed, the loser it cancelled is not",
			by:    map[string]behaviour{"a": {delay: time.Second}, "b": {delay: 20 * time.Millisecond}},
			hedge: true,
			want:  []observation{{sturdy.Hedge, sturdy.Success}},
		},
		{
			name:   "a call the caller cancels teaches nothing",
			by:     map[string]behaviour{"a": {delay: time.Hour}},
			cancel: true,
			want:   nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &server{by: tc.by}
				r := newRetry(3)
				s := &Spec{Picker: fakepick.New("a", "b", "c"), Retry: r}
				if tc.hedge {
					s.Hedge = &hedgePol{delay: 50 * time.Millisecond, maxH: 1}
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if tc.cancel {
					time.AfterFunc(time.Second, cancel)
				}
				_, w, _ := Run(ctx, s, srv.fn, srv.cleanup)
				w.Release()
				if got := r.observations(); !slices.Equal(got, tc.want) {
					t.Fatalf("observed %v, want %v", got, tc.want)
				}
			})
		})
	}
}

// TestLoopWithLearningPolicies runs the loop with the real failover policy
// at its defaults against three endpoints that each fail one call in three
// at random, then against a total outage, then against a stuck endpoint.
func TestLoopWithLearningPolicies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := policy.NewRetry(policy.RetryConfig{BaseBackoff: -1})
		if err != nil {
			t.Fatal(err)
		}
		s := &Spec{Picker: fakepick.New("a", "b", "c"), Retry: p}
		const rate = 100 // calls per second
		run := func(seconds int, fn Func[int]) (success, perCall float64) {
			ok, attempts, calls := 0, 0, 0
			for range seconds * rate {
				calls++
				_, w, err := Run(context.Background(), s, func(ctx context.Context, a Info) (int, sturdy.Outcome) {
					attempts++
					return fn(ctx, a)
				}, nil)
				w.Release()
				if err == nil {
					ok++
				}
				time.Sleep(time.Second / rate)
			}
			return float64(ok) / float64(calls), float64(attempts) / float64(calls)
		}
		// One call in three fails, on whichever endpoint (a fixed
		// pattern, so that the test is deterministic).
		i := 0
		random := func(context.Context, Info) (int, sturdy.Outcome) {
			i++
			if i%3 == 0 {
				return 0, sturdy.Outcome{Class: sturdy.Unavailable, Latency: 20 * time.Millisecond}
			}
			return 1, sturdy.Outcome{Latency: 20 * time.Millisecond}
		}
		if ok, per := run(30, random); ok < 0.95 || per > 1.6 {
			t.Fatalf("random failures: success %.3f with %.2f attempts per call, want ≥ 0.95 with ≤ 1.6", ok, per)
		}
		outage := func(context.Context, Info) (int, sturdy.Outcome) {
			return 0, sturdy.Outcome{Class: sturdy.Unavailable, Latency: time.Millisecond}
		}
		run(10, outage) // one window to learn that retries fail
		if _, per := run(60, outage); per > 1.05 {
			t.Fatalf("outage: %.3f attempts per call, want ≤ 1.05 (the floor: 3/s at 100 calls/s)", per)
		}
		run(20, random) // recover
		if d := p.AttemptTimeout(1, false); d != 250*time.Millisecond {
			t.Fatalf("learned attempt timeout %v, want the 250ms floor over 3 × p99 of 20ms", d)
		}
		// Endpoint a gets stuck: its attempts are cut at the learned
		// timeout and the call fails over.
		stuck := func(ctx context.Context, a Info) (int, sturdy.Outcome) {
			if a.Endpoint.Name == "a" {
				<-ctx.Done()
				return 0, sturdy.Outcome{Class: sturdy.Unavailable, Err: ctx.Err()}
			}
			return 1, sturdy.Outcome{Latency: 20 * time.Millisecond}
		}
		timeout := p.AttemptTimeout(1, false)
		for range 10 {
			start := time.Now()
			_, w, err := Run(context.Background(), s, stuck, nil)
			w.Release()
			if err != nil {
				t.Fatalf("stuck endpoint: %v", err)
			}
			if took := time.Since(start); took > timeout+20*time.Millisecond {
				t.Fatalf("call took %v, want at most the timeout %v and one 20ms attempt", took, timeout)
			}
		}
	})
}

// The adaptive attempt timeout never cuts an attempt that nothing could
// follow: in a pool of one endpoint a slow answer (here 1s, four times the
// learned 250ms) is waited for, not turned into a Timeout.
func TestAdaptiveTimeoutSparesTheOnlyEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, err := policy.NewRetry(policy.RetryConfig{BaseBackoff: -1})
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			p.Observe(sturdy.First, sturdy.Outcome{Class: sturdy.Success, Latency: 20 * time.Millisecond})
		}
		require.Equal(t, 250*time.Millisecond, p.AttemptTimeout(1, false), "the timeout is not warm")
		for _, tc := range []struct {
			pool *fakepick.Ring
			cut  bool
		}{{fakepick.New("only"), false}, {fakepick.New("a", "b"), true}} {
			s := &Spec{Picker: tc.pool, Retry: p}
			first := true
			start := time.Now()
			_, w, err := Run(context.Background(), s, func(ctx context.Context, a Info) (int, sturdy.Outcome) {
				if first {
					first = false
					select {
					case <-time.After(time.Second):
						return 1, sturdy.Outcome{}
					case <-ctx.Done():
						return 0, sturdy.Outcome{Class: sturdy.Unavailable, Err: ctx.Err()}
					}
				}
				return 2, sturdy.Outcome{Latency: 20 * time.Millisecond}
			}, nil)
			w.Release()
			require.NoError(t, err)
			if tc.cut {
				assert.Equal(t, 250*time.Millisecond, time.Since(start), "a pool of two fails over at the timeout")
			} else {
				assert.Equal(t, time.Second, time.Since(start), "the only endpoint's answer was cut")
			}
		}
	})
}
