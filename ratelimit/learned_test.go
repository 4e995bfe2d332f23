package ratelimit

import (
	"context"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sturdyai/sturdy"
)

// at returns base + d as a time, for outcomes on a clock of the test's own.
func at(base time.Time, d time.Duration) time.Time { return base.Add(d) }

func refusedAt(t time.Time, ra time.Duration) sturdy.Outcome {
	return sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: ra, End: t}
}

func servedAt(t time.Time) sturdy.Outcome { return sturdy.Outcome{Class: sturdy.Success, End: t} }

func TestLearnedRateFollowsTheCubicCurve(t *testing.T) {
	cv := LearnConfig{Beta: 0.9, Recover: 8 * time.Second}.curve()
	st := Learned{Max: 200, Since: 0}
	s := func(x float64) int64 { return int64(x * 1e9) }
	assert.InDelta(t, 180, st.rate(s(0), cv), 1e-9, "Beta × Max when growth starts")
	assert.InDelta(t, 200, st.rate(s(8), cv), 1e-9, "back at Max after Recover")
	assert.InDelta(t, 180, st.rate(-s(1), cv), 1e-9, "flat during the cooldown")
	assert.Less(t, st.rate(s(6), cv)-st.rate(s(5), cv), st.rate(s(1), cv)-st.rate(s(0), cv), "concave: flat near Max")
	assert.Greater(t, st.rate(s(12), cv)-st.rate(s(11), cv), st.rate(s(9), cv)-st.rate(s(8), cv), "convex beyond it: probing")
	probe := Learned{Max: 200, Probe: true}
	assert.InDelta(t, 200, probe.rate(s(probeK), cv), 1e-9, "a probe is back at Max after probeK")
	told := Learned{Max: 200, Told: 150, ToldUntil: s(60)}
	assert.InDelta(t, 150, told.rate(s(8), cv), 1e-9, "a told rate is a ceiling")
	assert.InDelta(t, Learned{Max: 200}.rate(s(61), cv), told.rate(s(61), cv), 1e-9, "until it expires")
	assert.Zero(t, Learned{}.rate(s(5), cv), "nothing learned: unpaced")
}

func TestNothingIsPacedBeforeTheFirstRefusal(t *testing.T) {
	l := newLimiter(t, Config{})
	base := time.Now()
	for i := range 1000 {
		_, err := l.take(context.Background(), "k", 0, 0, at(base, time.Duration(i)*time.Microsecond))
		require.NoError(t, err)
		l.Observe("k", servedAt(at(base, time.Duration(i)*time.Microsecond)))
	}
	assert.Zero(t, l.LearnedRate("k"))
}

func TestRefusalsDuringTheCooldownAreOneDecrease(t *testing.T) {
	l := newLimiter(t, Config{})
	base := time.Now()
	// 100 successes over the last second, then refusals.
	for i := range 100 {
		l.Observe("k", servedAt(at(base, time.Duration(i)*10*time.Millisecond)))
	}
	l.Observe("k", refusedAt(at(base, time.Second), time.Second))
	v, _ := l.learners.Load("k")
	first := v.(*learner).st
	require.Positive(t, first.Max)
	assert.True(t, first.Probe, "a first refusal is a rough guess")
	for i := range 20 {
		l.Observe("k", refusedAt(at(base, time.Second+time.Duration(i)*10*time.Millisecond), time.Second))
	}
	assert.Equal(t, first, v.(*learner).st, "the in-flight refusals of one storm are one event")
	// Answers during the cooldown: the key is refused (cooldown), then
	// paced.
	_, err := l.take(context.Background(), "k", 0, 0, at(base, 1500*time.Millisecond))
	refusal(t, err, "k", CauseCooldown)
}

func TestFirstEstimateIsBetweenWhatWasServedAndWhatWasRefused(t *testing.T) {
	l := newLimiter(t, Config{})
	base := time.Now().Truncate(time.Second) // slices of 100 ms fall on the tenths
	// 100 req/s served for 0.9 s, then 40 answers in the last 100 ms
	// (400 req/s), the last refused.
	for i := range 90 {
		l.Observe("k", servedAt(at(base, time.Duration(i)*10*time.Millisecond)))
	}
	for i := range 39 {
		l.Observe("k", servedAt(at(base, 900*time.Millisecond+time.Duration(i)*2500*time.Microsecond)))
	}
	l.Observe("k", refusedAt(at(base, 999*time.Millisecond), time.Second))
	v, _ := l.learners.Load("k")
	st := v.(*learner).st
	ok, peak := 129.0, 400.0
	assert.InDelta(t, math.Sqrt(ok*peak), st.Max, 1, "the geometric mean of what was served and what was refused")
	assert.InDelta(t, 0, float64(st.Since-at(base, 1999*time.Millisecond).UnixNano()), 1, "growth resumes when the Retry-After ends")
}

// TestFirstEstimateCountsTheAnswersStillOnTheirWay: when a server first
// refuses, the answers to the requests it accepted just before are still
// on their way; as they arrive during the cooldown, the first estimate
// rises to the rate the requests sent before the refusal show the server
// accepted (acceptedBefore), and only those requests count.
func TestFirstEstimateCountsTheAnswersStillOnTheirWay(t *testing.T) {
	l := newLimiter(t, Config{})
	base := time.Now().Truncate(time.Second) // slices of 100 ms fall on the tenths
	sent := func(at, latency time.Duration) sturdy.Outcome {
		return sturdy.Outcome{Class: sturdy.Success, Latency: latency, End: base.Add(at + latency)}
	}
	const latency = 80 * time.Millisecond
	// 100 req/s sent for 0.5 s, then 400 req/s for 100 ms (the server
	// accepts them all: its burst and 100 ms of its rate), then a refusal
	// of the request sent at 600 ms, answered at once. Answers come back in
	// the order they end.
	var outs []sturdy.Outcome
	for i := range 50 {
		outs = append(outs, sent(time.Duration(i)*10*time.Millisecond, latency))
	}
	for i := range 40 {
		outs = append(outs, sent(500*time.Millisecond+time.Duration(i)*2500*time.Microsecond, latency))
	}
	refusedAt := 600 * time.Millisecond
	refusal := sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: time.Second, Latency: time.Millisecond, End: base.Add(refusedAt + time.Millisecond)}
	var late []sturdy.Outcome
	for _, o := range outs {
		if o.End.After(refusal.End) {
			late = append(late, o)
			continue
		}
		l.Observe("k", o)
	}
	require.NotEmpty(t, late)
	l.Observe("k", refusal)
	v, _ := l.learners.Load("k")
	lr := v.(*learner)
	atRefusal := lr.st.Max
	for _, o := range late {
		l.Observe("k", o)
	}
	// 40 accepted in the 100 ms before the refusal: x ≥ 40/(0.1 + serverBurst).
	assert.InDelta(t, 40/(0.1+serverBurst), lr.st.Max, 1e-9, "raised by the answers sent before the refusal")
	assert.Less(t, atRefusal, lr.st.Max*0.8, "the estimate at the refusal saw too few of them")
	l.Observe("k", sent(refusedAt+50*time.Millisecond, latency))
	l.Observe("k", sent(refusedAt+1200*time.Millisecond, latency))
	assert.InDelta(t, 40/(0.1+serverBurst), lr.st.Max, 1e-9, "requests sent after the refusal, or answered after the cooldown, do not count")
	assert.True(t, lr.st.Probe, "still a first estimate: probed")
}

// TestARefusalRightAfterTheCooldown: refused within 200 ms of pacing
// again, a key whose rate was a guess (a first estimate) halves it and
// probes again; a key whose rate was measured decreases from the rate it
// was paced at, as for any refusal (the refusal is more likely other
// clients of the same provider key than a measured rate being far off).
func TestARefusalRightAfterTheCooldown(t *testing.T) {
	l := newLimiter(t, Config{})
	base := time.Now().Truncate(time.Second)
	ms := func(n int) time.Time { return at(base, time.Duration(n)*time.Millisecond) }
	state := func() Learned { v, _ := l.learners.Load("k"); return v.(*learner).st }
	for i := range 100 {
		l.Observe("k", servedAt(ms(10*i)))
	}
	l.Observe("k", refusedAt(ms(1000), time.Second)) // first: a guess, paced again at 2 s
	guess := state()
	require.True(t, guess.Probe)
	l.Observe("k", refusedAt(ms(2050), time.Second))
	st := state()
	assert.InDelta(t, guess.rate(ms(2050).UnixNano(), l.curve)/2, st.Max, 1e-9, "a guess: halved")
	assert.True(t, st.Probe, "and found again")

	// Measured: 1.5 s of successes at 100/s after the cooldown (3.05 s),
	// then a refusal; paced again at 5.55 s and refused 50 ms later.
	for i := range 150 {
		l.Observe("k", servedAt(ms(3050+10*i)))
	}
	l.Observe("k", refusedAt(ms(4550), time.Second))
	measured := state()
	require.False(t, measured.Probe)
	l.Observe("k", refusedAt(ms(5600), time.Second))
	st = state()
	assert.InDelta(t, measured.rate(ms(5600).UnixNano(), l.curve), st.Max, 1e-9, "measured: a plain decrease from the rate paced at")
	assert.False(t, st.Probe)
}

// TestALearnedRateLetsHalfTheServersBurstGoAtOnce: a key paced at a
// learned rate r lets r/20 requests (50 ms of it) go at once, half the
// 100 ms burst a server is taken to have, so that the first burst after a
// cooldown leaves the server's refilled bucket some slack.
func TestALearnedRateLetsHalfTheServersBurstGoAtOnce(t *testing.T) {
	l := newLimiter(t, Config{})
	now := time.Now()
	// 200 req/s told (one used, back in 5 ms): paced at 97% of it.
	l.Listen("k", Signal{Requests: Quota{Limit: 20, Remaining: 19, Reset: 5 * time.Millisecond, HasLimit: true, HasRemaining: true, HasReset: true}}, now)
	r := l.LearnedRate("k")
	require.InDelta(t, toldMargin*200, r, 1e-9)
	n := 0
	for range 100 {
		if _, err := l.take(context.Background(), "k", 0, 0, now); err == nil {
			n++
		}
	}
	burst := int(math.Ceil(quantize(r) / 20))
	assert.LessOrEqual(t, n, burst)
	assert.GreaterOrEqual(t, n, burst-1, "the store's whole-nanosecond arithmetic may round one away")
	assert.LessOrEqual(t, n, int(200*serverBurst/2), "half the server's burst")
}

func TestAConfiguredRateIsNotLearned(t *testing.T) {
	l := newLimiter(t, Config{Overrides: map[string]Limit{"fixed": {RequestsPerSecond: 5}}})
	now := time.Now()
	l.Observe("fixed", refusedAt(now, time.Second))
	l.Listen("fixed", Signal{Requests: Quota{Limit: 10, Remaining: 5, Reset: time.Second, HasLimit: true, HasRemaining: true, HasReset: true}}, now)
	assert.Zero(t, l.LearnedRate("fixed"))
	_, ok := l.learners.Load("fixed")
	assert.False(t, ok, "no learner for a key with a configured rate")
}

func TestLearningOff(t *testing.T) {
	l := newLimiter(t, Config{Learn: LearnConfig{Off: true}})
	now := time.Now()
	l.Observe("k", refusedAt(now, 10*time.Millisecond))
	l.ListenHeaders("k", http.Header{"X-Ratelimit-Limit-Requests": {"10"}, "X-Ratelimit-Remaining-Requests": {"5"}, "X-Ratelimit-Reset-Requests": {"1s"}})
	assert.Zero(t, l.LearnedRate("k"))
	_, err := l.take(context.Background(), "k", 0, 0, now.Add(5*time.Millisecond))
	refusal(t, err, "k", CauseCooldown) // Retry-After is still honoured
}

func TestListenFollowsTheServersQuota(t *testing.T) {
	now := time.Now()
	q := func(limit, remaining int64, reset time.Duration) Quota {
		return Quota{Limit: limit, Remaining: remaining, Reset: reset, HasLimit: true, HasRemaining: true, HasReset: true}
	}
	for _, tc := range []struct {
		name     string
		sig      Signal
		rate     float64
		cooldown time.Duration // how long the key is refused from now; 0: not
	}{
		// OpenAI: 10000 RPM, one used, back in 6 ms: 166.7/s.
		{"openai", Signal{Requests: q(10000, 9999, 6*time.Millisecond)}, toldMargin * 1 / 0.006, 0},
		{"full bucket says no rate", Signal{Requests: q(20, 20, 0)}, 0, 0},
		// 200/s; the reserve is min(20/4, 200 × 50 ms) = 5 requests: 25 ms.
		{"none left: until the reserve refills", Signal{Requests: q(20, 0, 100*time.Millisecond)}, toldMargin * 200, 25 * time.Millisecond},
		{"above the reserve: no pause", Signal{Requests: q(20, 6, 70*time.Millisecond)}, toldMargin * 200, 0},
		{"tokens exhausted: until their reset", Signal{Tokens: q(1000, 0, 2*time.Second)}, 0, 2 * time.Second},
		{"unknown figures are ignored", Signal{Requests: Quota{Remaining: 3, HasRemaining: true}}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(t, Config{})
			l.Listen("k", tc.sig, now)
			assert.InDelta(t, tc.rate, l.LearnedRate("k"), 1e-6)
			if tc.cooldown == 0 {
				_, err := l.take(context.Background(), "k", 0, 0, now)
				assert.NoError(t, err)
				return
			}
			_, err := l.take(context.Background(), "k", 0, 0, now.Add(tc.cooldown-time.Millisecond))
			refusal(t, err, "k", CauseCooldown)
			_, err = l.take(context.Background(), "k", 0, 0, now.Add(tc.cooldown+time.Millisecond))
			assert.NoError(t, err)
		})
	}
}

func TestListenHeadersCostsNoAllocationWithoutRateLimitHeaders(t *testing.T) {
	l := newLimiter(t, Config{})
	h := noRateLimitHeader()
	assert.Zero(t, testing.AllocsPerRun(100, func() { l.ListenHeaders("k", h) }))
	l.ListenHeaders("k", openAIResponseHeader())
	assert.Positive(t, l.LearnedRate("k"))
}

func TestLearnConfigRejectsValuesThatCannotWork(t *testing.T) {
	for _, c := range []LearnConfig{{Beta: 1}, {Beta: -0.1}, {Beta: math.NaN()}, {Recover: -time.Second}} {
		_, err := New(Config{Learn: c})
		assert.ErrorContains(t, err, "ratelimit: Learn.", "%+v", c)
	}
	_, err := New(Config{Learn: LearnConfig{Beta: 0.7, Recover: time.Second}})
	assert.NoError(t, err)
}

// TestRateOfSuccessesCountsTheSliceBegunAsWhatItCovers: 100 successes a
// second, read 10 ms into a slice: the slice just begun covers 10 ms, not
// 100 (counted as 100 ms, the rate would read about 91/s).
func TestRateOfSuccessesCountsTheSliceBegunAsWhatItCovers(t *testing.T) {
	var r recent
	base := time.Now().Truncate(time.Second).UnixNano()
	for i := range 201 { // 2 s at 100/s
		r.add(base+int64(i)*int64(10*time.Millisecond), true)
	}
	now := base + int64(2010*time.Millisecond)
	ok, _, _ := r.rates(now, base)
	assert.InDelta(t, 100, ok, 2)
}

// TestObserverLearnsAsObserve: outcomes fed through a key's Observer teach
// what Observe teaches, through a first refusal, the answers still on
// their way during its cooldown and a second refusal, and for keys that
// join a group.
func TestObserverLearnsAsObserve(t *testing.T) {
	base := time.Now().Truncate(time.Second)
	var outs []sturdy.Outcome
	for i := range 300 { // 100 req/s for 3 s, 80 ms each
		outs = append(outs, sturdy.Outcome{Class: sturdy.Success, Latency: 80 * time.Millisecond, End: base.Add(time.Duration(i)*10*time.Millisecond + 80*time.Millisecond)})
	}
	refuse := func(at time.Duration) sturdy.Outcome {
		return sturdy.Outcome{Class: sturdy.Overloaded, RetryAfter: time.Second, Latency: time.Millisecond, End: base.Add(at)}
	}
	feed := func(obs func(key string, o sturdy.Outcome)) {
		for i, o := range outs {
			if i == 150 {
				obs("a", refuse(1500*time.Millisecond))
				obs("b", refuse(1520*time.Millisecond)) // within 100 ms: one group with a
			}
			if i == 280 {
				obs("a", refuse(2800*time.Millisecond))
			}
			obs("a", o)
			obs("b", o)
			obs("c", o)
		}
	}
	plain, bound := newLimiter(t, Config{}), newLimiter(t, Config{})
	plain.MayShare("a", "b")
	bound.MayShare("a", "b")
	feed(plain.Observe)
	observers := map[string]func(sturdy.Outcome){}
	feed(func(key string, o sturdy.Outcome) {
		if observers[key] == nil {
			observers[key] = bound.Observer(key)
		}
		observers[key](o)
	})
	for _, key := range []string{"a", "b", "c"} {
		assert.Equal(t, plain.groupOf(key), bound.groupOf(key), key)
		p, _ := plain.learners.Load(plain.groupOf(key))
		b, _ := bound.learners.Load(bound.groupOf(key))
		require.NotNil(t, b, key)
		assert.Equal(t, p.(*learner).st, b.(*learner).st, key)
		ok1, peak1, share1 := p.(*learner).recent.rates(base.Add(3*time.Second).UnixNano(), 0)
		ok2, peak2, share2 := b.(*learner).recent.rates(base.Add(3*time.Second).UnixNano(), 0)
		assert.Equal(t, [3]float64{ok1, peak1, share1}, [3]float64{ok2, peak2, share2}, key)
	}
	assert.Equal(t, "a", bound.groupOf("b"), "b joined a's group")
	st, _ := bound.learners.Load("c")
	assert.Zero(t, st.(*learner).st.Max, "c was never refused")
}

// TestConcurrentSuccessesAreAllCounted: successes counted without the
// learner's lock, from many goroutines, across slices begun under it, are
// all counted.
func TestConcurrentSuccessesAreAllCounted(t *testing.T) {
	l := newLimiter(t, Config{})
	obs := l.Observer("k")
	base := time.Now().Truncate(time.Second)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				// 500 ms of answers, each 10 ms after it was sent.
				end := base.Add(time.Duration(i*1000+g) * time.Microsecond)
				obs(sturdy.Outcome{Class: sturdy.Success, Latency: 10 * time.Millisecond, End: end})
			}
		}()
	}
	wg.Wait()
	v, _ := l.learners.Load("k")
	lr := v.(*learner)
	var ok, no, sent int64
	for i := range lr.recent.ok {
		ok += lr.recent.ok[i].Load()
		no += lr.recent.no[i].Load()
	}
	assert.Equal(t, int64(2000), ok)
	assert.Zero(t, no)
	for i := range lr.sent.ok {
		sent += int64(lr.sent.ok[i].Load())
	}
	assert.Equal(t, int64(2000), sent)
}
