package clock

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestNowIsMonotonicAndNearTheWallClock(t *testing.T) {
	before := time.Now()
	got := Now()
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("Now() = %v, not between %v and %v (monotonic readings)", got, before, after)
	}
	if got.Round(0) == got {
		t.Fatal("Now() has no monotonic reading")
	}
	// The wall clock reading differs only by steps of the wall clock
	// since start-up: none in a test.
	if d := got.Round(0).Sub(before.Round(0)); d < -time.Second || d > time.Second {
		t.Fatalf("Now()'s wall clock is %v from time.Now's", d)
	}
}

func TestNowInABubbleIsTheBubblesTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := Now()
		if !start.Equal(time.Now()) {
			t.Fatalf("Now() = %v in a bubble, time.Now() = %v", start, time.Now())
		}
		if start.Round(0) != start {
			t.Fatal("a bubble's Now() has a monotonic reading; bubble detection (no monotonic reading) would miss it")
		}
		time.Sleep(time.Hour)
		if d := Now().Sub(start); d != time.Hour {
			t.Fatalf("an hour of fake time moved Now by %v", d)
		}
	})
}

var sink time.Time

func BenchmarkNow(b *testing.B) {
	b.Run("time.Now", func(b *testing.B) {
		for b.Loop() {
			sink = time.Now()
		}
	})
	b.Run("clock.Now", func(b *testing.B) {
		for b.Loop() {
			sink = Now()
		}
	})
}
