package redisstore

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of the Config fields whose zero value means a default.
const (
	DefaultPrefix        = "sturdy"
	DefaultTimeout       = 50 * time.Millisecond
	DefaultProbeInterval = time.Second
)

// Config configures a Store. Every zero field except Client means its
// documented default.
type Config struct {
	// Client is the Redis connection: a *redis.Client, *redis.ClusterClient,
	// *redis.Ring, or anything else that runs scripts. It is required. Its
	// options must have ContextTimeoutEnabled set, or go-redis ignores the
	// deadline that bounds each round trip (New refuses the three client
	// types above otherwise; another Scripter must honour context
	// deadlines itself). The Store never closes it.
	Client redis.Scripter
	// Prefix namespaces this application's keys, so that several
	// applications can share one Redis: a key k is stored under
	// "{Prefix:k}:req" and so on. Replicas that share limits must use the
	// same Prefix. Empty means DefaultPrefix.
	Prefix string
	// Timeout bounds every Redis round trip. A round trip that takes
	// longer counts as a Redis failure: the operation is done on local
	// limits instead. Zero means DefaultTimeout.
	Timeout time.Duration
	// Share is the fraction of each limit this replica admits on its own
	// while Redis is unreachable: set it to 1/N for N replicas, so the
	// fleet stays within the limit. It must be in (0, 1]; zero means 1
	// (each replica falls back to the whole limit, so the fleet may send
	// up to N times it until Redis returns). Bursts are scaled too, but
	// never below one request or one token.
	Share float64
	// ProbeInterval is how long the Store stays on local limits after a
	// Redis failure before one call tries Redis again. Zero means
	// DefaultProbeInterval.
	ProbeInterval time.Duration
	// MaxKeys bounds the keys the local fallback store remembers, as
	// ratelimit.Config.MaxKeys does. Zero means ratelimit.DefaultMaxKeys.
	MaxKeys int
	// OnStateChange, if not nil, is called when the Store switches between
	// shared and local limits, with the Redis error that caused a switch
	// to StateLocal (nil for StateShared). It is called from the call that
	// saw the change, with no lock held, once per change; it must be quick
	// and must not call the Store.
	OnStateChange func(to State, err error)
}

func (c *Config) validate() error {
	if c.Client == nil {
		return errors.New("redisstore: Config.Client is required")
	}
	if enabled, known := clientOptions(c.Client); known && !enabled {
		return errors.New("redisstore: the client's Options.ContextTimeoutEnabled must be true, " +
			"or Redis round trips cannot be bounded by Config.Timeout")
	}
	if strings.ContainsAny(c.Prefix, "{}") {
		return fmt.Errorf("redisstore: Config.Prefix must not contain '{' or '}' (it goes inside a Redis Cluster hash tag), got %q", c.Prefix)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("redisstore: Config.Timeout must be ≥ 0 (0 = %v), got %v", DefaultTimeout, c.Timeout)
	}
	if s := c.Share; math.IsNaN(s) || s < 0 || s > 1 {
		return fmt.Errorf("redisstore: Config.Share must be in (0, 1] (0 = 1), got %v", s)
	}
	if c.ProbeInterval < 0 {
		return fmt.Errorf("redisstore: Config.ProbeInterval must be ≥ 0 (0 = %v), got %v", DefaultProbeInterval, c.ProbeInterval)
	}
	if c.MaxKeys < 0 {
		return fmt.Errorf("redisstore: Config.MaxKeys must be ≥ 0 (0 = ratelimit.DefaultMaxKeys), got %d", c.MaxKeys)
	}
	return nil
}

// clientOptions reports, for the go-redis client types, whether context
// deadlines are honoured; ok is false for other Scripters.
func clientOptions(c redis.Scripter) (enabled, ok bool) {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled, true
	}
	return false, false
}
