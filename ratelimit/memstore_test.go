package ratelimit

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRuleArithmetic(t *testing.T) {
	req, tok := rulesOf(Limit{RequestsPerSecond: 4, Burst: 2, TokensPerMinute: 600, TokenBurst: 100}.normalized())
	for _, tc := range []struct {
		name      string
		r         rule
		tat, now  int64
		n         int64
		wait      int64
		chargedTo int64
	}{
		{"full bucket admits at once", req, never, 0, 1, 0, 250e6},
		{"one slot left", req, 250e6, 0, 1, 0, 500e6},
		{"empty bucket waits one interval", req, 500e6, 0, 1, 250e6, 750e6},
		{"refilled by the passing of time", req, 500e6, 250e6, 1, 0, 750e6},
		{"tokens: 100 at 10/s", tok, never, 0, 100, 0, 10e9},
		{"tokens: one more waits 100ms", tok, 10e9, 0, 1, 100e6, 10.1e9},
		{"over the burst needs only a full bucket", tok, never, 0, 300, 0, 30e9},
		{"over the burst waits for a full bucket", tok, 1e9, 0, 300, 1e9, 31e9},
		{"give back cannot overfill", tok, 1e9, 0, -50, 0, 0},
		{"unlimited keeps no state", rule{}, never, 5, 1e6, 0, never},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.wait, tc.r.wait(tc.tat, tc.now, tc.n), "wait")
			assert.Equal(t, tc.chargedTo, tc.r.charge(tc.tat, tc.now, tc.n), "charge")
		})
	}
}

func TestRuleSaturates(t *testing.T) {
	tok := rule{interval: 60e9, tau: 60e9, burst: 1} // 1 token a minute
	assert.Equal(t, int64(math.MaxInt64), tok.charge(0, 0, math.MaxInt64))
	assert.Equal(t, int64(math.MaxInt64), tok.wait(math.MaxInt64, 0, 1))
}

// The Store contract, exercised with explicit times on the in-process
// implementation: what a Redis script would have to match.
func TestMemStoreContract(t *testing.T) {
	ctx := context.Background()
	s := newMemStore(0)
	t0 := s.base
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	lim := Limit{RequestsPerSecond: 1, TokensPerMinute: 60}.normalized()

	d, err := s.Take(ctx, "k", lim, 60, at(0), 0)
	require.NoError(t, err)
	assert.Equal(t, Decision{OK: true}, d)

	d, _ = s.Take(ctx, "k", lim, 30, at(0), 10*time.Second)
	assert.Equal(t, Decision{Wait: 30 * time.Second, Cause: CauseTokens}, d, "refused: over maxWait")
	d, _ = s.Take(ctx, "k", lim, 30, at(0), 30*time.Second)
	assert.Equal(t, Decision{OK: true, Wait: 30 * time.Second, Cause: CauseTokens}, d, "reserved for later")

	require.NoError(t, s.Adjust(ctx, "k", lim, -1, -30, at(0)))
	d, _ = s.Take(ctx, "k", lim, 30, at(0), 0)
	assert.Equal(t, Decision{Wait: 30 * time.Second, Cause: CauseTokens}, d, "the reservation was given back")

	require.NoError(t, s.Adjust(ctx, "k", lim, 0, 60, at(0)))
	d, _ = s.Take(ctx, "k", lim, 1, at(0), 0)
	assert.Equal(t, Decision{Wait: 61 * time.Second, Cause: CauseTokens}, d, "taking more puts the bucket in debt")

	s.setCooldown("k", at(2*time.Minute), at(0))
	s.setCooldown("k", at(time.Minute), at(0))
	d, _ = s.Take(ctx, "k", lim, 0, at(90*time.Second), 0)
	assert.Equal(t, Decision{Wait: 30 * time.Second, Cause: CauseCooldown}, d, "the longer cooldown stands")
	d, _ = s.Take(ctx, "k", lim, 0, at(2*time.Minute), 0)
	assert.True(t, d.OK)
}
