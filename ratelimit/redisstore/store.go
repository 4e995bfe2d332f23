package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sturdyai/sturdy/ratelimit"
)

// Store is a ratelimit.Store kept in Redis, so that every replica using
// the same Redis and Config.Prefix admits against the same limits and
// cooldowns. It falls back to local limits, sized to Config.Share, while
// Redis is slow or down (see the package doc). Build it with New and give
// it to ratelimit.Config.Store. A Store starts no goroutines of its own
// except a short-lived one, bounded by Config.Timeout, that writes missed
// cooldowns to Redis when it comes back. It is safe for concurrent use.
type Store struct {
	client   redis.Scripter
	prefix   string // "{" + Config.Prefix + ":"
	timeout  time.Duration
	probe    time.Duration
	share    float64
	local    ratelimit.Store
	onChange func(State, error)

	// retryAt is zero while Redis is in use; otherwise the Store is on
	// local limits and it is the UnixNano instant from which one call
	// (the one that sets probing) may try Redis again.
	retryAt  atomic.Int64
	probing  atomic.Bool
	flushing atomic.Bool // a goroutine is writing missed cooldowns

	memoMu   sync.RWMutex
	nameMemo map[string]*names
	argMemo  map[ratelimit.Limit]*args

	pendingMu sync.Mutex
	pending   map[string]time.Time // cooldowns Redis missed, by key
	npending  atomic.Int32         // len(pending), read without the lock
}

var _ ratelimit.Store = (*Store)(nil)

// New returns a Store configured by cfg. It fails only for values that
// cannot work, such as a missing client or one that ignores context
// deadlines. It does not contact Redis: a Store whose Redis is down from
// the start works on local limits until Redis answers.
func New(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{
		client:   cfg.Client,
		prefix:   "{" + cmp.Or(cfg.Prefix, DefaultPrefix) + ":",
		timeout:  cmp.Or(cfg.Timeout, DefaultTimeout),
		probe:    cmp.Or(cfg.ProbeInterval, DefaultProbeInterval),
		share:    cmp.Or(cfg.Share, 1),
		local:    ratelimit.NewMemoryStore(cfg.MaxKeys),
		onChange: cfg.OnStateChange,
		nameMemo: make(map[string]*names),
		argMemo:  make(map[ratelimit.Limit]*args),
	}
	return s, nil
}

// Take implements ratelimit.Store. now is ignored on the shared path
// (Redis's clock decides) and used on the local one. A key with a
// cooldown that Redis has not been told of yet is admitted locally, where
// the cooldown is. Take returns an error only when ctx ends during a Redis
// round trip.
func (s *Store) Take(ctx context.Context, key string, lim ratelimit.Limit, tokens int64, now time.Time, maxWait time.Duration) (ratelimit.Decision, error) {
	if s.isPending(key) {
		return s.local.Take(ctx, key, s.scaled(lim), tokens, now, maxWait)
	}
	if use, probe := s.turn(); use {
		d, err := s.take(ctx, key, lim, tokens, maxWait)
		if err == nil {
			s.succeeded(probe)
			return d, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			s.abandon(probe)
			return ratelimit.Decision{}, cerr
		}
		s.failed(probe, err)
	}
	return s.local.Take(ctx, key, s.scaled(lim), tokens, now, maxWait)
}

// Adjust implements ratelimit.Store. A correction lands where the Store
// is admitting when it is made: after a switch between shared and local
// limits it may not meet the charge it corrects. Taking more is then
// merely conservative; giving back is capped at a full bucket.
func (s *Store) Adjust(ctx context.Context, key string, lim ratelimit.Limit, requests, tokens int64, now time.Time) error {
	if lim.RequestsPerSecond <= 0 {
		requests = 0
	}
	if lim.TokensPerMinute <= 0 {
		tokens = 0
	}
	if requests == 0 && tokens == 0 {
		return nil
	}
	if use, probe := s.turn(); use {
		err := s.adjust(ctx, key, lim, requests, tokens)
		if err == nil {
			s.succeeded(probe)
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			s.abandon(probe)
			return cerr
		}
		s.failed(probe, err)
	}
	return s.local.Adjust(ctx, key, s.scaled(lim), requests, tokens, now)
}

// SetCooldown implements ratelimit.Store. The cooldown is recorded locally
// as well, so that it holds if Redis fails later; one that cannot be
// written to Redis now is written when Redis answers again, unless it has
// ended by then. The deadline is sent as a duration from the caller's now,
// so replicas' clocks need not agree.
func (s *Store) SetCooldown(ctx context.Context, key string, until time.Time) error {
	d := time.Until(until)
	if d <= 0 {
		return nil
	}
	_ = s.local.SetCooldown(ctx, key, until) // the in-process store cannot fail
	if use, probe := s.turn(); use {
		err := s.cooldown(ctx, key, d)
		if err == nil {
			s.succeeded(probe)
			return nil
		}
		s.remember(key, until)
		if cerr := ctx.Err(); cerr != nil {
			s.abandon(probe)
			return cerr
		}
		s.failed(probe, err)
		return nil
	}
	s.remember(key, until)
	return nil
}

// scaled is lim cut to this replica's share, for the local fallback.
func (s *Store) scaled(lim ratelimit.Limit) ratelimit.Limit {
	if s.share >= 1 {
		return lim
	}
	if lim.RequestsPerSecond > 0 {
		lim.RequestsPerSecond *= s.share
		lim.Burst = max(1, int(math.Round(float64(lim.Burst)*s.share)))
	}
	if lim.TokensPerMinute > 0 {
		lim.TokensPerMinute = max(1, int64(math.Round(float64(lim.TokensPerMinute)*s.share)))
		lim.TokenBurst = max(1, int64(math.Round(float64(lim.TokenBurst)*s.share)))
	}
	return lim
}

func micros(d time.Duration) int64 { return int64(d / time.Microsecond) }

func (s *Store) take(ctx context.Context, key string, lim ratelimit.Limit, tokens int64, maxWait time.Duration) (ratelimit.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, a := s.names(key), s.args(lim)
	var cmd *redis.Cmd
	if lim.TokensPerMinute > 0 && tokens > 0 {
		cmd = takeScript.Run(ctx, s.client, n[:], micros(max(maxWait, 0)), a.ri, a.rtau, a.ti, a.ttau, a.tb, tokens)
	} else {
		cmd = takeScript.Run(ctx, s.client, n[:2], micros(max(maxWait, 0)), a.ri, a.rtau)
	}
	v, err := cmd.Slice()
	if err != nil {
		return ratelimit.Decision{}, err
	}
	var ok, wait, why int64
	good := len(v) == 3
	if good {
		ok, good = v[0].(int64)
	}
	if good {
		wait, good = v[1].(int64)
	}
	if good {
		why, good = v[2].(int64)
	}
	if !good {
		return ratelimit.Decision{}, fmt.Errorf("redisstore: unexpected take script reply %v", v)
	}
	d := ratelimit.Decision{OK: ok == 1, Wait: time.Duration(wait) * time.Microsecond}
	switch why {
	case 1:
		d.Cause = ratelimit.CauseRequests
	case 2:
		d.Cause = ratelimit.CauseTokens
	case 3:
		d.Cause = ratelimit.CauseCooldown
	}
	return d, nil
}

func (s *Store) adjust(ctx context.Context, key string, lim ratelimit.Limit, requests, tokens int64) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	a := s.args(lim)
	return adjustScript.Run(ctx, s.client, s.names(key)[1:], a.ri, requests, a.ti, tokens).Err()
}

func (s *Store) cooldown(ctx context.Context, key string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return cooldownScript.Run(ctx, s.client, s.names(key)[:1], max(micros(d), 1)).Err()
}
