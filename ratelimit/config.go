package ratelimit

import (
	"fmt"
	"math"
	"strconv"
)

// DefaultMaxKeys is the number of keys the in-process store keeps when
// Config.MaxKeys is zero.
const DefaultMaxKeys = 1 << 16

// Limit is the admission rule for one key: a requests-per-second bucket
// and a tokens-per-minute bucket, each a token bucket in the sense of
// golang.org/x/time/rate. A call is admitted when both buckets allow it and
// the key is not cooling down. The zero Limit admits everything (only
// cooldowns apply).
type Limit struct {
	// RequestsPerSecond is the steady request rate. Zero means unlimited.
	RequestsPerSecond float64
	// Burst is how many requests may go at once after the key has been
	// idle. Zero means max(1, ceil(RequestsPerSecond)). Ignored when
	// RequestsPerSecond is zero.
	Burst int
	// TokensPerMinute is the steady token rate (prompt plus completion
	// tokens, as LLM providers count them). Zero means unlimited.
	TokensPerMinute int64
	// TokenBurst is how many tokens may be spent at once after the key has
	// been idle. Zero means TokensPerMinute. Ignored when TokensPerMinute
	// is zero. A single call estimated above TokenBurst is admitted when
	// the bucket is full and leaves it in debt, rather than being refused
	// forever.
	TokenBurst int64
}

// normalized fills in the documented defaults. It assumes l is valid.
func (l Limit) normalized() Limit {
	if l.RequestsPerSecond > 0 && l.Burst == 0 {
		l.Burst = max(1, int(math.Ceil(l.RequestsPerSecond)))
	}
	if l.TokensPerMinute > 0 && l.TokenBurst == 0 {
		l.TokenBurst = l.TokensPerMinute
	}
	return l
}

func (l Limit) validate(field string) error {
	switch r := l.RequestsPerSecond; {
	case math.IsNaN(r) || math.IsInf(r, 0) || r < 0:
		return fmt.Errorf("ratelimit: %s.RequestsPerSecond must be finite and ≥ 0 (0 = unlimited), got %v", field, r)
	case l.Burst < 0:
		return fmt.Errorf("ratelimit: %s.Burst must be ≥ 0 (0 = max(1, ceil(RequestsPerSecond))), got %d", field, l.Burst)
	case l.TokensPerMinute < 0:
		return fmt.Errorf("ratelimit: %s.TokensPerMinute must be ≥ 0 (0 = unlimited), got %d", field, l.TokensPerMinute)
	case l.TokenBurst < 0:
		return fmt.Errorf("ratelimit: %s.TokenBurst must be ≥ 0 (0 = TokensPerMinute), got %d", field, l.TokenBurst)
	}
	return nil
}

// Config configures a Limiter. Every zero field means its documented
// default, so the zero Config is a Limiter that only applies cooldowns.
type Config struct {
	// Default is the limit of every key that Overrides and LimitFunc do
	// not name. The zero Limit is unlimited.
	Default Limit
	// Overrides gives exact keys their own limit. Nil means none. The map
	// is copied by New.
	Overrides map[string]Limit
	// LimitFunc, when Overrides does not name a key, returns the key's
	// limit and true, or false to use Default. It is called on every
	// admission and correction, so it must be fast and must not block; a
	// limit it changes takes effect at once. Nil means Default for every
	// key not in Overrides. A call whose LimitFunc result is invalid is
	// refused with a configuration error (not a *LimitedError).
	LimitFunc func(key string) (Limit, bool)
	// MaxKeys bounds the keys the in-process store remembers, so that
	// high-cardinality keys (tenant IDs) cannot grow memory without bound.
	// When it is exceeded, keys whose buckets are full and that are not
	// cooling down are dropped first (they are indistinguishable from keys
	// never seen); if that is not enough, the least recently used keys
	// are dropped and lose their debt and cooldown. Zero means
	// DefaultMaxKeys. Ignored when Store is set.
	MaxKeys int
	// Store holds per-key bucket and cooldown state. Nil means an
	// in-process store private to the Limiter. A shared store (e.g. Redis)
	// makes the limits fleet-wide; one that is also a LearnStore shares
	// what is learned (Learn) as well.
	Store Store
	// Learn configures learned capacity: keys with no configured request
	// rate are paced at a rate learned from their servers' refusals,
	// successes and rate-limit headers (Observe, Listen). The zero value
	// learns with the defaults; Learn.Off turns it off.
	Learn LearnConfig
}

func (c *Config) validate() error {
	if err := c.Default.validate("Default"); err != nil {
		return err
	}
	for k, l := range c.Overrides {
		if err := l.validate("Overrides[" + strconv.Quote(k) + "]"); err != nil {
			return err
		}
	}
	if err := c.Learn.validate(); err != nil {
		return err
	}
	if c.MaxKeys < 0 {
		return fmt.Errorf("ratelimit: MaxKeys must be ≥ 0 (0 = %d), got %d", DefaultMaxKeys, c.MaxKeys)
	}
	return nil
}
