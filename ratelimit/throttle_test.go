package ratelimit

import (
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
)

func TestNewThrottleRejectsValuesThatCannotWork(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ThrottleConfig
		want string
	}{
		{"K below 1", ThrottleConfig{K: 0.5}, "ratelimit: ThrottleConfig.K"},
		{"negative K", ThrottleConfig{K: -2}, "ratelimit: ThrottleConfig.K"},
		{"NaN K", ThrottleConfig{K: math.NaN()}, "ratelimit: ThrottleConfig.K"},
		{"negative window", ThrottleConfig{Window: -time.Second}, "ratelimit: ThrottleConfig.Window"},
		{"window too short to slide", ThrottleConfig{Window: 5}, "ratelimit: ThrottleConfig.Window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewThrottle(tc.cfg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), err.Error())
		})
	}
	_, err := NewThrottle(ThrottleConfig{K: 1})
	assert.NoError(t, err)
}

// throttleRun sends perSecond attempts a second for d through th to a
// backend that accepts at most capacity of them a second, and returns the
// share of attempts rejected locally after warmup.
func throttleRun(th *Throttle, perSecond, capacity int, warmup, d time.Duration) float64 {
	start := time.Now()
	var attempts, rejected int
	for sec := 0; time.Duration(sec)*time.Second < d; sec++ {
		served := 0
		for range perSecond {
			counted := time.Since(start) >= warmup
			if counted {
				attempts++
			}
			if err := th.Allow(); err != nil {
				if counted {
					rejected++
				}
			} else {
				th.Record(served < capacity)
				served++
			}
			time.Sleep(time.Second / time.Duration(perSecond))
		}
	}
	return float64(rejected) / float64(attempts)
}

func TestThrottleRejectsTheExcessOverKTimesAccepts(t *testing.T) {
	for _, tc := range []struct {
		name          string
		k             float64
		capacity      int // of 100 attempts a second
		want, epsilon float64
	}{
		{"backend accepts all", 2, 100, 0, 0},
		{"backend accepts more than half", 2, 60, 0, 0.01},
		{"backend accepts a quarter", 2, 25, 0.5, 0.03},
		{"backend accepts a quarter, K=1.5", 1.5, 25, 0.625, 0.03},
		{"backend accepts a tenth", 2, 10, 0.8, 0.03},
		{"backend accepts nothing", 2, 0, 1, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				th, err := NewThrottle(ThrottleConfig{K: tc.k, Seed: 42})
				require.NoError(t, err)
				got := throttleRun(th, 100, tc.capacity, 3*time.Minute, 10*time.Minute)
				t.Logf("rejected %.4f locally", got)
				// (requests − K·accepts)/requests with accepts = capacity share.
				assert.InDelta(t, tc.want, got, tc.epsilon)
			})
		})
	}
}

func TestThrottleNeverRejectsInFlightCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th, err := NewThrottle(ThrottleConfig{Seed: 1})
		require.NoError(t, err)
		// 1000 concurrent slow calls start before any completes: none has a
		// known fate, so none counts against the others.
		for range 1000 {
			require.NoError(t, th.Allow())
		}
		assert.Zero(t, th.Probability())
	})
}

func TestThrottleWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A one-minute window slides in 3s slots.
		th, err := NewThrottle(ThrottleConfig{Window: time.Minute, Seed: 7})
		require.NoError(t, err)
		for range 100 {
			if th.Allow() == nil {
				th.Record(false)
			}
		}
		assert.InDelta(t, 100.0/101, th.Probability(), 1e-9, "100 requests, no accepts")

		time.Sleep(30 * time.Second)
		for range 40 {
			th.Record(true)
		}
		assert.InDelta(t, (140-2*40)/141.0, th.Probability(), 1e-9, "both halves in the window")

		time.Sleep(29 * time.Second)
		assert.InDelta(t, (140-2*40)/141.0, th.Probability(), 1e-9, "the first slot is still in the window")
		time.Sleep(time.Second)
		assert.Zero(t, th.Probability(), "the failures left the window, the successes did not")
		time.Sleep(30 * time.Second)
		assert.Zero(t, th.Probability())

		// Old rejections are forgotten too: after a long outage and a long
		// quiet, the first request goes through.
		for range 1000 {
			if th.Allow() == nil {
				th.Record(false)
			}
		}
		time.Sleep(time.Hour)
		require.NoError(t, th.Allow())
	})
}

func TestThrottleObserveClassifiesOutcomes(t *testing.T) {
	for _, tc := range []struct {
		class    sturdy.Class
		accepted bool
	}{
		{sturdy.Success, true},
		{sturdy.Fatal, true},
		{sturdy.TooLarge, true},
		{sturdy.Auth, true},
		{sturdy.Canceled, true},
		{sturdy.Overloaded, false},
		{sturdy.Unavailable, false},
		{sturdy.Timeout, false},
	} {
		t.Run(tc.class.String(), func(t *testing.T) {
			th, err := NewThrottle(ThrottleConfig{K: 1, Seed: 1})
			require.NoError(t, err)
			th.Observe(sturdy.Outcome{Class: tc.class})
			// One request: accepted gives max(0, (1−1)/2) = 0, rejected 1/2.
			if tc.accepted {
				assert.Zero(t, th.Probability())
			} else {
				assert.Equal(t, 0.5, th.Probability())
			}
		})
	}
}

func TestThrottleRefusal(t *testing.T) {
	th, err := NewThrottle(ThrottleConfig{Seed: 3})
	require.NoError(t, err)
	for range 50 {
		if th.Allow() == nil {
			th.Record(false)
		}
	}
	var refusal error
	for refusal == nil {
		refusal = th.Allow()
	}
	assert.ErrorIs(t, refusal, ErrLimited)
	assert.ErrorIs(t, refusal, sturdy.ErrOverloaded)
	assert.Equal(t, sturdy.Overloaded, sturdy.ClassOf(refusal))
	le, ok := errors.AsType[*LimitedError](refusal)
	require.True(t, ok)
	assert.Equal(t, CauseThrottle, le.Cause)
	assert.Equal(t, "ratelimit: limited by throttle", refusal.Error())
}
