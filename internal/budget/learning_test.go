package budget

import (
	"testing"
	"testing/synctest"
	"time"
)

// drive runs seconds of calls at rate per second against b; each call that
// fails (fail decides, by call number) asks for one retry, which succeeds
// when retryOK says so. It returns retries granted per call.
func drive(b *Learning, seconds, rate int, fail func(i int) bool, retryOK func(i int) bool) float64 {
	granted, calls := 0, 0
	for i := range seconds * rate {
		now := time.Now()
		b.Deposit(now)
		calls++
		if fail(i) && b.TryWithdraw(now) {
			granted++
			b.Retried(now, retryOK(i))
		}
		time.Sleep(time.Second / time.Duration(rate))
	}
	return float64(granted) / float64(calls)
}

func TestLearningStartsAtTheFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewLearning(1, 3, 10*time.Second)
		now := time.Now()
		for range 1000 {
			b.Deposit(now)
		}
		if r := b.Ratio(now); r != 0 {
			t.Fatalf("ratio with no retries seen = %v, want 0", r)
		}
		if got := b.Balance(now); got != 30 {
			t.Fatalf("balance = %v, want the floor alone (3/s × 10s = 30)", got)
		}
	})
}

func TestLearningRisesWhenRetriesSucceed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewLearning(1, 3, 10*time.Second)
		// One call in three fails; its retry succeeds two times in three
		// (random failures on every endpoint).
		got := drive(b, 30, 100, func(i int) bool { return i%3 == 0 }, func(i int) bool { return i%9 != 0 })
		r := b.Ratio(time.Now())
		if r < 0.55 || r > 0.7 {
			t.Fatalf("learned ratio = %.2f, want about the retries' success rate 2/3", r)
		}
		if got < 0.32 {
			t.Fatalf("granted %.3f retries per call, want nearly every one asked for (1/3)", got)
		}
	})
}

func TestLearningFallsToTheFloorInAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, floor = 100, 3.0
		b := NewLearning(1, floor, 10*time.Second)
		// Healthy first: every retry succeeds, the ratio rises.
		drive(b, 20, rate, func(i int) bool { return i%5 == 0 }, func(int) bool { return true })
		if r := b.Ratio(time.Now()); r < 0.9 {
			t.Fatalf("ratio after healthy retries = %.2f, want near 1", r)
		}
		// Then every call and every retry fails. After one window the
		// budget allows the floor only.
		drive(b, 10, rate, func(int) bool { return true }, func(int) bool { return false })
		if r := b.Ratio(time.Now()); r > 0.01 {
			t.Fatalf("ratio in an outage = %.3f, want about 0", r)
		}
		got := drive(b, 60, rate, func(int) bool { return true }, func(int) bool { return false })
		if limit := floor / rate * 1.05; got > limit {
			t.Fatalf("granted %.3f retries per call in an outage, want at most the floor's %.3f", got, limit)
		}
		if got < floor/rate*0.9 {
			t.Fatalf("granted %.3f retries per call, want the floor (%.3f) kept", got, floor/rate)
		}
		// The outage ends: retries succeed again and the ratio comes back.
		drive(b, 20, rate, func(i int) bool { return i%5 == 0 }, func(int) bool { return true })
		if r := b.Ratio(time.Now()); r < 0.9 {
			t.Fatalf("ratio after recovery = %.2f, want near 1", r)
		}
	})
}

func TestLearningKeepsToTheFloorWhenOverloaded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewLearning(1, 3, 10*time.Second)
		drive(b, 20, 100, func(i int) bool { return i%5 == 0 }, func(int) bool { return true })
		now := time.Now()
		if r := b.Ratio(now); r < 0.9 {
			t.Fatalf("ratio = %.2f, want near 1 before the overload", r)
		}
		// Under 1% of calls overloaded: a stray 429 does not close it.
		for range 5 {
			b.Overloaded(now)
		}
		if r := b.Ratio(now); r < 0.9 {
			t.Fatalf("ratio with 5 overloaded answers in 1000 calls = %.2f, want unchanged", r)
		}
		for range 10 {
			b.Overloaded(now)
		}
		if r := b.Ratio(now); r != 0 {
			t.Fatalf("ratio with 1.5%% of calls overloaded = %.2f, want 0", r)
		}
		// The overload leaves the window: the learned ratio is back.
		drive(b, 11, 100, func(i int) bool { return i%5 == 0 }, func(int) bool { return true })
		if r := b.Ratio(time.Now()); r < 0.9 {
			t.Fatalf("ratio a window after the overload = %.2f, want near 1", r)
		}
	})
}
