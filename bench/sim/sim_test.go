package sim

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestScenariosProduceResults is the CI smoke test: every scenario runs
// in its short mode (one condition, a few clients, about a second each)
// and must produce latencies and successful calls for every row, and its
// plot. It does not judge the numbers: timing on a CI machine says little.
func TestScenariosProduceResults(t *testing.T) {
	for _, sc := range Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dir := t.TempDir()
			res, err := sc.Run(ctx, Options{Reps: 1, Scale: 0.2, Short: true, Seed: 1, PlotDir: dir, Log: t.Logf})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rows) == 0 && len(res.Notes) > 0 {
				t.Skip(res.Notes[0]) // a scenario that needs what this machine lacks (redis-server)
			}
			if err := res.Produced(); err != nil {
				t.Fatal(err)
			}
			if res.Markdown() == "" {
				t.Fatal("empty report")
			}
		})
	}
}

func TestArrivalsAreSeededAndBounded(t *testing.T) {
	l := Load{Phases: []Phase{{time.Second, 1000}, {time.Second, 0}, {500 * time.Millisecond, 200}}, Seed: 7}
	a, b := l.Arrivals(), l.Arrivals()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("arrivals differ or are empty: %d vs %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("arrival %d differs: %v vs %v", i, a[i], b[i])
		}
		if a[i] >= l.Duration() || (a[i] >= time.Second && a[i] < 2*time.Second) {
			t.Fatalf("arrival %d at %v is outside its phases", i, a[i])
		}
	}
	if n := len(a); n < 1050 || n > 1350 {
		t.Fatalf("%d arrivals, want about 1100", n)
	}
}

func TestLognormalMixQuantile(t *testing.T) {
	// Without stalls the median of a lognormal is its median parameter.
	if got := lognormalMixQuantile(0.5, 10*time.Millisecond, 0.2, 0, 10); got < 9900*time.Microsecond || got > 10100*time.Microsecond {
		t.Fatalf("median = %v, want 10ms", got)
	}
	// With 1% stalls at 10×, p99.5 lies among the stalls.
	if got := lognormalMixQuantile(0.995, 10*time.Millisecond, 0.2, 0.01, 10); got < 50*time.Millisecond {
		t.Fatalf("p99.5 = %v, want a stall", got)
	}
}

// A Drive cancelled part-way keeps the records of the calls it started,
// and none of the rest (run under -race: calls still running write their
// records while Drive stops starting new ones).
func TestDriveCancelledKeepsStartedCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Load{Phases: []Phase{{Rate: 1000, Duration: time.Second}}, Timeout: time.Second, Seed: 1}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		run := Drive(ctx, l, time.Now(), func(ctx context.Context) (string, error) {
			time.Sleep(30 * time.Millisecond)
			return "b", nil
		})
		if n, total := len(run.Records), len(l.Arrivals()); n == 0 || n >= total {
			t.Fatalf("%d records of %d calls scheduled over 1s, cancelled at 100ms", n, total)
		}
		for i, r := range run.Records {
			if !r.OK || r.At >= 100*time.Millisecond {
				t.Fatalf("record %d: %+v: failed, or started after the cancel", i, r)
			}
		}
	})
}
