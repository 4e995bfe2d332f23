package ratelimit

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tokenServer is a provider's token bucket of limit tokens a minute, full
// at the start, that answers with OpenAI's token headers.
type tokenServer struct {
	limit   float64
	level   float64
	at      time.Time
	refused int
}

func (s *tokenServer) refill(now time.Time) {
	s.level = min(s.limit, s.level+now.Sub(s.at).Minutes()*s.limit)
	s.at = now
}

// serve spends tokens if the bucket holds them, and returns the headers'
// signal either way.
func (s *tokenServer) serve(now time.Time, tokens float64) Signal {
	s.refill(now)
	if s.level >= tokens {
		s.level -= tokens
	} else {
		s.refused++
	}
	reset := time.Duration((s.limit - s.level) / s.limit * float64(time.Minute))
	return Signal{Tokens: Quota{Limit: int64(s.limit), Remaining: int64(math.Floor(s.level)), Reset: reset,
		HasLimit: true, HasRemaining: true, HasReset: true}}
}

// A server saying 10k tokens a minute, with calls of ~1k tokens: the key
// is paced at about ten calls a minute, spread over it, not ten at once
// and then none until the bucket refills.
func TestToldTokenRatePacesCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, err := New(Config{})
		require.NoError(t, err)
		start := time.Now()
		srv := &tokenServer{limit: 10_000, level: 10_000, at: start}
		var admitted []time.Duration
		for now := start; now.Sub(start) < 3*time.Minute; now = time.Now() {
			if p, err := l.Allow(context.Background(), "k", 1000); err == nil {
				admitted = append(admitted, now.Sub(start))
				l.Listen("k", srv.serve(now, 1000), now)
				p.Done(1000)
			}
			time.Sleep(100 * time.Millisecond)
		}
		assert.Zero(t, srv.refused, "server refusals")
		assert.Equal(t, int64(quantize(0.97*10_000)), l.ToldTokensPerMinute("k"))
		for m := range 3 {
			n := 0
			for _, at := range admitted {
				if at >= time.Duration(m)*time.Minute && at < time.Duration(m+1)*time.Minute {
					n++
				}
			}
			assert.LessOrEqual(t, n, 11, "minute %d: %v", m, admitted)
			assert.GreaterOrEqual(t, n, 9, "minute %d", m)
		}
		// Spread: never more than two calls (the one before the first
		// answer, and the one the full bucket lets go) within 5 s.
		for i := 2; i < len(admitted); i++ {
			assert.Greater(t, admitted[i]-admitted[i-2], 5*time.Second, "calls %d-%d: %v", i-2, i, admitted)
		}
	})
}

// A configured token rate is not replaced by a told one, and nothing is
// told with learning off.
func TestToldTokenRateYields(t *testing.T) {
	sig := Signal{Tokens: Quota{Limit: 10_000, Remaining: 9_000, Reset: 6 * time.Second, HasLimit: true, HasRemaining: true, HasReset: true}}
	l, err := New(Config{Overrides: map[string]Limit{"own": {TokensPerMinute: 500}}})
	require.NoError(t, err)
	l.Listen("own", sig, time.Now())
	l.Listen("told", sig, time.Now())
	assert.Zero(t, l.ToldTokensPerMinute("own"))
	assert.InDelta(t, 0.97*10_000, float64(l.ToldTokensPerMinute("told")), 0.01*10_000)

	off, err := New(Config{Learn: LearnConfig{Off: true}})
	require.NoError(t, err)
	off.Listen("told", sig, time.Now())
	assert.Zero(t, off.ToldTokensPerMinute("told"))

	// A told rate lasts a minute without being told again.
	l.Listen("old", sig, time.Now().Add(-61*time.Second))
	assert.Zero(t, l.ToldTokensPerMinute("old"))
}
